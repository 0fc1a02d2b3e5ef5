"""Ray-cast one frame of the collapse: beauty, camera Z depth, motion to the next frame, debris mask.

Rays go through pixel centres. Each ray is ``o + t * d`` with ``d`` the camera-space direction
(x, y, -1) rotated to world, so the hit parameter ``t`` IS the camera-space Z depth. A hit point is
carried with its piece to the next frame (exact rigid transform) and projected through the next
frame's camera; the difference is the motion vector (passes.py convention: pixels, +Y up).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from genfx.camera import CameraSample
from training.synth.dust import optical_depth, puffs_at
from training.synth.simulation import Pieces, moving, transforms_at

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

SUN_DIR = np.array([0.45, 0.8, 0.35]) / np.linalg.norm([0.45, 0.8, 0.35])
SUN = np.array([3.2, 3.0, 2.7])  # scene-linear: lit faces go above 1.0, as a real render does
SKY_AMBIENT = np.array([0.30, 0.36, 0.45])
DUST_ALBEDO = np.array([0.42, 0.38, 0.33])
GROUND_ALBEDO = np.array([0.20, 0.19, 0.17])
SKY_ID, GROUND_ID = -1, -2


@dataclass(frozen=True)
class FramePasses:
    beauty: F32  # (H, W, 4) premultiplied, A = 1
    depth: F32  # (H, W) camera Z, inf = sky
    motion: F32  # (H, W, 2) pixels to the next frame, +X right, +Y up
    mask: F32  # (H, W) debris/dust coverage


def _focal_px(cam: CameraSample, width: int, height: int) -> tuple[float, float]:
    fx = cam.focal_length_mm / cam.horizontal_aperture_mm * width
    fy = cam.focal_length_mm / cam.vertical_aperture(width, height) * height
    return fx, fy


def pixel_rays(cam: CameraSample, width: int, height: int) -> tuple[F64, F64]:
    """(origin (3,), directions (H*W, 3)) with camera-space z = -1, so t = camera Z depth."""
    fx, fy = _focal_px(cam, width, height)
    u, v = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    d_cam = np.stack([(u - width / 2) / fx, -(v - height / 2) / fy, -np.ones_like(u)], -1).reshape(-1, 3)
    m = cam.matrix()
    return m[:3, 3].copy(), d_cam @ m[:3, :3].T


def project(cam: CameraSample, width: int, height: int, points: F64) -> tuple[F64, F64, F64]:
    """World points (N, 3) -> (u, v, camera Z) continuous pixels, origin top-left, v down."""
    fx, fy = _focal_px(cam, width, height)
    m_inv = np.linalg.inv(cam.matrix())
    p = points @ m_inv[:3, :3].T + m_inv[:3, 3]
    z = -p[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        return width / 2 + fx * p[:, 0] / z, height / 2 - fy * p[:, 1] / z, z


def _intersect_boxes(
    origin: F64, dirs: F64, rot: F64, centre: F64, half: F64
) -> tuple[F64, npt.NDArray[np.int64], F64]:
    """Nearest hit over all boxes: (t, piece index or SKY_ID, world normal)."""
    n = dirs.shape[0]
    best_t = np.full(n, np.inf)
    best_id = np.full(n, SKY_ID, dtype=np.int64)
    best_nrm = np.zeros((n, 3))
    for i in range(rot.shape[0]):
        o = rot[i].T @ (origin - centre[i])
        d = dirs @ rot[i]  # rows: R^T d
        d = np.where(np.abs(d) < 1e-12, 1e-12, d)
        t1, t2 = (-half[i] - o) / d, (half[i] - o) / d
        t_near = np.minimum(t1, t2)
        axis = t_near.argmax(axis=1)
        near = t_near.max(axis=1)
        far = np.maximum(t1, t2).min(axis=1)
        hit = (near <= far) & (near > 1e-6) & (near < best_t)
        if not hit.any():
            continue
        best_t[hit] = near[hit]
        best_id[hit] = i
        local = np.zeros((int(hit.sum()), 3))
        rows = np.arange(local.shape[0])
        local[rows, axis[hit]] = -np.sign(d[hit, axis[hit]])
        best_nrm[hit] = local @ rot[i].T
    return best_t, best_id, best_nrm


def _sun_blocked(points: F64, rot: F64, centre: F64, half: F64) -> npt.NDArray[np.bool_]:
    """Whether a ray from each surface point towards the sun hits any box (a hard shadow)."""
    blocked = np.zeros(points.shape[0], dtype=bool)
    start = points + SUN_DIR * 1e-3  # off the surface, so a face does not shadow itself
    for i in range(rot.shape[0]):
        o = (start - centre[i]) @ rot[i]
        d = rot[i].T @ SUN_DIR
        d = np.where(np.abs(d) < 1e-12, 1e-12, d)
        t1, t2 = (-half[i] - o) / d, (half[i] - o) / d
        near = np.minimum(t1, t2).max(axis=1)
        far = np.maximum(t1, t2).min(axis=1)
        blocked |= (near <= far) & (far > 0)
    return blocked


def _texture(points: F64, scale: float) -> F64:
    # Cheap procedural variation so motion is visible in the beauty (and learnable).
    s = np.sin(points[:, 0] * scale) * np.sin(points[:, 1] * scale * 1.3) * np.sin(points[:, 2] * scale * 0.7)
    return 0.85 + 0.15 * s


def render_frame(
    pieces: Pieces,
    cam: CameraSample,
    next_cam: CameraSample,
    time: float,
    next_time: float,
    width: int,
    height: int,
) -> FramePasses:
    origin, dirs = pixel_rays(cam, width, height)
    rot, centre = transforms_at(pieces, time)
    t, ids, normal = _intersect_boxes(origin, dirs, rot, centre, pieces.half)
    down = dirs[:, 1] < -1e-12
    ground_t = np.where(down, -origin[1] / np.where(down, dirs[:, 1], -1.0), np.inf)
    on_ground = (ground_t > 1e-6) & (ground_t < t)
    t = np.where(on_ground, ground_t, t)
    ids = np.where(on_ground, GROUND_ID, ids)
    normal[on_ground] = (0.0, 1.0, 0.0)
    hit = ids != SKY_ID
    points = origin + dirs * np.where(hit, t, 0.0)[:, None]

    # Motion: carry each hit point with its piece to the next frame (the ground stays put).
    rot_next, centre_next = transforms_at(pieces, next_time)
    moved = points.copy()
    on_piece = ids >= 0
    pid = ids[on_piece]
    local = np.einsum("nji,nj->ni", rot[pid], points[on_piece] - centre[pid])
    moved[on_piece] = np.einsum("nij,nj->ni", rot_next[pid], local) + centre_next[pid]
    u1, v1, z1 = project(next_cam, width, height, moved)
    u0, v0 = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    mv = np.stack([u1 - u0.ravel(), -(v1 - v0.ravel())], -1)
    mv[~hit | ~(z1 > 0)] = 0.0  # no surface, or it goes behind the next camera

    # Shading: sun (with shadows) + sky ambient, procedural texture in each piece's own frame.
    albedo = np.tile(GROUND_ALBEDO, (dirs.shape[0], 1))
    albedo[on_piece] = pieces.albedo[pid] * _texture(local, 2.1)[:, None]
    ground = ids == GROUND_ID
    tiles = (np.floor(points[ground, 0] / 2) + np.floor(points[ground, 2] / 2)) % 2
    albedo[ground] *= (0.8 + 0.2 * tiles)[:, None]
    lit = np.clip(normal @ SUN_DIR, 0.0, None)
    shade_idx = np.flatnonzero(hit & (lit > 0))
    if shade_idx.size:
        shadow = _sun_blocked(points[shade_idx], rot, centre, pieces.half)
        lit[shade_idx[shadow]] = 0.0
    rgb = albedo * (lit[:, None] * SUN + SKY_AMBIENT * (0.6 + 0.4 * normal[:, 1:2]))
    sky = SKY_AMBIENT * 1.6 + 0.4 * np.clip(dirs[:, 1:2] / np.linalg.norm(dirs, axis=1, keepdims=True), 0, 1)
    rgb = np.where(hit[:, None], rgb, sky)

    # Dust: extinction to the surface (or to infinity through the sky).
    tau = optical_depth(puffs_at(pieces, time), origin, dirs, np.where(hit, t, np.inf))
    dust = 1.0 - np.exp(-tau)
    rgb = rgb * (1.0 - dust[:, None]) + dust[:, None] * DUST_ALBEDO * (SUN * 0.5 + SKY_AMBIENT)

    debris = np.zeros(dirs.shape[0])
    debris[on_piece] = moving(pieces, time)[pid]
    shape = (height, width)
    beauty = np.concatenate([rgb, np.ones((rgb.shape[0], 1))], axis=1).reshape(height, width, 4)
    return FramePasses(
        beauty=beauty.astype(np.float32),
        depth=np.where(hit, t, np.inf).reshape(shape).astype(np.float32),
        motion=mv.reshape(height, width, 2).astype(np.float32),
        mask=np.maximum(debris, dust).reshape(shape).astype(np.float32),
    )
