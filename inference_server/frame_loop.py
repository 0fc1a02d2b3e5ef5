"""The one frame loop: planned frames -> their EXR files' bytes.

It runs in a local worker thread and inside a Ray render actor (ray_actor.py), so both make the same
pixels from the same plan. Writing and recording frames is not its job: it yields each encoded frame and
the head (shot_job.py, frame_writer.py) writes it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from inference_server.engine.common import frame_seed
from inference_server.engine.shot_renderer import ShotRenderer
from inference_server.engine.temporal import FramePlan
from inference_server.frame_output import encode_rgba, metric_image, written_display
from inference_server.frame_writer import EncodedFrame, FrameEncoder

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class RenderedFrame:
    encoded: EncodedFrame  # the EXR file, ready to write
    metric: F32  # the small copy the warping error reads (frame_output.metric_image)
    coverage: float | None  # reprojection coverage (temporal), None for a fresh keyframe
    device: str  # what rendered it (the manifest says)

    @property
    def frame(self) -> int:
        return self.encoded.frame


class FrameHooks(Protocol):
    """How the loop reports and is stopped: each call may raise to stop it (cancel, shutdown)."""

    def before_frame(self, frame: int) -> None: ...

    def after_step(self, frame: int, step: int, steps: int) -> None: ...

    def tick(self, frame: int) -> None:
        """Between two steps of a stage that reports no progress (the x4 upscaler)."""


@dataclass(frozen=True)
class LoopSettings:
    seed: int  # the job's; frame seeds derive from it (engine/common.py frame_seed)
    temporal: bool
    colorspace: str
    device: str


def needed_keys(items: Sequence[FramePlan], temporal: bool) -> set[int]:
    """Keyframes the items read but do not make themselves: the caller supplies them (from disk)."""
    made = {i.frame for i in items if i.keyframe}
    needed: set[int] = set()
    for item in items:
        if not item.keyframe:
            needed |= {k for k in (item.prev_key, item.next_key) if k is not None}
        elif temporal and item.prev_key is not None:
            needed.add(item.prev_key)
    return needed - made


def render_frames(
    renderer: ShotRenderer,
    items: Sequence[FramePlan],
    settings: LoopSettings,
    known_key: Callable[[int], F32],
    hooks: FrameHooks,
    encoder: FrameEncoder,
) -> Iterator[RenderedFrame]:
    """Renders ``items`` in order. Keyframe images for reprojection are the written pixels read back
    (``written_display``), whether this loop made them or ``known_key`` supplies them, so a frame
    comes out the same however the job was split or resumed."""
    keys: dict[int, F32] = {}

    def key_image(frame: int) -> F32:
        if frame not in keys:
            keys[frame] = known_key(frame)
        return keys[frame]

    for item in items:
        frame = item.frame
        hooks.before_frame(frame)
        cover: float | None
        if not item.keyframe:
            assert item.prev_key is not None and item.next_key is not None
            display, cover = renderer.inbetween(
                frame, (item.prev_key, key_image(item.prev_key)), (item.next_key, key_image(item.next_key))
            )
        else:
            prev = None
            if settings.temporal and item.prev_key is not None:
                prev = (item.prev_key, key_image(item.prev_key))
            for old in [k for k in keys if item.prev_key is None or k < item.prev_key]:
                del keys[old]

            def on_step(step: int, steps: int, frame: int = frame) -> None:
                hooks.after_step(frame, step, steps)

            def on_tick(frame: int = frame) -> None:
                hooks.tick(frame)

            display, cover = renderer.keyframe(
                frame, frame_seed(settings.seed, frame), prev, on_step=on_step, on_tick=on_tick
            )
        rgba = encode_rgba(display, renderer.alpha(frame), settings.colorspace)
        if item.keyframe and settings.temporal:
            keys[frame] = written_display(rgba, settings.colorspace)
        yield RenderedFrame(
            encoder.encode(frame, rgba, item.keyframe),
            metric_image(rgba, settings.colorspace),
            cover,
            settings.device,
        )
