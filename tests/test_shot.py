"""Shot JSON (Houdini conventions): the sample shot and errors that name the JSON field."""

from __future__ import annotations

import copy
import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from genfx.camera import project_to_pixel
from genfx.shot import load_shot

SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "shots" / "building_orbit.json"


def test_sample_shot_loads_and_looks_at_the_building() -> None:
    shot = load_shot(SAMPLE)
    assert (shot.name, shot.frame_start, shot.frame_end, shot.fps) == (
        "building_orbit",
        1001,
        1048,
        Fraction(24),
    )
    assert (shot.camera.width, shot.camera.height) == (1920, 1080)
    assert len(shot.camera.samples) == 48 and list(shot.frames) == [s.frame for s in shot.camera.samples]
    for frame in shot.frames:
        s = shot.camera.sample_at(frame)
        assert (s.focal_length_mm, s.horizontal_aperture_mm) == (35.0, 36.0)
        # Every camera aims at (0, 12, 0): it lands in the middle of the frame.
        u, v = project_to_pixel(s, 1920, 1080, (0.0, 12.0, 0.0))
        assert abs(u - 960) < 1 and abs(v - 540) < 1
        # The building's foot is below the aim point, i.e. lower in the picture (y down).
        assert project_to_pixel(s, 1920, 1080, (0.0, 0.0, 0.0))[1] > 540
    # The camera rises 5 -> 15 m and orbits: first and last positions differ in X.
    first, last = shot.camera.sample_at(1001).matrix(), shot.camera.sample_at(1048).matrix()
    assert first[1, 3] == pytest.approx(5.0) and last[1, 3] == pytest.approx(15.0)
    assert first[0, 3] == pytest.approx(-30.0) and last[0, 3] == pytest.approx(30.0)


def _raw() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SAMPLE.read_text())
    return data


def _set(data: dict[str, Any], path: list[Any], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(data)
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (["frame_start"], "1001", r"frame_start: must be an integer"),
        (["frame_end"], 900, r"frame_end: must be >= 1001"),
        (["fps"], [24, 0], r"fps: numerator and denominator must be > 0"),
        (["fps"], "24", r"fps: must be \[numerator, denominator\]"),
        (["resolution"], [1920], r"resolution: must be \[width, height\]"),
        (["name"], "", r"name: must be a non-empty string"),
        (["camera", "samples"], [], r"camera\.samples: must be a non-empty list"),
        (["camera", "samples", 3, "world_transform"], [1.0] * 15, r"camera\.samples\[3\]\.world_transform"),
        (
            ["camera", "samples", 3, "world_transform"],
            [0.0] * 15 + [1.0],
            r"samples\[3\]\.world_transform: matrix",
        ),
        (["camera", "samples", 2, "focal_units"], "cm", r"camera\.samples\[2\]\.focal_units: must be one of"),
        (["camera", "samples", 0, "focal"], -1, r"camera\.samples\[0\]\.focal: must be > 0"),
        (["camera", "samples", 0, "focal"], _DELETE, r"camera\.samples\[0\]\.focal: must be a finite number"),
        (["camera", "samples", 5, "far"], 0.01, r"camera\.samples\[5\]\.far: must be > near"),
        (["camera", "samples", 4, "frame"], 1003, r"camera\.samples\[4\]\.frame: frame 1003 appears twice"),
        (["camera", "samples", 47], _DELETE, r"camera\.samples: no sample for frame\(s\) 1048"),
    ],
)
def test_bad_fields_are_named(tmp_path: Path, path: list[Any], value: Any, message: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(_set(_raw(), path, value)))
    with pytest.raises(ValueError, match=message):
        load_shot(bad)


def test_static_camera_and_fps_rational(tmp_path: Path) -> None:
    data = _raw()
    data["camera"]["samples"] = data["camera"]["samples"][:1]
    data["fps"] = [24000, 1001]
    path = tmp_path / "static.json"
    path.write_text(json.dumps(data))
    shot = load_shot(path)
    assert shot.fps == Fraction(24000, 1001)
    assert shot.camera.sample_at(1040).frame == 1040


def test_not_json(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text("{nope")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_shot(path)
