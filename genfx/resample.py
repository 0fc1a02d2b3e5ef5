"""Area resampling and crops for images and pass stacks (numpy only, so the server can share it).

Box-filter resampling as two matrix products: every output pixel is the area-weighted mean of the input
pixels it covers. It is exact for any scale, keeps local means (motion vectors, inverse depth) and is
the one resize used for beauty and conditioning alike, so they stay pixel-aligned.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]


@lru_cache(maxsize=64)
def _weights(n_in: int, n_out: int) -> F32:
    """(n_out, n_in) overlap of each output cell with each input cell, rows summing to 1."""
    edges_in = np.arange(n_in + 1, dtype=np.float64)
    edges_out = np.linspace(0.0, n_in, n_out + 1)
    lo = np.maximum(edges_out[:-1, None], edges_in[None, :-1])
    hi = np.minimum(edges_out[1:, None], edges_in[None, 1:])
    w = np.clip(hi - lo, 0.0, None)
    w /= w.sum(axis=1, keepdims=True)
    result: F32 = w.astype(np.float32)
    return result


def area_resize(image: npt.ArrayLike, width: int, height: int) -> F32:
    """(H, W) or (H, W, C) -> (height, width[, C]) float32 by area averaging."""
    img = np.asarray(image, dtype=np.float32)
    h, w = img.shape[:2]
    if (w, h) == (width, height):
        return np.ascontiguousarray(img)
    wy, wx = _weights(h, height), _weights(w, width)
    flat = img.reshape(h, w, -1)
    out = np.einsum("oh,hwc->owc", wy, flat, optimize=True)
    out = np.einsum("pw,owc->opc", wx, out, optimize=True)
    return np.ascontiguousarray(out.reshape((height, width) + img.shape[2:]))


def centre_crop_box(width: int, height: int, aspect: float) -> tuple[int, int, int, int]:
    """The largest centred (x0, y0, x1, y1) box of ``aspect`` = w/h inside a width x height image."""
    if width / height > aspect:
        w = max(1, round(height * aspect))
        x0 = (width - w) // 2
        return x0, 0, x0 + w, height
    h = max(1, round(width / aspect))
    y0 = (height - h) // 2
    return 0, y0, width, y0 + h


def crop(image: npt.NDArray[np.float32], box: tuple[int, int, int, int]) -> F32:
    x0, y0, x1, y1 = box
    return np.ascontiguousarray(image[y0:y1, x0:x1])
