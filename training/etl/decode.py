"""Decode one frame's files with OpenImageIO and bring them into the model's spaces.

- beauty: float files (EXR, HDR) are scene-linear with primaries from the EXR ``chromaticities``
  (linear Rec.709 when absent) and go to the model's display sRGB through OpenColorIO
  (genfx.colour.scene_to_model: the exact inverse of what the server writes, highlights clip at
  display white); integer files (PNG, DPX, TIFF) are display sRGB already. RGB is used as stored
  (premultiplied over black).
- depth / motion: channels found by genfx/passes.py (the spellings the server accepts too); mask: the
  aliases in training/passes.py.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from genfx.colour import decoded_to_model
from genfx.passes import DEPTH_CHANNELS, describe_motion_channels, motion_channels
from training.passes import MASK_READ_ALIASES

F32 = npt.NDArray[np.float32]


class DecodeError(ValueError):
    """A file that cannot be used; the message starts with the file's path."""


def _oiio() -> Any:
    return importlib.import_module("OpenImageIO")


def read_image(path: Path) -> tuple[F32, list[str], Any]:
    """(H, W, C) float32 pixels, channel names and the OIIO spec; DecodeError naming ``path``."""
    oiio = _oiio()
    config = oiio.ImageSpec()
    config.attribute("oiio:UnassociatedAlpha", 1)  # keep values as stored
    inp = oiio.ImageInput.open(str(path), config)
    if inp is None:
        raise DecodeError(f"{path}: unreadable image ({oiio.geterror() or 'unknown format'})")
    try:
        spec = inp.spec()
        pixels = inp.read_image(0, 0, 0, spec.nchannels, "float")
        if pixels is None:
            raise DecodeError(f"{path}: unreadable pixels ({inp.geterror() or oiio.geterror()})")
        data = np.asarray(pixels, dtype=np.float32).reshape(spec.height, spec.width, spec.nchannels)
        return np.ascontiguousarray(data), list(spec.channelnames), spec
    finally:
        inp.close()


def read_beauty(path: Path) -> F32:
    """(H, W, 3) display sRGB in [0, 1]."""
    data, names, spec = read_image(path)
    return decoded_to_model(data, names, str(spec.format), spec.getattribute("chromaticities"))


def _channel(data: F32, names: list[str], aliases: tuple[str, ...], path: Path, what: str) -> F32:
    for alias in aliases:
        if alias in names:
            return np.ascontiguousarray(data[..., names.index(alias)])
    raise DecodeError(
        f"{path}: no {what} channel (looked for {', '.join(aliases)}; found {', '.join(names)})"
    )


def read_depth(path: Path) -> F32:
    data, names, _ = read_image(path)
    return _channel(data, names, DEPTH_CHANNELS, path, "depth")


def read_motion(path: Path) -> F32:
    """(H, W, 2) pixels, +X right, +Y up."""
    data, names, _ = read_image(path)
    found = motion_channels(names)
    if found is None:
        wanted = describe_motion_channels()
        raise DecodeError(
            f"{path}: no motion vector channels (looked for {wanted}; found {', '.join(names)})"
        )
    return np.ascontiguousarray(data[..., list(found)])


def read_mask(path: Path) -> F32:
    data, names, _ = read_image(path)
    return np.clip(_channel(data, names, MASK_READ_ALIASES, path, "mask"), 0.0, 1.0)
