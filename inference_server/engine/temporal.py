"""Camera-aware temporal coherence: keyframe plan, keyframe init, in-between frames.

- Keyframes every N frames (``Shot.keyframe_step``) plus the shot's last frame are made by diffusion;
  in REPROJECT mode each keyframe after the first starts from the previous keyframe reprojected into its
  camera (img2img-style init at the request's strength), so the look carries over.
- In-between frames are no diffusion at all: the two neighbouring keyframes are reprojected into the
  frame's camera with depth and blended by time; where only one keyframe saw a pixel, it alone is used.
- With motion-vector passes, pixels the simulation moves follow their motion instead of the camera
  (motion.py); static ones keep the exact depth + camera reprojection.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from . import depth2img, img2img
from .mode import F32, Mode
from .motion import ShotFlow


@dataclass(frozen=True)
class FramePlan:
    frame: int
    keyframe: bool
    prev_key: int | None  # keyframe whose output seeds this one (keyframes) / left neighbour (in-betweens)
    next_key: int | None  # right neighbour (in-betweens only)


def plan_frames(frames: list[int], keyframe_step: int) -> list[FramePlan]:
    """Frames in the order to make them: each keyframe, then the in-betweens it closes."""
    step = max(1, keyframe_step)
    keys = [f for i, f in enumerate(frames) if i % step == 0]
    if frames and keys[-1] != frames[-1]:
        keys.append(frames[-1])  # in-betweens always have a keyframe on both sides
    key_set = set(keys)
    order: list[FramePlan] = []
    prev: int | None = None
    for key in keys:
        order.append(FramePlan(key, True, prev, None))
        if prev is not None:
            order += [FramePlan(f, False, prev, key) for f in frames if prev < f < key and f not in key_set]
        prev = key
    return order


def keyframe_init(
    prev_output: F32, prev_frame: int, frame: int, flow: ShotFlow, fallback: F32
) -> tuple[F32, float]:
    """The previous keyframe's output carried into this frame (camera + depth; moving pixels along their
    motion vectors when the shot has them); ``fallback`` where it saw nothing.

    ``flow`` works at ``fallback``'s size. Returns (init image, fraction of pixels the warp covered).
    """
    warped, valid = flow.warp(prev_output, prev_frame, frame)
    init = np.where(valid[..., None], warped, fallback).astype(np.float32)
    return init, float(valid.mean())


def inbetween(
    frame: int, left: tuple[int, F32], right: tuple[int, F32], flow: ShotFlow, *, use_motion: bool = True
) -> tuple[F32, float]:
    """Blend of the two neighbouring keyframes ((frame, display image) each) carried into ``frame``.

    Returns the image at ``flow``'s size and the fraction of pixels at least one keyframe covered.
    ``use_motion=False`` ignores motion passes (the camera-only method, for comparisons).
    """
    (fa, img_a), (fb, img_b) = left, right
    wb = (frame - fa) / (fb - fa)
    warp_a, valid_a = flow.warp(img_a, fa, frame, use_motion=use_motion)
    warp_b, valid_b = flow.warp(img_b, fb, frame, use_motion=use_motion)
    w_a = np.where(valid_a, 1.0 - wb, 0.0).astype(np.float32)
    w_b = np.where(valid_b, wb, 0.0).astype(np.float32)
    total = w_a + w_b
    none: npt.NDArray[np.bool_] = total <= 0
    # Seen by neither keyframe: plain time blend of the border-clamped samples (nothing better known).
    w_a = np.where(none, 1.0 - wb, w_a / np.where(none, 1.0, total))
    w_b = np.where(none, wb, w_b / np.where(none, 1.0, total))
    out = warp_a * w_a[..., None] + warp_b * w_b[..., None]
    return np.ascontiguousarray(out, dtype=np.float32), float(1.0 - none.mean())


MODE = Mode(
    name="temporal",
    # Keyframes start from the previous one reprojected: an image-conditioned pipeline must exist.
    available=lambda m: img2img.MODE.available(m) or depth2img.MODE.available(m),
)
