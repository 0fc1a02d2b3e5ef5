"""Golden camera projections shared with the After Effects bridge (ae_bridge/shared/camera.js).

`tests/golden/camera_projections.json` holds After Effects camera inputs (position, point of interest,
orientation, rotation, optional parent, zoom, comp size), AE-space points, and what genfx.camera makes
of them: the AE world matrix, the wire CameraSample and the pixels each point projects to. This test
checks genfx.camera still reproduces the file; ae_bridge/tests/camera_goldens.test.js checks the ES3
module reproduces the same numbers, so both languages agree on one convention.

Regenerate (only when the convention changes on purpose): python tests/test_camera_goldens.py --write
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from genfx.camera import (
    ae_camera_to_world,
    ae_comp_to_square,
    ae_default_camera,
    ae_point_to_world,
    ae_project,
    from_after_effects,
    project_to_pixel,
    validate_sample,
)

GOLDEN = Path(__file__).resolve().parent / "golden" / "camera_projections.json"
TOL = 1e-9

# (name, comp (w, h, pixel aspect), zoom, camera, parent or None, AE points). A camera with
# "default": true is AE's default 50 mm camera for the comp (zoom = w * pa * 50 / 36, at the comp centre,
# -zoom). Positions and points are in comp coordinates (x in the comp's pixels); AE's 3D world, where
# the camera transform and zoom live, is in square pixels (x * pixel aspect).
CASES: list[dict[str, Any]] = [
    {
        "name": "two_node_awkward",
        "comp": {"width": 1920, "height": 1080, "pixel_aspect": 1.0},
        "zoom": 1600.0,
        "camera": {
            "position": [700.0, 380.0, -1500.0],
            "point_of_interest": [1010.0, 590.0, 120.0],
            "orientation": [8.0, -15.0, 4.0],
            "rotation": [-3.0, 6.0, 11.0],
        },
        "points": [[1100.0, 500.0, 300.0], [640.0, 260.0, -200.0], [1500.0, 900.0, 900.0]],
    },
    {
        "name": "default_camera_1920x1080",
        "comp": {"width": 1920, "height": 1080, "pixel_aspect": 1.0},
        "zoom": 1920 * 50 / 36,
        "camera": {"default": True},
        "points": [[100.0, 200.0, 0.0], [960.0, 540.0, 500.0], [1800.0, 1000.0, -300.0]],
    },
    {
        "name": "one_node_rotated",
        "comp": {"width": 1280, "height": 720, "pixel_aspect": 1.0},
        "zoom": 900.0,
        "camera": {
            "position": [200.0, 900.0, -800.0],
            "point_of_interest": None,
            "orientation": [0.0, 30.0, 0.0],
            "rotation": [10.0, 0.0, -5.0],
        },
        "points": [[640.0, 360.0, 0.0], [900.0, 500.0, 400.0], [100.0, 100.0, 50.0]],
    },
    {
        "name": "parented_to_rotating_null",
        "comp": {"width": 2048, "height": 858, "pixel_aspect": 1.0},
        "zoom": 2000.0,
        "camera": {
            "position": [0.0, -100.0, -2000.0],
            "point_of_interest": [0.0, 0.0, 0.0],
            "orientation": [0.0, 0.0, 0.0],
            "rotation": [0.0, 0.0, 2.5],
        },
        "parent": {
            "position": [1024.0, 429.0, 0.0],
            "orientation": [0.0, 0.0, 0.0],
            "rotation": [5.0, 45.0, 0.0],
        },
        "points": [[1024.0, 429.0, 0.0], [1300.0, 300.0, 250.0], [700.0, 600.0, -400.0]],
    },
    {
        "name": "anamorphic_pixels",
        "comp": {"width": 1024, "height": 858, "pixel_aspect": 2.0},
        "zoom": 1100.0,
        "camera": {
            "position": [512.0, 429.0, -1100.0],
            "point_of_interest": [540.0, 420.0, 0.0],
            "orientation": [0.0, 0.0, 0.0],
            "rotation": [0.0, 0.0, 0.0],
        },
        "points": [[512.0, 429.0, 0.0], [800.0, 200.0, 100.0]],
    },
    {
        "name": "default_camera_d1_ntsc",
        "comp": {"width": 720, "height": 486, "pixel_aspect": 0.9},
        "zoom": 720 * 0.9 * 50 / 36,
        "camera": {"default": True},
        "points": [[0.0, 0.0, 0.0], [720.0, 486.0, 0.0], [200.0, 100.0, 300.0], [600.0, 400.0, -150.0]],
    },
]


def _ae_world(case: dict[str, Any]) -> tuple[float, ...]:
    w, h, pa = case["comp"]["width"], case["comp"]["height"], case["comp"]["pixel_aspect"]
    cam = case["camera"]
    if cam.get("default"):
        return ae_default_camera(w, h, pa)[0]

    def square(p: list[float]) -> list[float]:
        return [float(v) for v in ae_comp_to_square(p, pa)]

    poi = cam["point_of_interest"]  # None for a one-node camera
    local = np.array(
        ae_camera_to_world(
            square(cam["position"]), None if poi is None else square(poi), cam["orientation"], cam["rotation"]
        )
    ).reshape(4, 4)
    parent = case.get("parent")
    if parent is not None:
        # A parented layer's transform is in its parent's space: world = parent_world . local.
        pm = np.array(
            ae_camera_to_world(square(parent["position"]), None, parent["orientation"], parent["rotation"])
        ).reshape(4, 4)
        local = pm @ local
    return tuple(local.ravel().tolist())


def build_goldens() -> dict[str, Any]:
    cases = []
    for i, spec in enumerate(CASES):
        w, h, pa = spec["comp"]["width"], spec["comp"]["height"], spec["comp"]["pixel_aspect"]
        m_ae = _ae_world(spec)
        sample = from_after_effects(
            m_ae, frame=1001 + i, zoom_px=spec["zoom"], comp_width=w, comp_height=h, pixel_aspect=pa
        )
        validate_sample(sample)
        points = []
        for p_ae in spec["points"]:
            p_world = [float(v) for v in ae_point_to_world(p_ae, w, h, pixel_aspect=pa)]
            pixel = project_to_pixel(sample, w, h, p_world)
            ae_pixel = list(ae_project(m_ae, spec["zoom"], w, h, p_ae, pixel_aspect=pa))
            points.append({"ae": p_ae, "world": p_world, "pixel": list(pixel), "ae_pixel": ae_pixel})
        cases.append(
            {
                "name": spec["name"],
                "frame": 1001 + i,
                "comp": spec["comp"],
                "zoom": spec["zoom"],
                "camera": spec["camera"],
                "parent": spec.get("parent"),
                "units_per_pixel": 0.01,
                "expected": {
                    "camera_to_world_ae": list(m_ae),
                    "sample": {
                        "frame": sample.frame,
                        "camera_to_world": list(sample.camera_to_world),
                        "focal_length_mm": sample.focal_length_mm,
                        "horizontal_aperture_mm": sample.horizontal_aperture_mm,
                        "vertical_aperture_mm": sample.vertical_aperture_mm,
                        "pixel_aspect": sample.pixel_aspect,
                        "near_clip": sample.near_clip,
                        "far_clip": sample.far_clip,
                    },
                },
                "points": points,
            }
        )
    return {
        "description": (
            "After Effects camera -> GenFX wire camera golden projections. Generated by "
            "tests/test_camera_goldens.py from genfx.camera (ae_camera_to_world, from_after_effects, "
            "ae_point_to_world, project_to_pixel, ae_project); checked by that test and by "
            "ae_bridge/tests/camera_goldens.test.js. AE space: pixels, y down, z into the screen; "
            "camera_to_world: 16 numbers, row-major, column-vector; pixel: origin top-left, y down."
        ),
        "tolerance": 1e-6,
        "cases": cases,
    }


def _close(a: Any, b: Any, path: str = "") -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), path
        for k in a:
            _close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert math.isclose(float(a), float(b), rel_tol=0.0, abs_tol=TOL), f"{path}: {a} != {b}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def test_python_sdk_reproduces_the_golden_file() -> None:
    stored = json.loads(GOLDEN.read_text())
    _close(build_goldens(), stored)


def test_golden_file_is_self_consistent() -> None:
    """AE's own projection and the wire projection agree for every case, non-square pixels included."""
    stored = json.loads(GOLDEN.read_text())
    assert len(stored["cases"]) == len(CASES)
    for case in stored["cases"]:
        for point in case["points"]:
            assert point["pixel"] == pytest.approx(point["ae_pixel"], abs=1e-6)
    defaults = [c for c in stored["cases"] if c["camera"].get("default")]
    assert {c["comp"]["pixel_aspect"] for c in defaults} >= {1.0, 0.9}
    for default in defaults:
        # AE's default camera is the 50 mm preset, and it maps the comp plane (z = 0) onto itself,
        # whatever the pixel aspect.
        assert default["expected"]["sample"]["focal_length_mm"] == pytest.approx(50.0)
        for point in default["points"]:
            if point["ae"][2] == 0.0:
                assert point["pixel"] == pytest.approx(point["ae"][:2], abs=1e-9)


if __name__ == "__main__":
    if "--write" not in sys.argv:
        sys.exit("usage: python tests/test_camera_goldens.py --write")
    GOLDEN.write_text(json.dumps(build_goldens(), indent=1) + "\n")
    print(f"wrote {GOLDEN}")
