"""What the node's menus show of the server (models, LoRAs, defaults, limits), cached per (server, token).

Menu scripts run on Houdini's main thread, so they never wait for the network: ``lookup`` answers from
the cache at once and, when the entry is missing or older than CACHE_S, starts one worker thread that
asks the server (GetServerInfo) and stores the answer; the next opening of a menu shows it. One
GetServerInfo fills the Model menu, the LoRA menus and the Server Defaults line. Nothing here touches
``hou``: the worker hands the answer to the ``on_answer`` callback it was given (node.py defers it to
the main thread).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from genfx_houdini.deps import require_sdk
from genfx_houdini.errors import UserError

if TYPE_CHECKING:
    from genfx.client import Client
    from genfx.proto import genfx_pb2 as pb

CACHE_S = 30.0
ASK_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class ServerSummary:
    """The menus' items (token/label pairs, flattened, as a Houdini menu script returns them)."""

    model_items: tuple[str, ...]
    lora_items: tuple[str, ...]
    defaults_text: str  # for the read-only Server Defaults parm


UNKNOWN = ServerSummary(
    ("", "Server default"),
    ("", "None"),
    "Asking the server (open the Model or LoRA menu again in a moment)",
)

ClientFactory = Callable[[str, str], "Client"]


def defaults_text(info: pb.ServerInfo) -> str:
    """What the server uses for the parameters left at 0, and its LoRA limits."""
    d, limits = info.defaults, info.limits
    return (
        f"Steps {d.steps}, Guidance {d.guidance:g}, Plate Strength {d.strength:g},"
        f" Keyframe Step {d.keyframe_step}, ControlNet Scale {d.controlnet_conditioning_scale:g}"
        f" (at most {limits.max_controlnet_conditioning_scale:g}); LoRA weights within"
        f" \u00b1{limits.max_lora_weight:g}, at most {limits.max_loras_per_job} LoRAs"
    )


def summarize(info: pb.ServerInfo) -> ServerSummary:
    """GetServerInfo -> the menus: the default model first, each model with its family and native size
    (and its sim ControlNet when it has one), each LoRA with the models it applies to."""
    default = f" ({info.models[0].name})" if info.models else ""
    models = ["", f"Server default{default}"]
    for model in info.models:
        label = f"{model.name}  ({model.family}, {model.native_width}x{model.native_height})"
        if model.HasField("sim_controlnet"):
            label += f"  + sim ControlNet {model.sim_controlnet.hash[:12]}"
        models += [model.name, label]
    loras = ["", "None"]
    for lora in info.loras:
        fits = ", ".join(lora.models) or "none of this server's models"
        loras += [lora.name, f"{lora.name}  (for {fits}; sha256 {lora.hash[:12]})"]
    return ServerSummary(tuple(models), tuple(loras), defaults_text(info))


def ask(server: str, token: str, client_factory: ClientFactory) -> ServerSummary:
    """Worker thread: one GetServerInfo (short timeout) -> the summary; failures become menu text."""
    try:
        require_sdk()
    except UserError:
        return ServerSummary(
            ("", "Server default (GenFX client not installed)"),
            ("", "None (GenFX client not installed)"),
            "Unknown: the GenFX client is not installed",
        )
    from genfx.client import GenFXError

    try:
        with client_factory(server, token) as client:
            client.timeout = ASK_TIMEOUT_S
            return summarize(client.info())
    except GenFXError as exc:
        return ServerSummary(
            ("", f"Server default (models unavailable: {exc.code})"),
            ("", f"None (LoRAs unavailable: {exc.code})"),
            f"Unknown: the server did not answer ({exc.code})",
        )


class SummaryCache:
    """(server, token) -> (when, ServerSummary), filled by worker threads; ``lookup`` never blocks."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], tuple[float, ServerSummary]] = {}
        self._asking: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._asking.clear()

    def lookup(
        self,
        server: str,
        token: str,
        client_factory: ClientFactory,
        on_answer: Callable[[ServerSummary], None] | None = None,
    ) -> ServerSummary:
        """What the cache holds (UNKNOWN at first); starts a worker when it is missing or stale. The
        worker calls ``on_answer`` with the fresh summary (from its own thread)."""
        key = (server, token)
        with self._lock:
            cached = self._entries.get(key)
            stale = cached is None or time.monotonic() - cached[0] >= CACHE_S
            start = stale and key not in self._asking
            if start:
                self._asking.add(key)
        if start:
            threading.Thread(
                target=self._refresh,
                args=(key, client_factory, on_answer),
                name="genfx-server-info",
                daemon=True,
            ).start()
        return UNKNOWN if cached is None else cached[1]

    def _refresh(
        self,
        key: tuple[str, str],
        client_factory: ClientFactory,
        on_answer: Callable[[ServerSummary], None] | None,
    ) -> None:
        try:
            summary = ask(*key, client_factory)
            with self._lock:
                self._entries[key] = (time.monotonic(), summary)
        finally:
            with self._lock:
                self._asking.discard(key)
        if on_answer is not None:
            on_answer(summary)
