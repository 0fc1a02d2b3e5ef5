"""One shot's frames as display images: the mode's diffusion for keyframes, reprojection in between.

Resolution policy: diffusion runs at the model's native scale (``generation_size``); the result is
upscaled to the output size (tiled x4 upscaler when configured and the output is at least twice the
generated size, a Lanczos resize otherwise). In-betweens and the output alpha work at output size;
keyframe inits work at generation size. Everything here is display sRGB in [0, 1]; colour conversion
and EXR writing belong to the worker.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import modes
from .depth2img import normalise_depth, shot_depth_range
from .mode import F32, Keyframe, StageTime, StepFn
from .passes import READERS
from .reproject import View, plane_depth
from .temporal import inbetween, keyframe_init
from .txt2img import generation_size
from .upscale import X4Upscaler, resize, resize_depth

GREY = 0.5  # neutral start image for inpaint/depth without a plate
UPSCALE_MIN_RATIO = 2.0  # below this a resize is as good as a diffusion upscale, and far cheaper


@dataclass(frozen=True)
class ShotSpec:
    prompt: str
    negative_prompt: str
    steps: int
    guidance: float
    strength: float
    width: int  # output
    height: int
    native_width: int
    native_height: int
    mode: str  # a shot mode's name (engine/modes.py)
    views: Mapping[int, View]
    passes: Mapping[int, Mapping[str, Path]] = field(default_factory=dict)  # frame -> kind -> file
    plane_distance: float = 10.0  # used when there is no depth pass

    @property
    def has_depth(self) -> bool:
        return any("depth" in p for p in self.passes.values())

    @property
    def has(self) -> set[str]:
        return {k for p in self.passes.values() for k in p}


@dataclass(frozen=True)
class OutputPath:
    """How a shot's frames get from diffusion to the output size."""

    gen_size: tuple[int, int]  # (width, height) diffusion runs at
    upscale_x4: bool  # the tiled x4 diffusion upscaler, then a Lanczos resize to the exact size

    @property
    def name(self) -> str:
        """What the manifest and the estimates call it: "upscale_x4+lanczos" or "lanczos"."""
        return f"{modes.UPSCALE_X4}+lanczos" if self.upscale_x4 else "lanczos"


def output_path(
    width: int, height: int, native_width: int, native_height: int, capabilities: Collection[str]
) -> OutputPath:
    """Generation at the model's native scale; the x4 upscaler only where it is worth it."""
    gw, gh = generation_size(width, height, native_width, native_height)
    ratio = max(width / gw, height / gh)
    return OutputPath((gw, gh), modes.UPSCALE_X4 in capabilities and ratio >= UPSCALE_MIN_RATIO)


