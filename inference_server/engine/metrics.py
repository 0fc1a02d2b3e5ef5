"""Temporal consistency: warping error with the known camera and depth (Lai et al., ECCV 2018).

For each consecutive pair (t, t+1), frame t+1 is warped into frame t with the exact reprojection flow
(camera matrices + depth) instead of an estimated optical flow; the squared difference is summed over
channels on pixels both frames see (depth-tested, in frame), divided by the number of such pixels, and
averaged over pairs. Lower is more consistent. Computed on display-encoded (sRGB [0, 1]) RGB.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .reproject import F32, View, backward_warp


def pair_warping_error(
    img_t: F32, img_next: F32, depth_t: F32, depth_next: F32 | None, view_t: View, view_next: View
) -> float:
    """One pair; ``depth_next`` None (plane approximation) skips the disocclusion test."""
    warped, valid = backward_warp(img_next, depth_t, view_t, view_next, depth_next)
    n = int(valid.sum())
    if n == 0:
        return float("nan")
    diff = (img_t - warped)[valid]
    return float(np.square(diff).sum() / n)


def warping_error(
    images: Sequence[F32], depths: Sequence[F32], views: Sequence[View], depth_test: bool = True
) -> tuple[float, list[float]]:
    """(mean over pairs, per-pair errors) for a sequence of frames in shot order."""
    pairs = [
        pair_warping_error(
            images[i], images[i + 1], depths[i], depths[i + 1] if depth_test else None, views[i], views[i + 1]
        )
        for i in range(len(images) - 1)
    ]
    finite = [p for p in pairs if np.isfinite(p)]
    return (float(np.mean(finite)) if finite else float("nan")), pairs
