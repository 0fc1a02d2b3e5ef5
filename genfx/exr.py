"""EXR frames with the shot camera in the header (docs/exr.md).

openexr 3.5 binding traps handled here (docs/exr.md, "OpenEXR Python binding traps"): matrices must be float32
and C-contiguous to be written as M44f, rationals must be ``fractions.Fraction``, pixel arrays must be
C-contiguous, and the thread pool is off until ``set_global_thread_count`` is called.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import OpenEXR

from genfx import __version__
from genfx.camera import CameraSample, camera_to_world_from_exr, world_to_camera_exr, world_to_ndc_exr
from genfx.colour import ACESCG_CHROMATICITIES, REC709_CHROMATICITIES

# Process-wide pool; the binding defaults to 0 threads (single-threaded encode/decode).
OpenEXR.set_global_thread_count(os.cpu_count() or 1)

# Never HTJ2K or ZSTD: DCCs ship OpenEXR builds older than 3.4 that cannot read them.
_COMPRESSION = {
    "zip": OpenEXR.ZIP_COMPRESSION,
    "piz": OpenEXR.PIZ_COMPRESSION,
    "dwaa": OpenEXR.DWAA_COMPRESSION,
    "none": OpenEXR.NO_COMPRESSION,
}
COMPRESSIONS = ("zip", "piz", "dwaa", "none")

_CHROMATICITIES = {"linear_rec709": REC709_CHROMATICITIES, "acescg": ACESCG_CHROMATICITIES}
COLORSPACES = tuple(_CHROMATICITIES)

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class FrameMetadata:
    """Everything that goes into one frame's header besides the pixels."""

    camera: CameraSample
    width: int
    height: int
    frame: int
    fps: Fraction
    job_id: str = ""
    prompt: str = ""
    negative_prompt: str = ""
    seed: int = 0
    model: str = ""
    model_hash: str = ""
    loras: str = ""  # JSON text
    controlnet: str = ""  # JSON text; "" = no ControlNet
    keyframe: bool = True
    colorspace: str = "linear_rec709"
    owner: str = ""
    comments: str = ""