class ShotRenderer:
    """Renders one shot's frames; ``load(mode)`` gives the model's pipeline for a mode."""

    def __init__(
        self,
        spec: ShotSpec,
        load: Callable[[str], Any],
        capabilities: Collection[str],
        on_stage: Callable[[StageTime], None] | None = None,
    ) -> None:
        """``load(mode name)`` gives the model's pipeline for a mode; ``capabilities`` are the model's;
        ``on_stage`` hears how long each keyframe's diffusion and upscale took."""
        self.spec = spec
        self.output = output_path(
            spec.width, spec.height, spec.native_width, spec.native_height, capabilities
        )
        self.gen_size = self.output.gen_size
        self.upscale_x4 = self.output.upscale_x4
        self._load = load
        self._on_stage = on_stage
        self._x4: X4Upscaler | None = None
        self._cache: OrderedDict[tuple[int, str, int, int], F32] = OrderedDict()
        # Passes are read from the worker's thread (keyframes) and the frame writer's (in-betweens, alpha).
        self._cache_lock = threading.RLock()
        self.depth_range = self._depth_range() if spec.mode == "depth" else None

    # ---- passes -----------------------------------------------------------------------------------

    def pass_at(self, frame: int, kind: str, width: int, height: int) -> F32 | None:
        """A pass resized to (width, height), or None when the shot has no such pass. Small LRU cache."""
        path = self.spec.passes.get(frame, {}).get(kind)
        if path is None:
            return None
        with self._cache_lock:
            return self._pass_at(path, frame, kind, width, height)

    def _pass_at(self, path: Path, frame: int, kind: str, width: int, height: int) -> F32:
        key = (frame, kind, width, height)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        full = self._cache.get((frame, kind, 0, 0))
        if full is None:
            full = READERS[kind](path, frame)
            self._remember((frame, kind, 0, 0), full)
        sized = resize_depth(full, width, height) if kind == "depth" else resize(full, width, height)
        self._remember(key, sized)
        return sized

    def _remember(self, key: tuple[int, str, int, int], value: F32) -> None:
        self._cache[key] = value
        while len(self._cache) > 16:  # a few frames of every pass at two sizes
            self._cache.popitem(last=False)

    def depth_at(self, frame: int, width: int, height: int) -> F32:
        """Camera Z for reprojection: the depth pass, else the stated plane approximation."""
        depth = self.pass_at(frame, "depth", width, height)
        return depth if depth is not None else plane_depth(height, width, self.spec.plane_distance)

    def _src_depth(self, frame: int, width: int, height: int) -> F32 | None:
        # A plane has no occlusions: no depth test without a real pass.
        return self.pass_at(frame, "depth", width, height) if self.spec.has_depth else None

    def _depth_range(self) -> tuple[float, float]:
        # Shot-wide, from full-resolution passes: the model sees one consistent depth scale all shot.
        depths = (READERS["depth"](p["depth"], f) for f, p in sorted(self.spec.passes.items()))
        return shot_depth_range(depths)

    def alpha(self, frame: int) -> F32 | None:
        return self.pass_at(frame, "mask", self.spec.width, self.spec.height)

    # ---- keyframes --------------------------------------------------------------------------------

    def keyframe(
        self,
        frame: int,
        seed: int,
        prev: tuple[int, F32] | None,
        on_step: StepFn | None = None,
        on_tick: Callable[[], None] | None = None,
    ) -> tuple[F32, float | None]:
        """(display image at output size, reprojection coverage or None for a fresh keyframe).

        ``prev`` = (frame, display image at output size) of the keyframe to carry the look from.
        """
        spec = self.spec
        gw, gh = self.gen_size
        plate = self.pass_at(frame, "plate", gw, gh)
        base = plate if plate is not None else np.full((gh, gw, 3), GREY, np.float32)
        coverage: float | None = None
        init, strength = base, spec.strength if plate is not None else 1.0
        if prev is not None:
            pf, prev_img = prev
            fallback = base if plate is not None else resize(prev_img, gw, gh)
            init, coverage = keyframe_init(
                resize(prev_img, gw, gh),
                self._src_depth(pf, gw, gh),
                spec.views[pf],
                self.depth_at(frame, gw, gh),
                spec.views[frame],
                fallback,
            )
            strength = spec.strength
        depth = self.pass_at(frame, "depth", gw, gh)
        if depth is not None and self.depth_range is not None:
            depth = normalise_depth(depth, *self.depth_range)
        steps_run = 0

        def counted(step: int, steps: int) -> None:
            nonlocal steps_run
            steps_run = step
            if on_step is not None:
                on_step(step, steps)

        key = Keyframe(
            base=base,
            init=init,
            strength=strength,
            carried=prev is not None,
            mask=self.pass_at(frame, "mask", gw, gh),
            depth=depth,
            prompt=spec.prompt,
            negative_prompt=spec.negative_prompt,
            seed=seed,
            steps=spec.steps,
            guidance=spec.guidance,
            on_step=counted,
        )
        mode = modes.get(spec.mode)
        if prev is not None and mode.reprojected_init:
            mode = modes.get(mode.reprojected_init)
        assert mode.render is not None, f"{mode.name} is not a shot mode"
        pipe = self._load(mode.name)
        started = time.perf_counter()
        image = mode.render(pipe, key)
        self._timed("diffusion", started, steps_run)
        return self._to_output(image, seed, on_tick), coverage

    def _timed(self, stage: str, started: float, steps: int) -> None:
        if self._on_stage is not None and steps > 0:
            self._on_stage(StageTime(stage, self.gen_size, steps, time.perf_counter() - started))

    def _to_output(self, image: F32, seed: int, on_tick: Callable[[], None] | None) -> F32:
        spec = self.spec
        if self.upscale_x4:
            if self._x4 is None:
                self._x4 = X4Upscaler(self._load(modes.UPSCALE_X4))

            def tick(step: int, steps: int) -> None:
                if on_tick is not None:
                    on_tick()

            started = time.perf_counter()
            image = self._x4.upscale(
                image,
                prompt=spec.prompt,
                negative_prompt=spec.negative_prompt,
                seed=seed,
                steps=spec.steps,
                guidance=spec.guidance,
                on_step=tick,
            )
            self._timed(modes.UPSCALE_X4, started, spec.steps)
        return resize(image, spec.width, spec.height)

    # ---- in-betweens ------------------------------------------------------------------------------

    def inbetween(self, frame: int, left: tuple[int, F32], right: tuple[int, F32]) -> tuple[F32, float]:
        """(display image at output size, fraction of pixels a keyframe saw)."""
        w, h = self.spec.width, self.spec.height
        keys = tuple((kf, img, self._src_depth(kf, w, h), self.spec.views[kf]) for kf, img in (left, right))
        return inbetween(frame, self.depth_at(frame, w, h), self.spec.views[frame], keys)  # type: ignore[arg-type]
