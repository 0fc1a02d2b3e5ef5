"""The sim-pass ControlNet's conditioning image: ONE definition, shared by the trainer and the server.

numpy only, in the genfx shared layer, so the trainer's ETL and the server build exactly the same
thing. Layout, at the size of the generated image (pixels, not latents):

| channel | what                | from                          | normalisation to [0, 1]                |
|---------|---------------------|-------------------------------|----------------------------------------|
| 0       | inverse depth       | depth pass (camera Z)         | (1/z - 1/far) / (1/near - 1/far) with  |
|         |                     |                               | the SHOT's near/far; sky (inf) -> 0    |
| 1       | motion x            | motion pass (px, +X right)    | 0.5 + 0.5 * clip(mx / W / 0.1, -1, 1)  |
| 2       | motion y            | motion pass (px, +Y up)       | 0.5 + 0.5 * clip(my / H / 0.1, -1, 1)  |
| 3       | debris / dust mask  | mask pass                     | clip(mask, 0, 1)                       |

Motion is divided by the pass's own width/height first (so it is resolution independent), and 0.1 of
the frame per frame maps to the ends of the range. Depth is normalised with the SHOT's nearest and
farthest surface (genfx.passes.shot_depth_range over every frame of the shot, the rule depth2img uses
at the server), not the frame's own: a per-frame range makes the conditioning flicker when the depth
range changes within a shot. The ETL computes each shot's range before building its samples; the
server computes it over the request's depth passes. Range [0, 1], passed to the ControlNet as is:
diffusers' control-image preprocessing returns a 4-channel tensor untouched (it takes 4 channels for
latents: no resize, no [0, 1] -> [-1, 1]; tests/test_sim_mode.py checks it), so the server builds it at
exactly the generation size. The image is built at the pass resolution, cropped with the same box as
the beauty and area-resized to the output size.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from genfx.resample import area_resize, crop

CONDITION_CHANNELS = ("inverse_depth", "motion_x", "motion_y", "mask")
MOTION_FULL_SCALE = 0.1  # fraction of the frame per frame that maps to 0 or 1
DEPTH_NORMALISATION = "shot"  # near/far over the whole shot (recorded in model cards; checked by the server)
F32 = npt.NDArray[np.float32]


def _inverse_depth(depth: F32, near_far: tuple[float, float] | None) -> F32:
    z = np.asarray(depth, dtype=np.float32)
    valid = np.isfinite(z) & (z > 0)
    if near_far is None:  # the shot sees no surface at all
        return np.zeros_like(z)
    near, far = near_far
    if not 0.0 < near < far:
        raise ValueError(f"near_far: need 0 < near < far (got {near_far}); see genfx.passes.shot_depth_range")
    inv = np.zeros_like(z)
    inv[valid] = 1.0 / z[valid]
    out = (inv - np.float32(1.0 / far)) / np.float32(1.0 / near - 1.0 / far)
    return np.where(valid, np.clip(out, 0.0, 1.0), 0.0).astype(np.float32)


def sim_condition(
    depth: npt.ArrayLike,
    motion: npt.ArrayLike,
    mask: npt.ArrayLike,
    *,
    near_far: tuple[float, float] | None,
    size: tuple[int, int] | None = None,
    crop_box: tuple[int, int, int, int] | None = None,
) -> F32:
    """(H, W, 4) float32 in [0, 1], channels CONDITION_CHANNELS.

    ``depth`` (H, W) camera Z (inf/<=0 = sky), ``motion`` (H, W, 2) pixels [+X right, +Y up, to the
    next frame], ``mask`` (H, W); ``near_far`` is the SHOT's (genfx.passes.shot_depth_range over all its
    frames; None when the shot has no surface); ``crop_box`` (x0, y0, x1, y1) at pass resolution, then
    resized to ``size`` (width, height).
    """
    z = np.asarray(depth, dtype=np.float32)
    mv = np.asarray(motion, dtype=np.float32)
    m = np.asarray(mask, dtype=np.float32)
    h, w = z.shape
    if mv.shape != (h, w, 2) or m.shape != (h, w):
        raise ValueError(f"passes differ in size: depth {z.shape}, motion {mv.shape}, mask {m.shape}")
    scale = np.array([w, h], dtype=np.float32) * np.float32(MOTION_FULL_SCALE)
    motion01 = 0.5 + 0.5 * np.clip(np.nan_to_num(mv) / scale, -1.0, 1.0)
    cond = np.concatenate(
        [
            _inverse_depth(z, near_far)[..., None],
            motion01.astype(np.float32),
            np.clip(np.nan_to_num(m), 0.0, 1.0)[..., None],
        ],
        axis=-1,
    )
    if crop_box is not None:
        cond = crop(cond, crop_box)
    if size is not None:
        cond = area_resize(cond, *size)
    return np.ascontiguousarray(cond, dtype=np.float32)


def to_chw(condition: npt.ArrayLike) -> F32:
    """(H, W, 4) -> (4, H, W): the layout a ControlNet's ``controlnet_cond`` tensor takes (add a batch)."""
    return np.ascontiguousarray(np.moveaxis(np.asarray(condition, dtype=np.float32), -1, 0))
