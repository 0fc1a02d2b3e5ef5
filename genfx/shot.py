"""Shot files: a camera track as JSON in Houdini conventions (what a TD exports from /obj).

```
{"name": "building_orbit", "fps": [24, 1], "frame_start": 1001, "frame_end": 1048,
 "resolution": [1920, 1080],
 "camera": {"path": "/obj/shotcam",
            "samples": [{"frame": 1001, "world_transform": [16 floats, hou.Matrix4.asTuple()],
                         "focal": 35.0, "focal_units": "mm", "aperture": 36.0, "aspect": 1.0,
                         "near": 0.1, "far": 10000.0}, ...]}}
```

``world_transform`` is row-vector (as Houdini stores it); camera.from_houdini converts it. The track
holds one sample (locked-off camera) or one per frame of the range.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from genfx.camera import FOCAL_UNITS_MM, CameraError, CameraSample, CameraTrack, from_houdini, validate_track


@dataclass(frozen=True)
class Shot:
    name: str
    frame_start: int
    frame_end: int
    fps: Fraction
    camera: CameraTrack

    @property
    def frames(self) -> range:
        return range(self.frame_start, self.frame_end + 1)


def _int(obj: Mapping[str, Any], key: str, path: str, *, minimum: int | None = None) -> int:
    value = obj.get(key)
    # bool is an int subclass; `true` in a frame field is a mistake, not 1.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{path}{key}: must be an integer (got {value!r})")
    if minimum is not None and value < minimum:
        raise ValueError(f"{path}{key}: must be >= {minimum} (got {value})")
    return value


def _num(obj: Mapping[str, Any], key: str, path: str, default: float | None = None) -> float:
    """A finite number > 0 (every lens value in a shot file is)."""
    value = obj.get(key, default)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"{path}{key}: must be a finite number (got {value!r})")
    if value <= 0:
        raise ValueError(f"{path}{key}: must be > 0 (got {value!r})")
    return float(value)


def _fps(value: Any) -> Fraction:
    if isinstance(value, list) and len(value) == 2 and all(type(v) is int for v in value):
        num, den = value
    elif type(value) is int:
        num, den = value, 1
    else:
        raise ValueError(
            f"fps: must be [numerator, denominator] integers, e.g. [24000, 1001] (got {value!r})"
        )
    if num <= 0 or den <= 0:
        raise ValueError(f"fps: numerator and denominator must be > 0 (got {value!r})")
    return Fraction(num, den)


def _sample(raw: Any, path: str, resx: int, resy: int) -> CameraSample:
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: must be an object (got {type(raw).__name__})")
    xform = raw.get("world_transform")
    if (
        not isinstance(xform, list)
        or len(xform) != 16
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in xform)
    ):
        raise ValueError(f"{path}.world_transform: must be a list of 16 numbers (hou.Matrix4.asTuple())")
    units = raw.get("focal_units", "mm")
    if units not in FOCAL_UNITS_MM:
        raise ValueError(f"{path}.focal_units: must be one of {sorted(FOCAL_UNITS_MM)} (got {units!r})")
    near, far = _num(raw, "near", f"{path}.", 0.1), _num(raw, "far", f"{path}.", 10000.0)
    if far <= near:
        raise ValueError(f"{path}.far: must be > near ({near:g}) (got {far:g})")
    return from_houdini(
        [float(v) for v in xform],
        frame=_int(raw, "frame", f"{path}."),
        focal=_num(raw, "focal", f"{path}."),
        aperture=_num(raw, "aperture", f"{path}.", 41.4214),  # Houdini's default aperture
        resx=resx,
        resy=resy,
        focal_units=units,
        aspect=_num(raw, "aspect", f"{path}.", 1.0),
        near=near,
        far=far,
    )


def parse_shot(data: Any) -> Shot:
    """A decoded shot JSON object -> Shot; ValueError naming the JSON field on bad input."""
    if not isinstance(data, dict):
        raise ValueError("shot: must be a JSON object")
    name = data.get("name", "")
    if not isinstance(name, str) or not name:
        raise ValueError(f"name: must be a non-empty string (got {name!r})")
    start = _int(data, "frame_start", "")
    end = _int(data, "frame_end", "", minimum=start)
    fps = _fps(data.get("fps", [24, 1]))
    res = data.get("resolution")
    if not (isinstance(res, list) and len(res) == 2 and all(type(v) is int and v > 0 for v in res)):
        raise ValueError(f"resolution: must be [width, height], positive integers (got {res!r})")
    resx, resy = res
    cam = data.get("camera")
    if not isinstance(cam, dict) or not isinstance(cam.get("samples"), list) or not cam["samples"]:
        raise ValueError("camera.samples: must be a non-empty list of samples")
    samples = tuple(_sample(s, f"camera.samples[{i}]", resx, resy) for i, s in enumerate(cam["samples"]))
    track = CameraTrack(width=resx, height=resy, samples=samples)
    try:
        validate_track(track, "camera")
    except CameraError as e:
        # Name the JSON field, not the CameraSample attribute it became.
        raise ValueError(str(e).replace(".camera_to_world:", ".world_transform:")) from None
    if not track.is_static:
        missing = sorted(set(range(start, end + 1)) - {s.frame for s in samples})
        if missing:
            shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
            raise ValueError(f"camera.samples: no sample for frame(s) {shown} of {start}-{end}")
    return Shot(name=name, frame_start=start, frame_end=end, fps=fps, camera=track)


def load_shot(path: str | os.PathLike[str]) -> Shot:
    """Read and validate a shot JSON file."""
    with open(path, encoding="utf-8") as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{os.fspath(path)}: not valid JSON ({e})") from None
    return parse_shot(data)
