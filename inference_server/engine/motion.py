"""Motion-aware correspondence between two frames of a shot (docs/temporal.md, section 4b).

Reprojection with depth and the two cameras (reproject.py) is exact for geometry that does not move. A
collapse moves: with a motion-vector pass (genfx.passes: pixels to the next frame, +Y up) every target
pixel is classified and followed by the right rule:

- **static** (its motion vector is what the camera alone would give it, within ``MOVING_PX``, or it
  sees no surface): depth + both cameras, one exact step over any frame gap, depth-tested against the
  source's depth (disocclusions invalid) — the camera-only method;
- **moving**: along the motion vectors, frame by frame. Towards a LATER source the vectors are chained
  forward (each sampled where the point is); towards an EARLIER source each step is inverted (the
  point q of frame k-1 with q + mv(q) = p, by fixed-point iteration; no convergence = a disocclusion).
  The point must stay in frame and the source's depth there must agree with its own within
  ``MOTION_DEPTH_TOLERANCE`` per frame of travel (debris moves in depth too), else another surface
  covers it in the source: invalid.

Everything works at one size (the caller's), in float32; motion vectors are in pixels OF THAT SIZE.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from genfx.passes import pixel_step

from .reproject import (
    DEPTH_TOLERANCE,
    F32,
    View,
    border_sample,
    camera_correspondence,
    finite_depth,
    sample_image,
    source_grid,
)

if TYPE_CHECKING:
    import torch

MOVING_PX = 0.5  # motion this far from the camera-induced flow makes a pixel "moving"
MOTION_DEPTH_TOLERANCE = 0.1  # relative depth change allowed per frame a moving point travels
INVERSE_ITERATIONS = 8
CONVERGED_PX = 0.5  # an inverted motion step must land within this of the target pixel
Bool = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class ShotFlow:
    """What correspondence needs about a shot, at one working size.

    ``depth(frame)``: camera Z (H, W) at that size (the pass, or the plane approximation);
    ``motion(frame)``: (H, W, 2) pixel vectors at that size, or None without motion passes;
    ``depth_test``: the depth is a real pass (a plane has no occlusions to test).
    """

    width: int
    height: int
    views: Mapping[int, View]
    depth: Callable[[int], F32]
    motion: Callable[[int], F32] | None
    depth_test: bool

    @property
    def has_motion(self) -> bool:
        return self.motion is not None

    def warp(self, src_image: F32, src: int, dst: int, *, use_motion: bool = True) -> tuple[F32, Bool]:
        """``src_image`` (frame ``src``, any size of the shot's aspect) seen from frame ``dst``:
        (warped (H, W, C) at the working size, valid (H, W)). ``use_motion=False``: camera only."""
        grid, valid = self.correspondence(dst, src, use_motion=use_motion)
        return sample_image(src_image, grid), valid.numpy()

    def moving(self, dst: int, src: int) -> Bool:
        """Pixels of ``dst`` that follow their motion vectors on the way to ``src`` (none without motion)."""
        import torch

        if self.motion is None or src == dst:
            return np.zeros((self.height, self.width), dtype=np.bool_)
        with torch.no_grad():
            depth = self.depth(dst)
            step = self._forward if src > dst else self._backward
            moving, _, _ = step(depth, dst, src, None)
        result: Bool = moving.numpy()
        return result

    # ---- correspondence ---------------------------------------------------------------------------

    def correspondence(
        self, dst: int, src: int, *, use_motion: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """For each pixel of ``dst``: where to sample ``src`` (grid_sample coords (1, H, W, 2)) and
        whether that sample shows the same surface point (H, W)."""
        import torch

        with torch.no_grad():
            depth = self.depth(dst)
            grid_c, valid_c = self._camera(depth, dst, src)
            if not (use_motion and self.motion is not None) or src == dst:
                return grid_c, valid_c
            if src > dst:
                moving, pos, ok = self._forward(depth, dst, src, grid_c if src == dst + 1 else None)
            else:
                moving, pos, ok = self._backward(depth, dst, src, grid_c if src == dst - 1 else None)
            ok = ok & self._depth_agrees(pos, src, depth, abs(src - dst))
            grid_m = self._to_grid(pos)
            grid = torch.where(moving[None, ..., None], grid_m, grid_c)
            valid = torch.where(moving, ok, valid_c)
            return grid, valid

    def _camera(self, depth: F32, dst: int, src: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The camera-only correspondence, depth-tested when the depth is a real pass."""
        src_depth = self.depth(src) if self.depth_test else None
        return camera_correspondence(depth, self.views[dst], self.views[src], src_depth)

    def _pixels(self) -> torch.Tensor:
        import torch

        u = torch.arange(self.width, dtype=torch.float32) + 0.5
        v = torch.arange(self.height, dtype=torch.float32) + 0.5
        return torch.stack(torch.meshgrid(u, v, indexing="xy"), dim=-1)  # (H, W, 2): x, y

    def _to_grid(self, pos: torch.Tensor) -> torch.Tensor:
        """Continuous pixel positions (pixel centres at +0.5) -> grid_sample coords, (1, H, W, 2)."""
        import torch

        scale = torch.tensor([2.0 / self.width, 2.0 / self.height])
        return (pos * scale - 1.0)[None]

    def _inside(self, pos: torch.Tensor) -> torch.Tensor:
        return (
            (pos[..., 0] >= 0)
            & (pos[..., 0] <= self.width)
            & (pos[..., 1] >= 0)
            & (pos[..., 1] <= self.height)
        )

    def _steps(self, frame: int) -> torch.Tensor:
        """Frame ``frame``'s motion as image-space steps (x right, y down), (1, 2, H, W) for sampling."""
        import torch

        assert self.motion is not None
        return torch.from_numpy(pixel_step(self.motion(frame))).permute(2, 0, 1)[None].contiguous()

    def _step_at(self, steps: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """The step (from ``_steps``) of the surface at each position: (H, W, 2)."""
        return border_sample(steps, self._to_grid(pos), "nearest")[0].permute(1, 2, 0)

    def _static(self, depth: F32, step: torch.Tensor, camera_grid: torch.Tensor) -> torch.Tensor:
        """Pixels whose step matches the camera-induced one (or that see no surface)."""
        import torch

        to_pixels = torch.tensor([self.width / 2, self.height / 2])
        camera_step = (camera_grid[0] + 1.0) * to_pixels - self._pixels()
        surface = torch.from_numpy(np.isfinite(depth) & (depth > 0))
        static: torch.Tensor = ~surface | ((step - camera_step).norm(dim=-1) <= MOVING_PX)
        return static

    def _forward(
        self, depth: F32, dst: int, src: int, next_grid: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(moving, position in ``src``, still traceable) chaining the motion of dst .. src-1."""
        import torch

        assert self.motion is not None
        start = self._pixels()
        first = torch.from_numpy(pixel_step(self.motion(dst)))
        if next_grid is None:
            next_grid, _ = source_grid(depth, self.views[dst], self.views[dst + 1])
        moving = ~self._static(depth, first, next_grid)
        pos = start + first
        ok = self._inside(pos)
        for k in range(dst + 1, src):
            pos = pos + self._step_at(self._steps(k), pos)
            ok = ok & self._inside(pos)
        return moving, pos, ok

    def _backward(
        self, depth: F32, dst: int, src: int, prev_grid: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(moving, position in ``src``, still traceable) inverting the motion of dst-1 .. src."""
        import torch

        pos = self._pixels()
        ok = torch.ones(pos.shape[:2], dtype=torch.bool)
        moving = torch.zeros_like(ok)
        for k in range(dst - 1, src - 1, -1):
            q, converged = self._invert(k, pos)
            if k == dst - 1:
                # Moving: it came from where the camera alone would not have brought it.
                if prev_grid is None:
                    prev_grid, _ = source_grid(depth, self.views[dst], self.views[dst - 1])
                camera_from = (prev_grid[0] + 1.0) * torch.tensor([self.width / 2, self.height / 2])
                surface = torch.from_numpy(np.isfinite(depth) & (depth > 0))
                moving = surface & converged & ((q - camera_from).norm(dim=-1) > MOVING_PX)
            ok = ok & converged & self._inside(q)
            pos = q
        return moving, pos, ok

    def _invert(self, frame: int, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q with q + step(frame, q) = target, per pixel, and whether it converged."""
        steps = self._steps(frame)
        q = target - self._step_at(steps, target)
        for _ in range(INVERSE_ITERATIONS):
            q = target - self._step_at(steps, q)
        residual = (q + self._step_at(steps, q) - target).norm(dim=-1)
        return q, residual <= CONVERGED_PX

    def _depth_agrees(self, pos: torch.Tensor, src: int, depth: F32, frames: int) -> torch.Tensor:
        """The source sees a surface at ``pos`` about as far as the point was: not something in front."""
        import torch

        if not self.depth_test:
            return torch.ones(pos.shape[:2], dtype=torch.bool)
        d_src = border_sample(finite_depth(self.depth(src))[None, None], self._to_grid(pos), "nearest")[0, 0]
        z = finite_depth(depth)
        return (d_src - z).abs() <= (DEPTH_TOLERANCE + MOTION_DEPTH_TOLERANCE * frames) * z
