"""The demo shot: the procedural collapse seen through the sample shot's camera (an orbit around the
building), its depth, motion and mask passes written where ``genfx demo`` finds them.

``examples/shots/building_orbit.json`` is the camera (frames 1001-1048, 35 mm, orbiting at 60 m); a
five-storey building of the procedural generator comes down in front of it from the first frames.
Passes are half float (plenty for conditioning; the files are committed) and carry the camera in their
headers as genfx-train synth's do; the beauty (the procedural render) only when asked (not committed).
The last frame's motion vectors have the camera held still (the shot has no frame 1049).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from genfx.passes import DEPTH_CHANNEL, MASK_CHANNEL, MOTION_CHANNELS
from genfx.shot import load_shot
from training.exr_passes import pass_header, write_channels
from training.passes import BEAUTY_CHANNELS, frame_file
from training.synth.render import render_frame
from training.synth.simulation import Building, build_collapse

BUILDING = Building(floors=5, debris=40)
COLLAPSE_SEED = 3
COLLAPSE_START = 0.15  # seconds after the shot's first frame: the top storey lets go
COMMENT = "GenFX demo shot: procedural collapse (simulation render), sample shot camera"


def write_demo_shot(
    camera_json: Path, out: Path, width: int, height: int, beauty: bool = False
) -> list[Path]:
    shot = load_shot(camera_json)
    fps = Fraction(shot.fps)
    pieces = build_collapse(BUILDING, seed=COLLAPSE_SEED, start=COLLAPSE_START)
    frames = list(range(shot.frame_start, shot.frame_end + 1))
    cams = [shot.camera.sample_at(f) for f in frames]
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for i, frame in enumerate(frames):
        next_cam = cams[min(i + 1, len(cams) - 1)]
        t = i / float(fps)
        p = render_frame(pieces, cams[i], next_cam, t, t + 1 / float(fps), width, height)
        header = pass_header(cams[i], width, height, fps, COMMENT)
        rgba = p.beauty.astype(np.float16)
        files = {
            **({"beauty": {c: rgba[..., k] for k, c in enumerate(BEAUTY_CHANNELS)}} if beauty else {}),
            "depth": {DEPTH_CHANNEL: p.depth.astype(np.float16)},
            "motion": dict(
                zip(
                    MOTION_CHANNELS,
                    (
                        *(p.motion[..., k].astype(np.float16) for k in (0, 1)),
                        np.zeros_like(p.depth, np.float16),
                    ),
                    strict=True,
                )
            ),
            "mask": {MASK_CHANNEL: p.mask.astype(np.float16)},
        }
        for kind, channels in files.items():
            path = out / frame_file(kind, frame)
            write_channels(path, channels, header)
            written.append(path)
    return written
