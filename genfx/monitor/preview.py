"""Frame previews: a scene-linear EXR -> 8-bit display sRGB -> QImage.

Runs on worker threads: QImage (unlike QPixmap) may be built off the GUI thread.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import numpy.typing as npt
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QImage

from genfx.colour import linear_to_srgb
from genfx.exr import read_frame

# Largest preview kept in memory; frames are scaled down to fit (never up).
PREVIEW_SIZE = QSize(320, 180)


def tonemap(rgba: npt.NDArray[Any]) -> npt.NDArray[np.uint8]:
    """(H, W, 3 or 4) scene-linear, premultiplied -> (H, W, 3) uint8 sRGB.

    Premultiplied RGB is the image over black, so alpha is not needed; NaN and negative values show as
    black, values above 1 clip to white (a preview, not a grade)."""
    rgb = np.nan_to_num(np.asarray(rgba[..., :3], dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    srgb = np.clip(linear_to_srgb(rgb), 0.0, 1.0)
    return np.ascontiguousarray(np.round(srgb * np.float32(255.0)).astype(np.uint8))


def qimage_from_rgb8(rgb: npt.NDArray[np.uint8]) -> QImage:
    """(H, W, 3) uint8 -> a QImage that owns its pixels (the numpy buffer may go away)."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    height, width, _ = rgb.shape
    image = QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888)
    return image.copy()


def load_preview(path: str | os.PathLike[str], size: QSize = PREVIEW_SIZE) -> QImage:
    """Reads an EXR frame and returns its tone-mapped preview, scaled down to fit `size`."""
    pixels, _ = read_frame(path)
    image = qimage_from_rgb8(tonemap(pixels))
    if image.width() > size.width() or image.height() > size.height():
        image = image.scaled(
            size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
        )
    return image
