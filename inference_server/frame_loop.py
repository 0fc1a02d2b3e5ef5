"""The one frame loop: planned frames -> their EXR files' bytes.

It runs in a local worker thread and inside a Ray render actor (ray_actor.py), so both make the same
pixels from the same plan. Writing and recording frames is not its job: it yields each frame and the
head (shot_job.py, frame_writer.py) writes it.

``frames`` does only the device's part of each frame in the loop's thread (a keyframe's diffusion and
upscale) and yields a ``LazyFrame`` whose CPU part (an in-between's reprojection, colour, the EXR
encode, the metric's small copy) runs when first asked for, on whichever thread asks: the local worker
hands it to the frame writer's threads, so the next keyframe's diffusion starts at once.
``render_frames`` asks at once (a Ray actor sends finished frames).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

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


class LazyFrame:
    """One planned frame whose device work is done (or needs none) and whose CPU work runs when asked
    for: ``key()`` needs its colour (done once, by the first thread that asks; the others wait),
    ``rendered()`` (called once) also its EXR encode. Frames only wait for earlier frames, so no two
    can wait for each other."""

    def __init__(
        self,
        item: FramePlan,
        display: Callable[[], tuple[F32, float | None]],
        renderer: ShotRenderer,
        settings: LoopSettings,
        encoder: FrameEncoder,
    ) -> None:
        self.frame = item.frame
        self.keyframe = item.keyframe
        self.keeps_key = item.keyframe and settings.temporal  # later frames reproject it
        self._display: Callable[[], tuple[F32, float | None]] | None = display
        self._renderer, self._settings, self._encoder = renderer, settings, encoder
        self._lock = threading.Lock()
        self._coloured = False
        self._rgba: npt.NDArray[np.float16] | None = None  # until rendered() has encoded it
        self._key: F32 | None = None
        self._cover: float | None = None
        self._error: BaseException | None = None

    def key(self) -> F32:
        """The keyframe's image as later frames reproject it: the written pixels in display sRGB."""
        self._colour()
        assert self._key is not None, f"frame {self.frame} is not a key for later frames"
        return self._key

    def rendered(self) -> RenderedFrame:
        """The frame's EXR bytes and small copy (the rest of its CPU work, in this thread). Once."""
        self._colour()
        rgba, self._rgba = self._rgba, None  # the encoded file holds the pixels from now on
        assert rgba is not None, f"frame {self.frame} was rendered twice"
        colorspace = self._settings.colorspace
        return RenderedFrame(
            self._encoder.encode(self.frame, rgba, self.keyframe),
            metric_image(rgba, colorspace),
            self._cover,
            self._settings.device,
        )

    def _colour(self) -> None:
        with self._lock:
            if self._error is not None:
                raise self._error
            if self._coloured:
                return
            assert self._display is not None
            try:
                display, self._cover = self._display()
                colorspace = self._settings.colorspace
                self._rgba = encode_rgba(display, self._renderer.alpha(self.frame), colorspace)
                self._key = written_display(self._rgba, colorspace) if self.keeps_key else None
            except BaseException as exc:  # whoever asks next hears of it too
                self._error = exc
                raise
            self._coloured, self._display = True, None


def frames(
    renderer: ShotRenderer,
    items: Sequence[FramePlan],
    settings: LoopSettings,
    known_key: Callable[[int], F32],
    hooks: FrameHooks,
    encoder: FrameEncoder,
) -> Iterator[LazyFrame]:
    """The device's part of ``items``, in order, here; each frame's CPU part deferred (``LazyFrame``).
    Keyframe images for reprojection are the written pixels read back (``written_display``), whether
    this loop made them or ``known_key`` supplies them, so a frame comes out the same however the job
    was split, resumed, or whichever thread finished it."""
    keys: dict[int, Callable[[], F32]] = {}
    keyframes = [item.frame for item in items if item.keyframe]
    following = dict(zip(keyframes, keyframes[1:], strict=False))  # keyframe -> the next one to make

    def key_image(frame: int) -> Callable[[], F32]:
        if frame not in keys:
            image = known_key(frame)
            keys[frame] = lambda: image
        return keys[frame]

    for item in items:
        frame = item.frame
        hooks.before_frame(frame)
        display: Callable[[], tuple[F32, float | None]]
        if not item.keyframe:
            assert item.prev_key is not None and item.next_key is not None
            left = (item.prev_key, key_image(item.prev_key))
            right = (item.next_key, key_image(item.next_key))

            def display(frame: int = frame, left: Any = left, right: Any = right) -> tuple[F32, float | None]:
                image, cover = renderer.inbetween(frame, (left[0], left[1]()), (right[0], right[1]()))
                return image, cover
        else:
            prev = None
            if settings.temporal and item.prev_key is not None:
                prev = (item.prev_key, key_image(item.prev_key)())  # waits for its colour, if pending
            for old in [k for k in keys if item.prev_key is None or k < item.prev_key]:
                del keys[old]

            def on_step(step: int, steps: int, frame: int = frame) -> None:
                hooks.after_step(frame, step, steps)

            def on_tick(frame: int = frame) -> None:
                hooks.tick(frame)

            if frame in following:  # its passes are read while the device makes this one
                renderer.prefetch(following[frame])
            image, cover = renderer.keyframe(
                frame, frame_seed(settings.seed, frame), prev, on_step=on_step, on_tick=on_tick
            )

            def display(image: F32 = image, cover: float | None = cover) -> tuple[F32, float | None]:
                return image, cover

        lazy = LazyFrame(item, display, renderer, settings, encoder)
        if lazy.keeps_key:
            keys[frame] = lazy.key
        yield lazy


def render_frames(
    renderer: ShotRenderer,
    items: Sequence[FramePlan],
    settings: LoopSettings,
    known_key: Callable[[int], F32],
    hooks: FrameHooks,
    encoder: FrameEncoder,
) -> Iterator[RenderedFrame]:
    """``frames``, each finished in this thread before the next starts (a Ray actor sends them)."""
    for lazy in frames(renderer, items, settings, known_key, hooks, encoder):
        yield lazy.rendered()
