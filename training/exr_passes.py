"""Writing and reading multi-channel pass EXRs (beauty, Z, motion, mask) with the shot camera in the header.

Writes through OpenEXR directly (pass files hold arbitrary channels and no AI provenance, unlike
genfx.exr's generated frames) but with the same standard camera attributes and ``genfx/cameraToWorld``,
so ``genfx.exr.camera_from_header`` reads the camera back. Files are written atomically.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import OpenEXR

from genfx.camera import CameraSample, world_to_camera_exr, world_to_ndc_exr
from genfx.colour import REC709_CHROMATICITIES
from genfx.exr import timecode_for, write_atomic


def pass_header(cam: CameraSample, width: int, height: int, fps: Fraction, comment: str) -> dict[str, Any]:
    return {
        "compression": OpenEXR.ZIP_COMPRESSION,
        "type": OpenEXR.scanlineimage,
        "worldToCamera": world_to_camera_exr(cam),
        "worldToNDC": world_to_ndc_exr(cam, width, height),
        "framesPerSecond": Fraction(fps),
        "timeCode": timecode_for(cam.frame, fps),
        "pinholeFocalLength": float(cam.focal_length_mm),
        "sensorOverallDimensions": (
            float(cam.horizontal_aperture_mm),
            float(cam.vertical_aperture(width, height)),
        ),
        "chromaticities": REC709_CHROMATICITIES,
        "CameraFocalLength": float(cam.focal_length_mm),
        "CameraFilmApertureHorizontal": float(cam.horizontal_aperture_mm),
        "CameraFilmApertureVertical": float(cam.vertical_aperture(width, height)),
        "genfx/cameraToWorld": np.ascontiguousarray(cam.matrix(), dtype=np.float64),
        "genfx/nearClip": np.array([cam.near_clip], dtype=np.float64),
        "genfx/farClip": np.array([cam.far_clip], dtype=np.float64),
        "genfx/frame": int(cam.frame),
        "comments": comment,
    }


def write_channels(path: Path, channels: Mapping[str, npt.NDArray[Any]], header: dict[str, Any]) -> None:
    """One scanline EXR with the named (H, W) channels (dtype sets half/float), atomically."""
    # Contiguous copies: the binding writes strided views with the wrong layout (openexr#1929).
    data = {name: np.ascontiguousarray(arr) for name, arr in channels.items()}
    buf = io.BytesIO()
    with OpenEXR.File(header, data) as f:
        f.write(buf)
    write_atomic(path, buf.getvalue())


def read_channels(path: Path) -> tuple[dict[str, npt.NDArray[Any]], dict[str, Any]]:
    """Every channel of an EXR as (H, W) arrays, and the header."""
    with OpenEXR.File(str(path), separate_channels=True) as f:
        header = dict(f.header())
        return {name: np.asarray(ch.pixels) for name, ch in f.channels().items()}, header
