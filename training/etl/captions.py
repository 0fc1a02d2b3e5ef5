"""Captions from a template and metadata (no captioning model: those need hub weights).

The source's ``caption`` template (or DEFAULT_TEMPLATE) is filled with: {description}, {kind},
{view} (from the shot camera: angle and framing) and {dust} (", heavy dust" when the mask covers more
than a fifth of the frame, else "").
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

from genfx.shot import Shot, load_shot

DEFAULT_TEMPLATE = "{description}, {view}{dust}"
_KIND_WORDS = {"render": "CG render", "plate": "live-action plate", "scan": "photogrammetry scan"}


@lru_cache(maxsize=256)
def _shot(path: str) -> Shot:
    return load_shot(path)


def view_words(camera_json: Path | None, frame: int) -> str:
    """'high angle wide shot' etc. from the camera's pitch and focal length; 'view' without a camera."""
    if camera_json is None:
        return "view"
    shot = _shot(str(camera_json))
    cam = shot.camera.sample_at(frame)
    forward = -cam.matrix()[:3, 2]
    pitch = math.degrees(math.asin(max(-1.0, min(1.0, float(forward[1])))))
    angle = "high angle" if pitch < -12 else "low angle" if pitch > 5 else "eye-level"
    framing = "wide shot" if cam.focal_length_mm < 35 else "medium shot"
    return f"{angle} {framing}"


def caption(template: str, *, description: str, kind: str, view: str, dust_fraction: float) -> str:
    dust = ", heavy dust" if dust_fraction > 0.2 else ""
    text = (template or DEFAULT_TEMPLATE).format(
        description=description, kind=_KIND_WORDS.get(kind, kind), view=view, dust=dust
    )
    return " ".join(text.split())
