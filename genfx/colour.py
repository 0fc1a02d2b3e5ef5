"""sRGB <-> scene-linear (Rec.709 primaries) transfer curves, numpy only.

The model outputs display sRGB; frames are written scene-linear, so the server applies the inverse curve
(IEC 61966-2-1 piecewise form, not a 2.2 gamma) and previews apply the forward one.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]

# EXR `chromaticities` (red xy, green xy, blue xy, white xy): Rec.709 / sRGB primaries, D65 white.
REC709_CHROMATICITIES: tuple[float, float, float, float, float, float, float, float] = (
    0.64, 0.33, 0.30, 0.60, 0.15, 0.06, 0.3127, 0.3290,
)  # fmt: skip
# ACEScg (AP1 primaries, ACES white ~D60).
ACESCG_CHROMATICITIES: tuple[float, float, float, float, float, float, float, float] = (
    0.713, 0.293, 0.165, 0.830, 0.128, 0.044, 0.32168, 0.33767,
)  # fmt: skip


def srgb_to_linear(a: npt.ArrayLike) -> F32:
    """sRGB-encoded values -> linear, float32. Values above 1 follow the power segment."""
    x = np.asarray(a, dtype=np.float32)
    # abs() keeps the power segment NaN-free; np.where evaluates both branches.
    power = np.power((np.abs(x) + np.float32(0.055)) / np.float32(1.055), np.float32(2.4))
    return np.where(x <= np.float32(0.04045), x / np.float32(12.92), power).astype(np.float32)


def linear_to_srgb(a: npt.ArrayLike) -> F32:
    """Linear values -> sRGB encoding, float32; negatives clip to 0 (no light), above 1 is extended."""
    x = np.maximum(np.asarray(a, dtype=np.float32), np.float32(0.0))
    power = np.float32(1.055) * np.power(x, np.float32(1.0 / 2.4)) - np.float32(0.055)
    return np.where(x <= np.float32(0.0031308), x * np.float32(12.92), power).astype(np.float32)
