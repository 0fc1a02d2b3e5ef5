"""A synthetic shot with exact depth: a textured wall and a card in front of it, a trucking camera.

Everything is analytic (ray casting), so reprojection and the warping error can be checked against truth.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import OpenEXR

from genfx.camera import CameraSample, CameraTrack

F32 = npt.NDArray[np.float32]
FOCAL, APERTURE = 35.0, 36.0
WALL_Z, CARD_Z, CARD_HALF = -8.0, -4.0, 1.0


def camera(frame: int, x: float, z: float = 0.0) -> CameraSample:
    m = np.eye(4)
    m[0, 3], m[2, 3] = x, z
    return CameraSample(frame, tuple(m.ravel().tolist()), FOCAL, APERTURE)


def track(frames: range, width: int, height: int, step: float = 0.15) -> CameraTrack:
    return CameraTrack(width, height, tuple(camera(f, (f - frames[0]) * step) for f in frames))


def render(sample: CameraSample, width: int, height: int) -> tuple[F32, F32]:
    """(colour (H, W, 3) in [0, 1], camera Z depth (H, W)) of the scene seen from ``sample``."""
    m = sample.matrix()
    cx, cz = m[0, 3], m[2, 3]
    fx = FOCAL / APERTURE
    fy = FOCAL / sample.vertical_aperture(width, height)
    u = (np.arange(width) + 0.5) / width
    v = (np.arange(height) + 0.5) / height
    rx = np.broadcast_to((u[None, :] - 0.5) / fx, (height, width))  # x per unit depth
    ry = np.broadcast_to(-(v[:, None] - 0.5) / fy, (height, width))
    depth = np.full((height, width), cz - WALL_Z)
    card_depth = cz - CARD_Z
    on_card = (np.abs(cx + rx * card_depth) <= CARD_HALF) & (np.abs(ry * card_depth) <= CARD_HALF)
    depth = np.where(on_card, card_depth, depth)
    wx, wy = cx + rx * depth, ry * depth
    checker = ((np.floor(wx * 2) + np.floor(wy * 2)) % 2).astype(np.float32)
    colour = np.stack(
        [0.2 + 0.6 * checker, 0.5 + 0.4 * np.sin(wx), np.where(on_card, 0.9, 0.2)], axis=-1
    ).astype(np.float32)
    return colour, depth.astype(np.float32)


def write_depth_exr(path: Path, depth: F32) -> Path:
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    with OpenEXR.File(header, {"Z": np.ascontiguousarray(depth, dtype=np.float32)}) as f:
        f.write(str(path))
    return path


def write_png(path: Path, image: F32) -> Path:
    from PIL import Image

    data = np.clip(np.round(image * 255), 0, 255).astype(np.uint8)
    Image.fromarray(data.squeeze()).save(path)
    return path
