"""A PNG contact sheet of EXR frames, for a quick look at a job without a DCC.

PNG is written with zlib + struct only: the SDK does not depend on Pillow.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from genfx.bitmap_font import GLYPH_H, text_mask
from genfx.colour import linear_to_srgb
from genfx.exr import read_frame, write_atomic

PathLike = str | os.PathLike[str]
LABEL_INK = np.array([235, 235, 235], np.uint8)
LABEL_BACKGROUND = np.array([32, 32, 32], np.uint8)


def _resample_axis(a: npt.NDArray[np.float32], n: int, axis: int) -> npt.NDArray[np.float32]:
    """Resize one axis to ``n``: box average when shrinking (no aliasing), nearest when growing."""
    size = a.shape[axis]
    if n == size:
        return a
    if n < size:
        starts = (np.arange(n) * size) // n
        counts = np.diff(np.append(starts, size)).astype(np.float32)
        sums = np.add.reduceat(a, starts, axis=axis)
        shape = [1] * a.ndim
        shape[axis] = n
        return (sums / counts.reshape(shape)).astype(np.float32)
    index = ((np.arange(n) + 0.5) * size / n).astype(np.intp)
    return np.ascontiguousarray(np.take(a, index, axis=axis), dtype=np.float32)


def _thumbnail(rgba: npt.NDArray[Any], width: int, height: int) -> npt.NDArray[np.uint8]:
    # Premultiplied RGB *is* the image composited over black; do that in linear, then encode to sRGB.
    rgb = np.nan_to_num(np.asarray(rgba[..., :3], dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    small = _resample_axis(_resample_axis(rgb, height, 0), width, 1)
    srgb = np.clip(linear_to_srgb(small), 0.0, 1.0)
    return np.round(srgb * 255.0).astype(np.uint8)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def encode_png(rgb: npt.NDArray[np.uint8]) -> bytes:
    """(H, W, 3) uint8 -> 8-bit RGB PNG bytes (filter 0 on every row)."""
    height, width, _ = rgb.shape
    rows = np.concatenate([np.zeros((height, 1), np.uint8), rgb.reshape(height, width * 3)], axis=1)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit, colour type 2 = RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
        + _chunk(b"IEND", b"")
    )


def _label_strip(text: str, width: int, scale: int) -> npt.NDArray[np.uint8]:
    """A dark strip ``width`` wide with ``text`` in light pixels, left-aligned, clipped to the width."""
    pad = scale
    strip = np.empty((GLYPH_H * scale + 2 * pad, width, 3), np.uint8)
    strip[:] = LABEL_BACKGROUND
    ink = text_mask(text, scale)[:, : max(0, width - 2 * pad)]
    strip[pad : pad + ink.shape[0], pad : pad + ink.shape[1]][ink] = LABEL_INK
    return strip


def write_contact_sheet(
    exr_paths: Sequence[PathLike],
    out_png: PathLike,
    columns: int = 8,
    thumb_width: int = 192,
    labels: Sequence[str] | None = None,
) -> str:
    """Tile thumbnails of ``exr_paths`` (in order) into ``out_png``; returns its path.

    Thumbnails keep the first frame's aspect ratio; the sheet is min(columns, n) thumbnails wide. With
    ``labels`` (one per path; characters of genfx.bitmap_font), each thumbnail has its label in a strip
    under it.
    """
    if not exr_paths:
        raise ValueError("exr_paths: need at least one EXR")
    if columns < 1 or thumb_width < 1:
        raise ValueError(f"columns and thumb_width must be >= 1 (got {columns}, {thumb_width})")
    if labels is not None and len(labels) != len(exr_paths):
        raise ValueError(f"labels: need one per EXR ({len(exr_paths)}), got {len(labels)}")
    scale = 2 if thumb_width >= 128 else 1
    strips = [_label_strip(text, thumb_width, scale) for text in labels] if labels is not None else None
    strip_height = strips[0].shape[0] if strips else 0
    cols = min(columns, len(exr_paths))
    rows = -(-len(exr_paths) // cols)
    sheet: npt.NDArray[np.uint8] | None = None
    cell = 0
    for i, path in enumerate(exr_paths):
        rgba, _ = read_frame(path)
        if sheet is None:
            thumb_height = max(1, round(rgba.shape[0] * thumb_width / rgba.shape[1]))
            cell = thumb_height + strip_height
            sheet = np.zeros((rows * cell, cols * thumb_width, 3), np.uint8)
        r, c = divmod(i, cols)
        x0, y0 = c * thumb_width, r * cell
        sheet[y0 : y0 + cell - strip_height, x0 : x0 + thumb_width] = _thumbnail(
            rgba, thumb_width, cell - strip_height
        )
        if strips is not None:
            sheet[y0 + cell - strip_height : y0 + cell, x0 : x0 + thumb_width] = strips[i]
    assert sheet is not None
    write_atomic(out_png, encode_png(sheet))
    return os.fspath(out_png)
