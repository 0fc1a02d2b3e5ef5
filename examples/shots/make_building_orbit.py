"""Build examples/shots/building_orbit.json: a camera orbiting a 30 m building, in Houdini conventions.

A TD can copy this to script any camera move without Houdini. Standard library only.

The camera orbits 60 degrees around the Y axis at 60 m from a building at the origin, rising from 5 m to
15 m, always looking at (0, 12, 0). 35 mm lens, 36 mm aperture, 1920x1080, 24 fps, frames 1001-1048.

Each sample's ``world_transform`` is what ``hou.Matrix4.asTuple()`` gives for the camera's world
transform: ROW-vector convention (rows = the camera's x, y, z axes, then its position). To export a real
Houdini camera instead, in a Python shell:

    cam = hou.node("/obj/shotcam")
    for f in range(1001, 1049):
        t = hou.frameToTime(f)
        xform = cam.worldTransformAtTime(t).asTuple()
        focal = cam.parm("focal").evalAtFrame(f)  # also aperture, aspect, near, far, focalunits
"""

from __future__ import annotations

import json
import math
from pathlib import Path

NAME = "building_orbit"
FRAME_START, FRAME_END = 1001, 1048
FPS = (24, 1)
RESX, RESY = 1920, 1080
FOCAL_MM, APERTURE_MM = 35.0, 36.0
RADIUS = 60.0
HEIGHT_START, HEIGHT_END = 5.0, 15.0
ANGLE_START, ANGLE_END = -30.0, 30.0  # degrees about +Y; 0 = on the +Z axis
TARGET = (0.0, 12.0, 0.0)

Vec = tuple[float, float, float]


def _sub(a: Vec, b: Vec) -> Vec:
    return (a[0] - b[0], a[1] - b[1], a[2] - b[2])


def _cross(a: Vec, b: Vec) -> Vec:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def _normalize(a: Vec) -> Vec:
    n = math.sqrt(a[0] ** 2 + a[1] ** 2 + a[2] ** 2)
    return (a[0] / n, a[1] / n, a[2] / n)


def look_at_row_vector(eye: Vec, target: Vec, up: Vec = (0.0, 1.0, 0.0)) -> list[float]:
    """Houdini-style (row-vector) world transform of a camera at ``eye`` looking at ``target``.

    The camera looks down its -Z, so its +Z axis points from the target back to the eye.
    """
    z = _normalize(_sub(eye, target))
    x = _normalize(_cross(up, z))
    y = _cross(z, x)
    rows = [(*x, 0.0), (*y, 0.0), (*z, 0.0), (*eye, 1.0)]
    return [round(v, 12) + 0.0 for row in rows for v in row]  # + 0.0 turns -0.0 into 0.0


def _ease(t: float) -> float:
    # Smoothstep: the move starts and ends gently, like a real camera move.
    return t * t * (3.0 - 2.0 * t)


def build() -> dict[str, object]:
    samples = []
    count = FRAME_END - FRAME_START
    for frame in range(FRAME_START, FRAME_END + 1):
        t = _ease((frame - FRAME_START) / count)
        angle = math.radians(ANGLE_START + (ANGLE_END - ANGLE_START) * t)
        height = HEIGHT_START + (HEIGHT_END - HEIGHT_START) * t
        eye = (RADIUS * math.sin(angle), height, RADIUS * math.cos(angle))
        samples.append(
            {
                "frame": frame,
                "world_transform": look_at_row_vector(eye, TARGET),
                "focal": FOCAL_MM,
                "focal_units": "mm",
                "aperture": APERTURE_MM,
                "aspect": 1.0,
                "near": 0.1,
                "far": 10000.0,
            }
        )
    return {
        "name": NAME,
        "fps": list(FPS),
        "frame_start": FRAME_START,
        "frame_end": FRAME_END,
        "resolution": [RESX, RESY],
        "camera": {"path": "/obj/shotcam", "samples": samples},
    }


def dumps(shot: dict[str, object]) -> str:
    """Indented JSON with one sample per line, so a diff shows which frames changed."""
    camera = shot["camera"]
    assert isinstance(camera, dict)
    text = json.dumps({**shot, "camera": {**camera, "samples": ["@SAMPLES@"]}}, indent=2)
    rows = ",\n      ".join(json.dumps(s) for s in camera["samples"])
    return text.replace('"@SAMPLES@"', rows) + "\n"


def main() -> None:
    out = Path(__file__).with_name(f"{NAME}.json")
    out.write_text(dumps(build()), encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
