"""One shot's frames as display images: the mode's diffusion for keyframes, reprojection in between.

Resolution policy: diffusion runs at the model's native scale (``generation_size``); the result is
upscaled to the output size (tiled x4 upscaler when configured and the output is at least twice the
generated size, a Lanczos resize otherwise). In-betweens and the output alpha work at output size;
keyframe inits work at generation size. Everything here is display sRGB in [0, 1]; colour conversion
and EXR writing belong to the worker.

Depth-conditioned modes (depth, sim) normalise depth with the shot's range (genfx.passes); the sim mode's
conditioning image is genfx.sim_condition's, as the trainer built it. With motion-vector passes,
keyframe inits and in-betweens move the pixels the simulation moves along their motion (motion.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from genfx.passes import shot_depth_range
from genfx.sim_condition import sim_condition

from . import modes
from .depth2img import normalise_depth
from .mode import F32, Keyframe, StageTime, StepFn
from .motion import ShotFlow
from .pass_cache import PassCache
from .passes import READERS
from .reproject import View, plane_depth
from .temporal import inbetween, keyframe_init
from .txt2img import generation_size
from .upscale import X4Upscaler, resize, resize_depth, resize_motion

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
    controlnet_scale: float = 1.0  # sim mode: the ControlNet's strength

    @property
    def has_depth(self) -> bool:
        return any("depth" in p for p in self.passes.values())

    @property
    def has_motion(self) -> bool:
        return any("motion" in p for p in self.passes.values())

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
        # A few frames of every pass at two sizes; read from the worker's thread (keyframes), the frame
        # writer's (in-betweens, alpha) and prefetch threads (the next keyframe's).
        self._passes = PassCache(16)
        self.depth_range = self._depth_range() if spec.mode in ("depth", "sim") else None

    # ---- passes -----------------------------------------------------------------------------------

    def pass_at(self, frame: int, kind: str, width: int, height: int) -> F32 | None:
        """A pass resized to (width, height), or None when the shot has no such pass. Small LRU cache."""
        if kind not in self.spec.passes.get(frame, {}):
            return None
        resizer = {"depth": resize_depth, "motion": resize_motion}.get(kind, resize)
        return self._passes.get(
            (frame, kind, width, height), lambda: resizer(self._full(frame, kind), width, height)
        )

    def _full(self, frame: int, kind: str) -> F32:
        """A pass at its own resolution (cached under size (0, 0))."""
        return self._passes.get(
            (frame, kind, 0, 0), lambda: READERS[kind](self.spec.passes[frame][kind], frame)
        )

    def prefetch(self, frame: int) -> None:
        """Starts reading the passes ``keyframe(frame)`` will ask for (at generation size) on a thread of
        their own, so that the device's next keyframe does not wait for files. A pass that fails to load
        is not kept: the keyframe reads it again and reports the error."""
        kinds = list(self.spec.passes.get(frame, {}))
        if not kinds:
            return
        gw, gh = self.gen_size

        def read() -> None:
            for kind in kinds:
                try:
                    self.pass_at(frame, kind, gw, gh)
                except Exception:  # the keyframe's own read raises it where the job can report it
                    return

        threading.Thread(target=read, name=f"genfx-prefetch-{frame}", daemon=True).start()

    def depth_at(self, frame: int, width: int, height: int) -> F32:
        """Camera Z for reprojection: the depth pass, else the stated plane approximation."""
        depth = self.pass_at(frame, "depth", width, height)
        return depth if depth is not None else plane_depth(height, width, self.spec.plane_distance)

    def flow(self, width: int, height: int) -> ShotFlow:
        """The shot's geometry at one size: depth (pass or plane), motion vectors when given."""

        def motion(frame: int) -> F32:
            field = self.pass_at(frame, "motion", width, height)
            assert field is not None
            return field

        return ShotFlow(
            width,
            height,
            self.spec.views,
            lambda frame: self.depth_at(frame, width, height),
            motion if self.spec.has_motion else None,
            depth_test=self.spec.has_depth,  # a plane has no occlusions to test
        )

    def _depth_range(self) -> tuple[float, float] | None:
        # Shot-wide, from full-resolution passes: the model sees one consistent depth scale all shot.
        depths = (READERS["depth"](p["depth"], f) for f, p in sorted(self.spec.passes.items()))
        found = shot_depth_range(depths)
        if found is None and self.spec.mode == "depth":
            raise ValueError("depth: no finite positive depth in any frame of the shot")
        return found

    def _condition(self, frame: int, width: int, height: int) -> F32:
        """The sim ControlNet's conditioning at (width, height): built at pass resolution and area-resized,
        as the trainer's ETL built it; no mask pass = no debris (0)."""
        depth = self._full(frame, "depth")
        motion = self._full(frame, "motion")
        mask = self._full(frame, "mask") if "mask" in self.spec.passes[frame] else np.zeros_like(depth)
        return sim_condition(depth, motion, mask, near_far=self.depth_range, size=(width, height))

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
            init, coverage = keyframe_init(resize(prev_img, gw, gh), pf, frame, self.flow(gw, gh), fallback)
            strength = spec.strength
        depth = None
        if spec.mode == "depth":  # depth2img's input: the pass, normalised with the shot's range
            raw, shot_range = self.pass_at(frame, "depth", gw, gh), self.depth_range
            assert raw is not None and shot_range is not None
            depth = normalise_depth(raw, *shot_range)
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
            control=self._condition(frame, gw, gh) if spec.mode == "sim" else None,
            control_scale=spec.controlnet_scale,
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

    def inbetween(
        self, frame: int, left: tuple[int, F32], right: tuple[int, F32], *, use_motion: bool = True
    ) -> tuple[F32, float]:
        """(display image at output size, fraction of pixels a keyframe saw)."""
        flow = self.flow(self.spec.width, self.spec.height)
        return inbetween(frame, left, right, flow, use_motion=use_motion)
