"""Temporal consistency: warping error with the known camera, depth and motion (Lai et al., ECCV 2018).

For each consecutive pair (t, t+1), frame t+1 is warped into frame t with the exact flow (camera
matrices + depth; pixels the simulation moves along their motion vectors when the shot has them:
motion.py) instead of an estimated optical flow; the squared difference is summed over channels on
pixels both frames see (depth-tested, in frame), divided by the number of such pixels, and averaged over
pairs. Lower is more consistent. Computed on display-encoded (sRGB [0, 1]) RGB.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .mode import F32
from .motion import ShotFlow


def pair_warping_error(img_t: F32, img_next: F32, frame_t: int, frame_next: int, flow: ShotFlow) -> float:
    """One pair at ``flow``'s size; NaN when no pixel of frame t is seen in frame t+1."""
    warped, valid = flow.warp(img_next, frame_next, frame_t)
    n = int(valid.sum())
    if n == 0:
        return float("nan")
    diff = (img_t - warped)[valid]
    return float(np.square(diff).sum() / n)


def warping_error(images: Sequence[F32], frames: Sequence[int], flow: ShotFlow) -> tuple[float, list[float]]:
    """(mean over pairs, per-pair errors) for a sequence of frames in shot order."""
    pairs = [
        pair_warping_error(images[i], images[i + 1], frames[i], frames[i + 1], flow)
        for i in range(len(images) - 1)
    ]
    finite = [p for p in pairs if np.isfinite(p)]
    return (float(np.mean(finite)) if finite else float("nan")), pairs
