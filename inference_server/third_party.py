"""How the server configures the libraries it builds on: no progress bars in its log, and no notices it
knows to be harmless. Called wherever diffusers / transformers are first needed (they import lazily)."""

from __future__ import annotations

import logging
import threading

# Messages we expect and act on by design, by logger: (the logger's name, a text the message contains).
KNOWN_NOTICES = (
    # We never install torchvision (a plain PyPI torchvision would pull another torch): the PIL image
    # processors are what we want, and transformers says so once per class on import.
    ("transformers.utils.import_utils", "requires torchvision (not installed); falling back to"),
    # Pipelines built without optional parts (safety checker, depth estimator) on purpose: the tiny
    # model, and depth that always comes from the shot.
    ("diffusers.pipelines.pipeline_utils", "=None of type <class 'NoneType'> cannot be saved"),
    # from_pipe casts to the dtype the models already have, and diffusers warns even when no module
    # needs to stay in fp32 (the list it prints is empty).
    ("diffusers.models.modeling_utils", "should be kept in float32: []."),
    # genfx-train's LoRAs adapt the UNet only; diffusers says so on every load (each LoRA job).
    ("diffusers.loaders.lora_base", "No LoRA keys associated to CLIPTextModel found"),
)

_lock = threading.Lock()
_quiet = False


class _DropNotice(logging.Filter):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


def drop_known_notices() -> None:
    """Filters the ``KNOWN_NOTICES`` (cheap: imports nothing; the loggers are created here if needed)."""
    for name, text in KNOWN_NOTICES:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropNotice) and f.text == text for f in logger.filters):
            logger.addFilter(_DropNotice(text))


def quiet() -> None:
    """Imports diffusers and transformers (seconds, once) and turns their progress bars off."""
    global _quiet
    with _lock:
        if _quiet:
            return
        drop_known_notices()
        import diffusers
        import transformers

        # Model loading progress bars would flood the server log; job progress goes to clients.
        diffusers.utils.logging.disable_progress_bar()
        transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        _quiet = True
