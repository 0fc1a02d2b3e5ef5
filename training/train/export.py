"""Final outputs in diffusers' own formats, plus the model card that ties them to their data.

``OUT/lora/pytorch_lora_weights.safetensors`` (``StableDiffusionPipeline.save_lora_weights``; the server
loads it with ``load_lora_weights(dir, adapter_name=...)``), ``OUT/controlnet/``
(``ControlNetModel.save_pretrained``), ``OUT/unet/`` (``save_pretrained``), and ``OUT/model_card.json``
written LAST: a run folder without a model card is not finished.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from genfx import __version__
from genfx.exr import write_atomic
from genfx.hashing import sha256_of
from genfx.model_card import CARD_FILE, CARD_FORMAT
from genfx.sim_condition import CONDITION_CHANNELS, DEPTH_NORMALISATION, MOTION_FULL_SCALE


def _into_place(tmp: Path, final: Path) -> None:
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)


def save_outputs(
    out: Path,
    unet: Any,
    text_encoder: Any,
    controlnet: Any | None,
    train: tuple[str, ...],
    lora_text_encoder: bool,
) -> dict[str, str]:
    """Write every trained part; returns {relative file: sha256}."""
    import diffusers
    import diffusers.utils
    from peft.utils import get_peft_model_state_dict

    d: Any = diffusers  # untyped for mypy --strict
    StableDiffusionPipeline = d.StableDiffusionPipeline
    convert_state_dict_to_diffusers = d.utils.convert_state_dict_to_diffusers

    written: dict[str, str] = {}
    parts: list[tuple[str, Any]] = []
    if "lora" in train:

        def save_lora(tmp: Path) -> None:
            te = (
                convert_state_dict_to_diffusers(get_peft_model_state_dict(text_encoder))
                if lora_text_encoder
                else None
            )
            StableDiffusionPipeline.save_lora_weights(
                tmp,
                unet_lora_layers=convert_state_dict_to_diffusers(get_peft_model_state_dict(unet)),
                text_encoder_lora_layers=te,
                safe_serialization=True,
            )

        parts.append(("lora", save_lora))
    if "controlnet" in train and controlnet is not None:
        parts.append(("controlnet", lambda tmp: controlnet.save_pretrained(tmp, safe_serialization=True)))
    if "unet" in train:
        parts.append(("unet", lambda tmp: unet.save_pretrained(tmp, safe_serialization=True)))
    for name, save in parts:
        written.update(_write_part(out, name, save))
    return written


def _write_part(out: Path, name: str, save: Any) -> dict[str, str]:
    tmp = out / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    save(tmp)
    _into_place(tmp, out / name)
    return {
        f.relative_to(out).as_posix(): sha256_of(f).hexdigest()
        for f in sorted((out / name).rglob("*"))
        if f.is_file()
    }


def save_part(out: Path, name: str, module: Any) -> dict[str, str]:
    """One diffusers module as ``OUT/name/`` (safetensors); returns {relative file: sha256}."""
    return _write_part(out, name, lambda tmp: module.save_pretrained(tmp, safe_serialization=True))


def code_version() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        rev = "unknown"
    return f"genfx {__version__} (git {rev})"


def write_model_card(
    out: Path,
    *,
    base_model: Path,
    base_hash: str,
    manifest: dict[str, Any],
    dataset: Path,
    hyperparameters: dict[str, Any],
    outputs: dict[str, str],
    steps: int,
    eval_losses: list[list[float]],
    final_loss: float,
    world_size: int,
) -> dict[str, Any]:
    card = {
        "format": CARD_FORMAT,
        "base_model": {"path": str(base_model), "sha256": base_hash},
        "dataset": {
            "path": str(dataset),
            "sha256": manifest["dataset_sha256"],
            "samples": len(manifest["samples"]),
            "licences": sorted({s["licence"] for s in manifest["sources"]}),
            "sources": [
                {k: s[k] for k in ("id", "owner", "licence", "source_json_sha256")}
                for s in manifest["sources"]
            ],
        },
        "hyperparameters": hyperparameters,
        "conditioning": {
            "module": "genfx.sim_condition",
            "channels": list(CONDITION_CHANNELS),
            "depth_normalisation": DEPTH_NORMALISATION,
            "motion_full_scale": MOTION_FULL_SCALE,
            "range": [0.0, 1.0],
        },
        "outputs": outputs,
        "steps": steps,
        "final_loss": final_loss,
        "eval_loss": {"first": eval_losses[0], "last": eval_losses[-1], "all": eval_losses},
        "world_size": world_size,
        "code_version": code_version(),
    }
    write_atomic(out / CARD_FILE, json.dumps(card, indent=1, sort_keys=True).encode())
    return card
