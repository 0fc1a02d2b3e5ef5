"""``genfx-train synth``: write procedural collapse shots exactly as a Houdini render would.

Layout (one licensed source; ``ingest`` takes the top folder)::

    OUT/source.json                      CC0-1.0, owner "GenFX procedural generator" (written last)
    OUT/shot_000/camera.json             sample-shot format (genfx.shot.load_shot reads it)
    OUT/shot_000/beauty.1001.exr ...     + depth / motion / mask, see training/passes.py

Each shot is written into a hidden temp folder and renamed when complete, and source.json comes last,
so an interrupted run never leaves a folder that looks finished.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from genfx.passes import DEPTH_CHANNEL, MASK_CHANNEL, MOTION_CHANNELS
from training.exr_passes import pass_header, write_channels
from training.passes import BEAUTY_CHANNELS, frame_file
from training.source_record import SOURCE_FILE, source_json
from training.synth.camera_path import Orbit, shot_json
from training.synth.render import render_frame
from training.synth.simulation import Building, Pieces, build_collapse

FRAME_START = 1001
GENERATOR_OWNER = "GenFX procedural generator"
GENERATOR_LICENCE = "CC0-1.0"
CAPTION = "a concrete building collapsing into rubble, {view}{dust}"


@dataclass(frozen=True)
class SynthSettings:
    shots: int = 4
    frames: int = 12
    width: int = 128
    height: int = 96
    seed: int = 0
    fps: Fraction = Fraction(24)


@dataclass(frozen=True)
class ShotScene:
    pieces: Pieces
    orbit: Orbit
    time_offset: float  # simulation seconds at the shot's first frame

    def time(self, frame_index: int, fps: Fraction) -> float:
        return self.time_offset + frame_index / float(fps)


def shot_scene(settings: SynthSettings, index: int) -> ShotScene:
    """The simulation and camera of shot ``index`` (deterministic in seed and index)."""
    rng = np.random.default_rng([settings.seed, index])
    building = Building(floors=int(rng.integers(3, 6)), debris=int(rng.integers(25, 50)))
    pieces = build_collapse(building, seed=int(rng.integers(2**31)), start=float(rng.uniform(0.0, 0.4)))
    orbit = Orbit.random(rng, building.floors * building.storey)
    # Shots see different stages: from the first crack to the settled rubble and its dust.
    return ShotScene(pieces, orbit, time_offset=float(rng.uniform(0.0, 2.5)))


def _write_shot(folder: Path, index: int, settings: SynthSettings) -> None:
    scene = shot_scene(settings, index)
    w, h, fps = settings.width, settings.height, settings.fps
    cams = [scene.orbit.sample(i, FRAME_START + i) for i in range(settings.frames + 1)]  # +1: last's motion
    for i in range(settings.frames):
        frame = FRAME_START + i
        passes = render_frame(
            scene.pieces, cams[i], cams[i + 1], scene.time(i, fps), scene.time(i + 1, fps), w, h
        )
        header = pass_header(cams[i], w, h, fps, "GenFX procedural collapse (simulation render)")
        rgba = passes.beauty.astype(np.float16)
        write_channels(
            folder / frame_file("beauty", frame),
            {c: rgba[..., k] for k, c in enumerate(BEAUTY_CHANNELS)},
            header,
        )
        write_channels(folder / frame_file("depth", frame), {DEPTH_CHANNEL: passes.depth}, header)
        zero = np.zeros_like(passes.depth)
        mv = (passes.motion[..., 0], passes.motion[..., 1], zero)
        write_channels(
            folder / frame_file("motion", frame), dict(zip(MOTION_CHANNELS, mv, strict=True)), header
        )
        write_channels(
            folder / frame_file("mask", frame), {MASK_CHANNEL: passes.mask.astype(np.float16)}, header
        )
    name = folder.name.removeprefix(".").split(".tmp")[0]
    (folder / "camera.json").write_text(shot_json(name, fps, cams[:-1], w, h), encoding="utf-8")


def synthesize(
    out: Path, settings: SynthSettings, progress: Callable[[int], None] | None = None
) -> list[Path]:
    """Write ``settings.shots`` shots under ``out``; returns the shot folders. Refuses a non-empty ``out``."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out}: not empty (synth writes a new source folder; pick another)")
    out.mkdir(parents=True, exist_ok=True)
    shots = []
    for i in range(settings.shots):
        final = out / f"shot_{i:03d}"
        tmp = out / f".shot_{i:03d}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        _write_shot(tmp, i, settings)
        os.replace(tmp, final)
        shots.append(final)
        if progress:
            progress(i + 1)
    description = (
        f"procedural building collapse, {settings.shots} shots x {settings.frames} frames, "
        f"{settings.width}x{settings.height}, seed {settings.seed}"
    )
    (out / SOURCE_FILE).write_text(
        source_json(GENERATOR_OWNER, GENERATOR_LICENCE, description, caption=CAPTION), encoding="utf-8"
    )
    return shots
