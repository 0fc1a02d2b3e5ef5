"""Reading the shot's passes (plate, mask, depth, motion) from uploaded assets, through OpenImageIO.

Any format OIIO reads works (EXR, PNG, DPX, TIFF, JPEG, ...); assets are stored under their sha256 with
no extension and OIIO picks the reader from the content. Errors are PassError naming the frame and the
pass, so the client learns exactly which file to fix.

Conventions (also in docs/shot_aware.md):
- plate: float files (EXR, HDR) are scene-linear, primaries from the EXR ``chromaticities`` attribute
  (linear Rec.709 when absent); integer files (PNG, DPX, TIFF, JPEG) are display sRGB already.
- mask: the alpha channel when the file has one, else its first channel; clipped to [0, 1].
- depth: camera-space Z depth in scene units (distance along the view axis, not ray length), from a
  channel named as genfx.passes.DEPTH_CHANNELS lists (Z, depth.Z, depth, Pz, ...) when present, else the
  first channel; <= 0 or non-finite = far.
- motion: screen-space motion to the next frame in pixels, +X right, +Y up, from the channels
  genfx.passes.motion_channels finds (motionvector.R/G and the other renderers' spellings); a file with
  none of them is refused (PassError). The sign rule is genfx.passes.next_frame_pixel's.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from genfx.colour import decoded_to_model
from genfx.passes import depth_channel, describe_motion_channels, motion_channels

PASSES = ("plate", "mask", "depth", "motion")
F32 = npt.NDArray[np.float32]


class PassError(ValueError):
    """A pass that cannot be used; the message names the frame and the pass."""

    def __init__(self, frame: int, kind: str, problem: str, field: str = "") -> None:
        where = f"{field} " if field else ""
        super().__init__(f"{where}(frame {frame}, {kind} pass): {problem}")
        self.frame = frame
        self.kind = kind


@dataclass(frozen=True)
class PassInfo:
    width: int
    height: int
    channels: tuple[str, ...]
    is_float: bool
    format: str


def _oiio() -> Any:
    return importlib.import_module("OpenImageIO")  # Any: the typed stubs are incomplete for our calls


def _open(path: Path, frame: int, kind: str, field: str) -> Any:
    if not path.is_file():
        raise PassError(frame, kind, f"asset {path.name} is not on the server (upload it first)", field)
    oiio = _oiio()
    config = oiio.ImageSpec()
    config.attribute("oiio:UnassociatedAlpha", 1)  # keep colour as stored; we premultiply ourselves
    inp = oiio.ImageInput.open(str(path), config)
    if inp is None:
        msg = oiio.geterror().replace(str(path), path.name[:12] + "…")
        raise PassError(frame, kind, f"unreadable image: {msg}", field)
    return inp


def probe(path: Path, frame: int, kind: str, field: str = "") -> PassInfo:
    """Size and layout from the header only (cheap: no pixels are decoded). A motion pass must have
    motion-vector channels."""
    inp = _open(path, frame, kind, field)
    try:
        spec = inp.spec()
        names = list(spec.channelnames)
        is_float = str(spec.format) in ("half", "float", "double")
        if kind == "motion" and motion_channels(names) is None:
            raise PassError(frame, kind, _no_motion(names), field)
        if kind == "motion" and not is_float:
            raise PassError(
                frame, kind, f"motion vectors in pixels need a float image (EXR), got {spec.format}", field
            )
        return PassInfo(
            width=int(spec.width),
            height=int(spec.height),
            channels=tuple(names),
            is_float=is_float,
            format=str(inp.format_name()),
        )
    finally:
        inp.close()


def _read(
    path: Path, frame: int, kind: str, pick: Callable[[list[str], Any], tuple[int, int]] | None
) -> tuple[F32, Any]:
    """Pixels as float32 (H, W, C) and the spec. With ``pick`` (channel names, spec -> [begin, end) of
    the channels needed) only those channels are read: a depth pass with a dozen AOVs costs one channel
    of memory, not twelve. The pixel count was checked against Limits.max_pass_pixels at submit
    (validation.py), so a read is bounded whatever the file declares."""
    inp = _open(path, frame, kind, "")
    try:
        spec = inp.spec()
        begin, end = pick(list(spec.channelnames), spec) if pick is not None else (0, spec.nchannels)
        pixels = inp.read_image(0, 0, begin, end, "float")
        if pixels is None:
            raise PassError(frame, kind, f"unreadable pixels: {_oiio().geterror()}")
        data = np.asarray(pixels, dtype=np.float32).reshape(spec.height, spec.width, end - begin)
        return np.ascontiguousarray(data), spec
    finally:
        inp.close()


def read_plate(path: Path, frame: int) -> F32:
    """(H, W, 3) display sRGB in [0, 1]: the model's input space."""
    data, spec = _read(path, frame, "plate", None)
    return decoded_to_model(
        data, list(spec.channelnames), str(spec.format), spec.getattribute("chromaticities")
    )


def _mask_channel(names: list[str], spec: Any) -> tuple[int, int]:
    channel = int(spec.alpha_channel) if spec.alpha_channel >= 0 else 0
    return channel, channel + 1


def _depth_channel(names: list[str], spec: Any) -> tuple[int, int]:
    channel = depth_channel(names) or 0
    return channel, channel + 1


def _motion_channels(names: list[str], spec: Any) -> tuple[int, int]:
    """The span holding both vector channels (usually adjacent: .R/.G of one layer)."""
    found = motion_channels(names) or (0, 0)
    return min(found), max(found) + 1


def read_mask(path: Path, frame: int) -> F32:
    """(H, W) coverage in [0, 1]."""
    data, _ = _read(path, frame, "mask", _mask_channel)
    return np.clip(np.nan_to_num(data[..., 0], nan=0.0), 0.0, 1.0).astype(np.float32)


def read_depth(path: Path, frame: int) -> F32:
    """(H, W) camera Z depth; invalid (<= 0, NaN) and infinite become +inf (= far, the sky)."""
    data, _ = _read(path, frame, "depth", _depth_channel)
    z = data[..., 0].astype(np.float32)
    z[~np.isfinite(z) | (z <= 0)] = np.inf
    return np.ascontiguousarray(z)


def _no_motion(names: list[str]) -> str:
    return f"no motion-vector channels (looked for {describe_motion_channels()}; found {', '.join(names)})"


def read_motion(path: Path, frame: int) -> F32:
    """(H, W, 2) pixels of the pass's resolution to the next frame, +X right, +Y up; NaN -> 0."""
    data, spec = _read(path, frame, "motion", _motion_channels)
    names = list(spec.channelnames)
    found = motion_channels(names)
    if found is None:
        raise PassError(frame, "motion", _no_motion(names))
    first = min(found)
    mv = np.nan_to_num(data[..., [c - first for c in found]], nan=0.0, posinf=0.0, neginf=0.0)
    return np.ascontiguousarray(mv, dtype=np.float32)


READERS = {"plate": read_plate, "mask": read_mask, "depth": read_depth, "motion": read_motion}