def timecode_for(frame: int, fps: Fraction) -> OpenEXR.TimeCode:
    """Frame count -> non-drop hh:mm:ss:ff at the nominal (rounded) rate, wrapping at 24 h."""
    nominal = max(1, round(fps))
    f = frame % (nominal * 86400)
    ff = f % nominal
    tc = OpenEXR.TimeCode()
    tc.hours = f // (nominal * 3600)
    tc.minutes = f // (nominal * 60) % 60
    tc.seconds = f // nominal % 60
    if nominal > 30:
        # SMPTE frame field stops at 29: above 30 fps count frame pairs and mark the second with the
        # field-phase bit (SMPTE 12M high frame rates).
        step = -(-nominal // 30)
        tc.frame = ff // step
        tc.fieldPhase = bool(ff % step)
    else:
        tc.frame = ff
    return tc


def header_attributes(meta: FrameMetadata, compression: str = "zip") -> dict[str, Any]:
    """The header ``encode_frame`` writes, as the binding takes it (for tools writing the same file)."""
    cam = meta.camera
    v_ap = cam.vertical_aperture(meta.width, meta.height)
    local = time.localtime()
    return {
        "compression": _COMPRESSION[compression],
        "type": OpenEXR.scanlineimage,
        # Standard attributes.
        "worldToCamera": world_to_camera_exr(cam),
        "worldToNDC": world_to_ndc_exr(cam, meta.width, meta.height),
        "framesPerSecond": Fraction(meta.fps),
        "timeCode": timecode_for(meta.frame, meta.fps),
        "owner": meta.owner,
        "comments": meta.comments,
        "capDate": time.strftime("%Y:%m:%d %H:%M:%S", local),
        "utcOffset": float(-local.tm_gmtoff),  # spec: UTC minus local time, seconds
        "pinholeFocalLength": float(cam.focal_length_mm),
        "sensorOverallDimensions": (float(cam.horizontal_aperture_mm), float(v_ap)),
        "pixelAspectRatio": float(cam.pixel_aspect),
        "chromaticities": _CHROMATICITIES[meta.colorspace],
        # Arnold-style scalars that existing Nuke metadata-to-camera tools read.
        "CameraFocalLength": float(cam.focal_length_mm),
        "CameraFilmApertureHorizontal": float(cam.horizontal_aperture_mm),
        "CameraFilmApertureVertical": float(v_ap),
        # Our namespace: exact (float64) camera in our convention, and provenance.
        "genfx/cameraToWorld": np.ascontiguousarray(cam.matrix(), dtype=np.float64),
        "genfx/nearClip": np.array([cam.near_clip], dtype=np.float64),
        "genfx/farClip": np.array([cam.far_clip], dtype=np.float64),
        "genfx/jobId": meta.job_id,
        "genfx/frame": int(meta.frame),
        "genfx/prompt": meta.prompt,
        "genfx/negativePrompt": meta.negative_prompt,
        "genfx/seed": str(meta.seed),  # seeds are uint64; the EXR int attribute is 32-bit
        "genfx/model": meta.model,
        "genfx/modelHash": meta.model_hash,
        "genfx/loras": meta.loras,
        "genfx/controlnet": meta.controlnet,
        "genfx/keyframe": int(bool(meta.keyframe)),
        "genfx/colorspace": meta.colorspace,
        "genfx/version": __version__,
        "genfx/aiGenerated": 1,
    }


def _check(rgba: npt.NDArray[Any], meta: FrameMetadata, compression: str) -> None:
    if compression not in _COMPRESSION:
        raise ValueError(f"compression: must be one of {', '.join(COMPRESSIONS)} (got {compression!r})")
    if meta.colorspace not in _CHROMATICITIES:
        raise ValueError(f"colorspace: must be one of {', '.join(COLORSPACES)} (got {meta.colorspace!r})")
    want = (meta.height, meta.width, 4)
    if rgba.shape != want:
        raise ValueError(f"rgba: shape {tuple(rgba.shape)} does not match (height, width, 4) = {want}")
    if not np.issubdtype(rgba.dtype, np.floating):
        raise ValueError(f"rgba: must be a float array (got {rgba.dtype})")


def encode_frame(rgba: npt.NDArray[Any], meta: FrameMetadata, compression: str = "zip") -> bytes:
    """Scene-linear premultiplied (H, W, 4) floats -> EXR bytes (half RGBA scanline, header per spec).

    C-contiguous float16 pixels go to OpenEXR as they are: this costs what a raw OpenEXR write of the
    same pixels and header costs (bench/bench_exr_encode.py). Anything else is cast (or copied) first,
    one pass over the frame: float32 input pays for its own half conversion."""
    rgba = np.asarray(rgba)
    _check(rgba, meta, compression)
    # Contiguous: the binding writes strided views with the wrong layout (openexr#1929).
    pixels = np.ascontiguousarray(rgba, dtype=np.float16)
    buf = io.BytesIO()
    with OpenEXR.File(header_attributes(meta, compression), {"RGBA": pixels}) as f:
        f.write(buf)
    return buf.getvalue()  # the buffer's own bytes: no copy


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not possible on every platform (e.g. Windows), so best effort.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()
TEMP_SUFFIX = ".tmp"  # write_atomic's temp files: .<name>.<random>.tmp beside the target


def write_atomic(path: PathLike, data: bytes) -> None:
    """Write ``data`` to a temp name in the same directory, fsync, rename: readers never see half a file."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=TEMP_SUFFIX)
    try:
        # mkstemp makes 0600 files; frames on a shared studio disk must be readable like any other file.
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(target.parent)


def write_frame(path: PathLike, rgba: npt.NDArray[Any], meta: FrameMetadata, compression: str = "zip") -> str:
    """Encode and write one frame atomically; returns the sha256 hex of the bytes written."""
    data = encode_frame(rgba, meta, compression)  # validation fails before anything touches the disk
    write_atomic(path, data)
    return hashlib.sha256(data).hexdigest()


def read_frame(path: PathLike) -> tuple[npt.NDArray[Any], dict[str, Any]]:
    """(H, W, 4) pixels as stored (float16 for GenFX frames; A = 1 when absent) and the header dict."""
    with OpenEXR.File(str(path), separate_channels=True) as f:
        header: dict[str, Any] = dict(f.header())
        channels = f.channels()
        missing = [c for c in "RGB" if c not in channels]
        if missing:
            raise ValueError(f"{path}: no {','.join(missing)} channel(s); found {sorted(channels)}")
        rgb = [np.asarray(channels[c].pixels) for c in "RGB"]
        alpha = np.asarray(channels["A"].pixels) if "A" in channels else np.ones_like(rgb[0])
    return np.ascontiguousarray(np.stack([*rgb, alpha], axis=-1)), header


def read_header(path: PathLike) -> dict[str, Any]:
    """The header only (cheap: no pixel data is decoded)."""
    with OpenEXR.File(str(path), header_only=True) as f:
        return dict(f.header())


def _scalar(header: dict[str, Any], *keys: str, default: float | None = None) -> float:
    """The first of ``keys`` present (float, 1-element double array or vector element ``key[i]``)."""
    for key in keys:
        name, _, index = key.partition("[")
        if name in header:
            values = np.asarray(header[name], dtype=np.float64).ravel()
            return float(values[int(index.rstrip("]")) if index else 0])
    if default is None:
        raise KeyError(f"EXR header has none of {', '.join(keys)}")
    return default


def camera_from_header(header: dict[str, Any]) -> CameraSample:
    """Rebuild the CameraSample from ``genfx/cameraToWorld`` and the lens attributes.

    Foreign files without our key fall back to inverting the standard ``worldToCamera``.
    """
    if "genfx/cameraToWorld" in header:
        m = np.asarray(header["genfx/cameraToWorld"], dtype=np.float64).reshape(4, 4)
    elif "worldToCamera" in header:
        m = camera_to_world_from_exr(header["worldToCamera"])
    else:
        raise KeyError("EXR header has neither 'genfx/cameraToWorld' nor 'worldToCamera'")
    return CameraSample(
        frame=int(header.get("genfx/frame", 0)),
        camera_to_world=tuple(m.ravel().tolist()),
        focal_length_mm=_scalar(header, "CameraFocalLength", "pinholeFocalLength"),
        horizontal_aperture_mm=_scalar(header, "CameraFilmApertureHorizontal", "sensorOverallDimensions[0]"),
        vertical_aperture_mm=_scalar(
            header, "CameraFilmApertureVertical", "sensorOverallDimensions[1]", default=0.0
        ),
        pixel_aspect=_scalar(header, "pixelAspectRatio", default=1.0),
        near_clip=_scalar(header, "genfx/nearClip", default=0.1),
        far_clip=_scalar(header, "genfx/farClip", default=10000.0),
    )
