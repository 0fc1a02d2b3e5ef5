"""Moving shot cameras around the collapse, and their sample-shot JSON (genfx/shot.py's format)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from genfx.camera import CameraSample

APERTURE_MM = 36.0
NEAR, FAR = 0.1, 10000.0


@dataclass(frozen=True)
class Orbit:
    """An orbit (with dolly and crane) around ``target``: angle, radius and height change per frame."""

    target: tuple[float, float, float]
    angle_deg: float
    angle_step_deg: float
    radius: float
    radius_step: float
    height: float
    height_step: float
    focal_mm: float

    @staticmethod
    def random(rng: np.random.Generator, building_height: float) -> Orbit:
        return Orbit(
            target=(float(rng.uniform(-2, 2)), float(rng.uniform(0.3, 0.6) * building_height), 0.0),
            angle_deg=float(rng.uniform(0, 360)),
            angle_step_deg=float(rng.choice([-1, 1]) * rng.uniform(0.4, 1.6)),
            radius=float(rng.uniform(32, 50)),
            radius_step=float(rng.uniform(-0.25, 0.1)),
            height=float(rng.uniform(2.0, 14.0)),
            height_step=float(rng.uniform(-0.05, 0.1)),
            focal_mm=float(rng.uniform(28, 45)),
        )

    def sample(self, frame_index: float, frame: int) -> CameraSample:
        """The camera ``frame_index`` frames into the shot (fractional is fine), labelled ``frame``."""
        angle = np.radians(self.angle_deg + self.angle_step_deg * frame_index)
        radius = self.radius + self.radius_step * frame_index
        eye = np.array(
            [radius * np.sin(angle), self.height + self.height_step * frame_index, radius * np.cos(angle)]
        )
        return CameraSample(
            frame=frame,
            camera_to_world=tuple(look_at(eye, np.asarray(self.target)).ravel().tolist()),
            focal_length_mm=self.focal_mm,
            horizontal_aperture_mm=APERTURE_MM,
            near_clip=NEAR,
            far_clip=FAR,
        )


def look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Camera-to-world (column-vector) of a Y-up camera at ``eye`` looking down -Z at ``target``."""
    z = eye - target
    z = z / np.linalg.norm(z)
    x = np.cross((0.0, 1.0, 0.0), z)
    x /= np.linalg.norm(x)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = x, np.cross(z, x), z, eye
    return m


def shot_json(name: str, fps: Fraction, samples: list[CameraSample], width: int, height: int) -> str:
    """The sample-shot JSON (``genfx.shot.load_shot`` reads it): Houdini row-vector world transforms."""
    rows: list[dict[str, Any]] = []
    for s in samples:
        rows.append(
            {
                "frame": s.frame,
                "world_transform": [float(v) for v in s.matrix().T.ravel()],  # hou.Matrix4 is row-vector
                "focal": s.focal_length_mm,
                "focal_units": "mm",
                "aperture": s.horizontal_aperture_mm,
                "aspect": s.pixel_aspect,
                "near": s.near_clip,
                "far": s.far_clip,
            }
        )
    shot = {
        "name": name,
        "fps": [fps.numerator, fps.denominator],
        "frame_start": samples[0].frame,
        "frame_end": samples[-1].frame,
        "resolution": [width, height],
        "camera": {"path": "/obj/simcam", "samples": rows},
    }
    return json.dumps(shot, indent=1) + "\n"
