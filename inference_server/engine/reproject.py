"""Reprojection with the known shot camera (docs/temporal.md, "The backward warp").

Backward warp: every pixel of the *target* frame is lifted to 3D with the target's depth, moved through
world space into the *source* camera, and the source image is sampled there. A depth test against the
source's own depth marks disocclusions (what the source camera could not see); pixels that land outside
the source frame or behind its camera are invalid too.

Without a depth pass, the target's depth is a stated approximation: a plane facing the camera at a fixed
distance (``plane_depth``), exact for pure camera rotation and for the plane itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from genfx.camera import CameraSample

if TYPE_CHECKING:  # torch loads on first warp: the mode objects import this module without it
    import torch

F32 = npt.NDArray[np.float32]
DEPTH_TOLERANCE = 0.03  # relative; bilinear depth lookups at grazing angles need ~3% (docs/temporal.md)
FAR_DEPTH = 1e6  # stands in for +inf (sky) so the maths stays finite; a direction, effectively


@dataclass(frozen=True)
class View:
    """A camera sample plus the lens-reference resolution (for a derived vertical aperture)."""

    sample: CameraSample
    ref_width: int
    ref_height: int

    def tan_half(self) -> tuple[float, float]:
        """(x, y) scale: normalised image coordinate per unit of x/z (film / focal on each axis)."""
        s = self.sample
        fx = s.focal_length_mm / s.horizontal_aperture_mm
        fy = s.focal_length_mm / s.vertical_aperture(self.ref_width, self.ref_height)
        return fx, fy


def plane_depth(height: int, width: int, distance: float) -> F32:
    return np.full((height, width), distance, dtype=np.float32)


def default_plane_distance(view: View, fallback: float = 10.0) -> float:
    """Distance from the camera to the world origin along its view axis (the subject of an orbit)."""
    m = view.sample.matrix()
    forward = -m[:3, 2] / np.linalg.norm(m[:3, 2])
    along = float(np.dot(-m[:3, 3], forward))
    return along if along > 1e-6 else fallback


def finite_depth(depth: F32) -> torch.Tensor:
    import torch

    z = torch.from_numpy(np.ascontiguousarray(depth, dtype=np.float32))
    return torch.where(torch.isfinite(z) & (z > 0), z, torch.full_like(z, FAR_DEPTH))


def source_grid(dst_depth: F32, dst: View, src: View) -> tuple[torch.Tensor, torch.Tensor]:
    """For each target pixel: where it lands in the source image (grid_sample coords) and its source z.

    Returns (grid (1, H, W, 2) in [-1, 1] with align_corners=False, z_src (H, W) camera depth). float32
    throughout (0.001 px at 4K); the 4x4 camera algebra is done in float64 first.
    """
    import torch

    h, w = dst_depth.shape
    z = finite_depth(dst_depth)
    fx_d, fy_d = dst.tan_half()
    fx_s, fy_s = src.tan_half()
    # dst camera -> world -> src camera, column vectors (p_world = M @ p_cam).
    rel = np.linalg.inv(src.sample.matrix()) @ dst.sample.matrix()
    r, t = rel[:3, :3], rel[:3, 3]
    # Pixel centres at +0.5; a = x/z and b = y/z of the target ray (camera looks down -Z).
    a = ((torch.arange(w, dtype=torch.float32) + 0.5) / w - 0.5) / fx_d
    b = -((torch.arange(h, dtype=torch.float32) + 0.5) / h - 0.5) / fy_d
    # q = R @ (a z, b z, -z) + t, one row at a time: the ray direction is separable in (row, column).
    q = []
    for k in range(3):
        direction = float(r[k, 0]) * a[None, :] + float(r[k, 1]) * b[:, None] - float(r[k, 2])
        q.append(direction * z + float(t[k]))
    z_src = -q[2]
    inv = torch.where(z_src.abs() > 1e-9, z_src, torch.full_like(z_src, 1e-9)).reciprocal_()
    # Normalised [0, 1] coords times 2 minus 1 = grid_sample's [-1, 1].
    gx = q[0].mul_(inv).mul_(2 * fx_s)
    gy = q[1].mul_(inv).mul_(-2 * fy_s)
    grid = torch.stack([gx, gy], dim=-1).unsqueeze(0)
    return grid, z_src


def border_sample(image: torch.Tensor, grid: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    import torch

    return torch.nn.functional.grid_sample(image, grid, mode=mode, padding_mode="border", align_corners=False)


def camera_correspondence(
    dst_depth: F32, dst: View, src: View, src_depth: F32 | None = None, tolerance: float = DEPTH_TOLERANCE
) -> tuple[torch.Tensor, torch.Tensor]:
    """For each target pixel: where the source shows it (grid (1, H, W, 2)) and whether that is valid
    (H, W): in the source frame, in front of its camera, and (with ``src_depth``) depth-tested."""
    import torch

    grid, z_src = source_grid(dst_depth, dst, src)
    with torch.no_grad():
        valid = (grid[0].abs() <= 1.0).all(dim=-1) & (z_src > 0)
        if src_depth is not None:
            d_src = border_sample(finite_depth(src_depth)[None, None], grid)[0, 0]
            valid = valid & ((z_src - d_src).abs() <= tolerance * z_src)
    return grid, valid


def sample_image(src_image: F32, grid: torch.Tensor) -> F32:
    """``src_image`` (h, w, C) sampled at ``grid`` (1, H, W, 2): (H, W, C), bilinear, border-clamped."""
    import torch

    with torch.no_grad():
        img = torch.from_numpy(np.ascontiguousarray(src_image, dtype=np.float32)).permute(2, 0, 1)[None]
        warped = border_sample(img.contiguous(), grid)[0].permute(1, 2, 0)
    return np.ascontiguousarray(warped.numpy())


def backward_warp(
    src_image: F32,
    dst_depth: F32,
    dst: View,
    src: View,
    src_depth: F32 | None = None,
    tolerance: float = DEPTH_TOLERANCE,
) -> tuple[F32, npt.NDArray[np.bool_]]:
    """Warp ``src_image`` (h, w, C) into the target camera; returns (warped (H, W, C), valid (H, W)).

    ``dst_depth`` (H, W) is the target frame's camera Z; ``src_depth`` (h, w), when given, enables the
    disocclusion test. Source and target may differ in size (same aspect): coordinates are normalised.
    """
    grid, valid = camera_correspondence(dst_depth, dst, src, src_depth, tolerance)
    return sample_image(src_image, grid), valid.numpy()
