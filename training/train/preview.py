"""Pictures written with every checkpoint: the loss curve and a validation grid (PIL only, no matplotlib)."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

CURVE_SIZE = (480, 240)


def loss_curve_png(losses: Sequence[float]) -> bytes:
    """Loss per optimizer step (grey) and its running mean over 10 steps (black), on a linear axis."""
    w, h = CURVE_SIZE
    pad = 30
    img = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(img)
    draw.rectangle([pad, 5, w - 5, h - pad], outline="black")
    if losses:
        values = np.asarray(losses, dtype=np.float64)
        lo, hi = float(values.min()), float(values.max())
        span = hi - lo or 1.0
        smooth = np.convolve(values, np.ones(10) / 10, mode="valid") if len(values) >= 10 else values

        def points(v: np.ndarray, offset: int) -> list[tuple[float, float]]:
            n = max(len(values) - 1, 1)
            return [
                (pad + (i + offset) / n * (w - 5 - pad), h - pad - (x - lo) / span * (h - pad - 10))
                for i, x in enumerate(v)
            ]

        if len(values) > 1:
            draw.line(points(values, 0), fill=(170, 170, 170))
        if len(smooth) > 1:
            draw.line(points(smooth, len(values) - len(smooth)), fill="black", width=2)
        draw.text((pad + 4, 8), f"loss {values[-1]:.4f} (min {lo:.4f}, max {hi:.4f})", fill="black")
        draw.text((pad, h - pad + 8), f"step 1 .. {len(values)}", fill="black")
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def grid_png(images: Sequence[np.ndarray], columns: int = 4) -> bytes:
    """(H, W, 3) float images in [0, 1] tiled in rows of ``columns``."""
    h, w = images[0].shape[:2]
    rows = -(-len(images) // columns)
    canvas = np.zeros((rows * h, min(columns, len(images)) * w, 3), dtype=np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, columns)
        canvas[r * h : (r + 1) * h, c * w : (c + 1) * w] = np.round(np.clip(im, 0, 1) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(canvas).save(buf, "PNG")
    return buf.getvalue()
