"""Colour: sRGB <-> scene-linear curves (numpy only) and OpenColorIO conversions (built-in config).

The model outputs display sRGB; frames are written scene-linear (linear Rec.709 or ACEScg) and plates go
in through the inverse. The numpy curves (IEC 61966-2-1 piecewise form, not a 2.2 gamma) serve previews
and clients without OCIO; the server converts through OpenColorIO so ACEScg uses the ACES config's
matrices. OCIO is imported on first use, so the SDK still works without it.
"""

from __future__ import annotations

import importlib
import threading
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt

from genfx import parallel

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


# ---- OpenColorIO (optional in the SDK: imported on first use) -------------------------------------

# A versioned built-in config, not "ocio://default": results must not change when the wheel is upgraded,
# and OpenImageIO's embedded OCIO 2.5 knows this one too (docs/exr.md, "Colour").
OCIO_CONFIG = "ocio://cg-config-v4.0.0_aces-v2.0_ocio-v2.5"
# What SD's VAE was trained on: display-referred, sRGB-encoded Rec.709.
MODEL_SPACE = "sRGB Encoded Rec.709 (sRGB)"
# Scene-linear spaces frames are written in (GenerateRequest output.colorspace) -> OCIO names.
SCENE_SPACES = {"linear_rec709": "Linear Rec.709 (sRGB)", "acescg": "ACEScg"}
CHROMATICITIES = {"linear_rec709": REC709_CHROMATICITIES, "acescg": ACESCG_CHROMATICITIES}

_processors: dict[tuple[str, str], Any] = {}
_lock = threading.Lock()


def _ocio() -> Any:
    # Untyped extension module; Any keeps mypy --strict quiet without a stub.
    return importlib.import_module("PyOpenColorIO")


def ocio_available() -> bool:
    try:
        _ocio()
    except ImportError:
        return False
    return True


def _processor(src: str, dst: str) -> Any:
    with _lock:
        proc = _processors.get((src, dst))
        if proc is None:
            ocio = _ocio()
            config = ocio.Config.CreateFromFile(OCIO_CONFIG)
            # The default optimisation is ~1e-5 off (far below half-float precision) and 5x faster.
            proc = config.getProcessor(src, dst).getDefaultCPUProcessor()
            _processors[(src, dst)] = proc
        return proc


def ocio_convert(rgb: npt.ArrayLike, src: str, dst: str) -> F32:
    """(..., 3) float32 pixels from colour space ``src`` to ``dst`` (names in OCIO_CONFIG); a new array."""
    return _convert_in_place(np.array(rgb, dtype=np.float32, order="C", copy=True), src, dst)


def _convert_in_place(out: F32, src: str, dst: str) -> F32:
    """``out`` (C-contiguous float32, (..., 3)) converted in place; OCIO releases the GIL meanwhile."""
    if out.shape[-1] != 3:
        raise ValueError(f"rgb: last axis must be 3 channels (got shape {out.shape})")
    if src != dst and out.size:
        proc, flat = _processor(src, dst), out.reshape(-1, 3)
        # Per pixel, so bands of rows convert side by side (a CPU processor is shareable).
        parallel.run_all([partial(proc.applyRGB, flat[b]) for b in parallel.bands(len(flat))], len(flat))
    return out


def scene_to_model(rgb: npt.ArrayLike, colorspace: str) -> F32:
    """Scene-linear plate pixels -> the model's display sRGB in [0, 1].

    The plain inverse of the output transform (no tone map), so a plate and a generated frame round-trip;
    highlights above display white clip, which is what an img2img init can represent anyway.
    """
    out = ocio_convert(rgb, _scene_space(colorspace), MODEL_SPACE)
    return np.clip(out, 0.0, 1.0, out=out)


def model_to_scene(rgb: npt.ArrayLike, colorspace: str) -> F32:
    """Model output (display sRGB in [0, 1]) -> scene-linear ``colorspace`` ("linear_rec709"/"acescg")."""
    rgb = np.asarray(rgb, dtype=np.float32)
    out = np.empty(rgb.shape, np.float32)  # one copy at 4K, not two: clipped into it, converted in place
    np.clip(rgb, 0.0, 1.0, out=out)
    return _convert_in_place(out, MODEL_SPACE, _scene_space(colorspace))


def _scene_space(colorspace: str) -> str:
    try:
        return SCENE_SPACES[colorspace]
    except KeyError:
        raise ValueError(
            f"colorspace: must be one of {', '.join(SCENE_SPACES)} (got {colorspace!r})"
        ) from None


def colorspace_for_chromaticities(chroma: npt.ArrayLike | None, default: str = "linear_rec709") -> str:
    """The scene space whose primaries an EXR ``chromaticities`` attribute names (``default`` if none)."""
    if chroma is None:
        return default
    values = np.asarray(chroma, dtype=np.float64).ravel()
    for name, ref in CHROMATICITIES.items():
        if values.shape == (8,) and np.allclose(values, ref, atol=2e-3):
            return name
    return default


def decoded_to_model(data: npt.NDArray[Any], names: list[str], pixel_format: str, chroma: Any) -> F32:
    """(H, W, 3) display sRGB in [0, 1] from a decoded image (OIIO channels, format name, chromaticities):
    RGB by name, else the first three channels, else grey; float images are scene-linear and converted,
    integer ones are already display-referred. One rule for the server's plates and the trainer's beauty."""
    if all(c in names for c in "RGB"):
        rgb = data[..., [names.index(c) for c in "RGB"]]
    elif data.shape[2] >= 3:
        rgb = data[..., :3]
    else:
        rgb = np.repeat(data[..., :1], 3, axis=2)
    if pixel_format in ("half", "float", "double"):
        rgb = np.nan_to_num(rgb, nan=0.0, posinf=1.0, neginf=0.0)
        return scene_to_model(rgb, colorspace_for_chromaticities(chroma))
    display: F32 = np.clip(rgb, 0.0, 1.0).astype(np.float32)
    return display
