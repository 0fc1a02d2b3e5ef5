"""The procedural renders are exact: depth is camera Z of a real surface, motion lands points on frame f+1.

Checked against code the renderer does not use: genfx.camera.project_to_pixel, the shot JSON read back
through genfx.shot.load_shot, and the simulation's own rigid transforms.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from genfx.camera import CameraSample, project_to_pixel
from genfx.exr import camera_from_header
from genfx.passes import next_frame_pixel
from genfx.shot import load_shot
from training.exr_passes import read_channels
from training.source_record import read_source
from training.synth.generate import FRAME_START, SynthSettings, shot_scene, synthesize
from training.synth.simulation import transforms_at

SETTINGS = SynthSettings(shots=2, frames=3, width=96, height=64, seed=5)


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "collapse"
    synthesize(out, SETTINGS)
    return out


def _passes(folder: Path, frame: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    depth, _ = read_channels(folder / f"depth.{frame}.exr")
    motion, _ = read_channels(folder / f"motion.{frame}.exr")
    mask, _ = read_channels(folder / f"mask.{frame}.exr")
    mv = np.stack([motion["motionvector.R"], motion["motionvector.G"]], -1)
    return depth["Z"], mv, mask["A"].astype(np.float32)


def _world_points(
    shot_cam: CameraSample, width: int, height: int, depth: np.ndarray
) -> tuple[np.ndarray, ...]:
    """Un-project pixel centres with their depth through the camera (independent of the renderer)."""
    fx = shot_cam.focal_length_mm / shot_cam.horizontal_aperture_mm * width
    fy = shot_cam.focal_length_mm / shot_cam.vertical_aperture(width, height) * height
    v, u = np.nonzero(np.isfinite(depth))
    z = depth[v, u].astype(np.float64)
    uc, vc = u + 0.5, v + 0.5
    cam_pts = np.stack([(uc - width / 2) / fx * z, -(vc - height / 2) / fy * z, -z, np.ones_like(z)], -1)
    world = cam_pts @ shot_cam.matrix().T
    return world[:, :3], uc, vc, v, u


def test_every_file_is_written_with_a_licence_and_a_loadable_camera(synth_dir: Path) -> None:
    record = read_source(synth_dir)
    assert record.licence == "CC0-1.0" and record.owner == "GenFX procedural generator"
    for i in range(SETTINGS.shots):
        folder = synth_dir / f"shot_{i:03d}"
        shot = load_shot(folder / "camera.json")
        assert (shot.frame_start, shot.frame_end) == (FRAME_START, FRAME_START + SETTINGS.frames - 1)
        assert (shot.camera.width, shot.camera.height) == (SETTINGS.width, SETTINGS.height)
        for frame in shot.frames:
            beauty, header = read_channels(folder / f"beauty.{frame}.exr")
            assert beauty["R"].dtype == np.float16 and beauty["R"].shape == (SETTINGS.height, SETTINGS.width)
            # The header camera and the JSON camera are the same camera.
            np.testing.assert_allclose(
                camera_from_header(header).matrix(), shot.camera.sample_at(frame).matrix(), atol=1e-9
            )
            depth, mv, mask = _passes(folder, frame)
            assert depth.dtype == np.float32 and mv.dtype == np.float32
            assert mask.min() >= 0.0 and mask.max() <= 1.0
    assert not list(synth_dir.glob(".*")), "no temp folders left behind"


def test_depth_is_camera_z_of_a_surface(synth_dir: Path) -> None:
    folder = synth_dir / "shot_000"
    shot = load_shot(folder / "camera.json")
    scene = shot_scene(SETTINGS, 0)
    for index, frame in enumerate(shot.frames):
        depth, _, _ = _passes(folder, frame)
        world, *_ = _world_points(shot.camera.sample_at(frame), SETTINGS.width, SETTINGS.height, depth)
        rot, centre = transforms_at(scene.pieces, scene.time(index, SETTINGS.fps))
        # Distance of each point to the nearest box surface (or the ground plane y = 0).
        local = np.einsum("nji,pnj->pni", rot, world[:, None, :] - centre[None])
        outside = np.abs(local) - scene.pieces.half[None]
        box_dist = np.abs(
            np.where(outside.max(-1) > 0, np.linalg.norm(np.maximum(outside, 0), axis=-1), outside.max(-1))
        )
        dist = np.minimum(box_dist.min(axis=1), np.abs(world[:, 1]))
        assert np.quantile(dist, 0.999) < 1e-3, f"frame {frame}: points from depth are off every surface"


def test_motion_vector_carries_each_point_to_its_pixel_in_the_next_frame(synth_dir: Path) -> None:
    folder = synth_dir / "shot_001"
    shot = load_shot(folder / "camera.json")
    scene = shot_scene(SETTINGS, 1)
    w, h = SETTINGS.width, SETTINGS.height
    checked_moving = 0
    for index, frame in enumerate(list(shot.frames)[:-1]):
        depth, mv, _ = _passes(folder, frame)
        world, uc, vc, v, u = _world_points(shot.camera.sample_at(frame), w, h, depth)
        t0, t1 = scene.time(index, SETTINGS.fps), scene.time(index + 1, SETTINGS.fps)
        rot0, c0 = transforms_at(scene.pieces, t0)
        rot1, c1 = transforms_at(scene.pieces, t1)
        # Which piece (if any) each point lies on: the box it is inside of, within tolerance.
        local = np.einsum("nji,pnj->pni", rot0, world[:, None, :] - c0[None])
        inside = (np.abs(local) <= scene.pieces.half[None] + 1e-3).all(-1)
        on_piece = inside.any(1)
        piece = inside.argmax(1)
        moved = world.copy()
        idx = np.flatnonzero(on_piece)
        moved[idx] = np.einsum("nij,nj->ni", rot1[piece[idx]], local[idx, piece[idx]]) + c1[piece[idx]]
        next_cam = shot.camera.sample_at(frame + 1)
        expected = np.array([project_to_pixel(next_cam, w, h, p) for p in moved])
        got_u, got_v = next_frame_pixel(uc, vc, mv[v, u])
        err = np.hypot(got_u - expected[:, 0], got_v - expected[:, 1])
        assert np.quantile(err, 0.999) < 2e-3, f"frame {frame}: max error {err.max():.4f} px"
        checked_moving += int((np.linalg.norm(moved - world, axis=1) > 1e-3).sum())
    assert checked_moving > 50, "the shot must show moving debris, or the test proves nothing"


def test_same_seed_same_bytes(tmp_path: Path, synth_dir: Path) -> None:
    again = tmp_path / "again"
    synthesize(again, SynthSettings(shots=1, frames=1, width=96, height=64, seed=5))
    for name in ("beauty.1001.exr", "depth.1001.exr", "motion.1001.exr", "mask.1001.exr"):
        # Frame 1001 of shot 0 does not depend on how many frames or shots were asked for.
        assert (again / "shot_000" / name).read_bytes() == (synth_dir / "shot_000" / name).read_bytes()


def test_refuses_a_folder_that_holds_something(tmp_path: Path) -> None:
    (tmp_path / "x").write_text("")
    with pytest.raises(FileExistsError, match="not empty"):
        synthesize(tmp_path, SETTINGS)
