"""Motion-aware reprojection on a procedural collapse with exact depth and motion (no diffusion).

The rendered beauty is the truth: carrying one frame's beauty into another must reproduce it. Falling
debris smears under the camera-only warp; following the motion vectors it lands where it belongs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import OpenEXR
import pytest
from PIL import Image

from genfx.passes import MOTION_CHANNELS, next_frame_pixel
from genfx.shot import load_shot
from inference_server.engine.metrics import warping_error
from inference_server.engine.motion import ShotFlow
from inference_server.engine.passes import PassError, probe, read_depth, read_motion, read_plate
from inference_server.engine.reproject import View
from inference_server.engine.temporal import inbetween, plan_frames

F32 = np.ndarray


@dataclass(frozen=True)
class Shot:
    frames: list[int]
    beauty: dict[int, F32]
    flow: ShotFlow


@pytest.fixture(scope="module")
def shot(collapse_shot: Path) -> Shot:
    cam = load_shot(collapse_shot / "camera.json")
    frames = list(range(cam.frame_start, cam.frame_end + 1))
    depth = {f: read_depth(collapse_shot / f"depth.{f}.exr", f) for f in frames}
    motion = {f: read_motion(collapse_shot / f"motion.{f}.exr", f) for f in frames}
    beauty = {f: read_plate(collapse_shot / f"beauty.{f}.exr", f) for f in frames}
    h, w = depth[frames[0]].shape
    views = {f: View(cam.camera.sample_at(f), w, h) for f in frames}
    return Shot(frames, beauty, ShotFlow(w, h, views, depth.__getitem__, motion.__getitem__, True))


def sq_error(a: F32, b: F32) -> F32:
    err: F32 = np.square(a - b).sum(axis=-1)
    return err


def test_motion_passes_read_in_the_renderers_spellings_with_one_sign_rule(tmp_path: Path) -> None:
    mv = np.zeros((4, 6), np.float32)
    for channels in (("motion_vector.x", "motion_vector.y"), ("R", "G"), MOTION_CHANNELS[:2]):
        path = tmp_path / f"mv_{channels[0]}.exr"
        with OpenEXR.File(
            {"type": OpenEXR.scanlineimage}, {channels[0]: mv + 2.0, channels[1]: mv - 3.0}
        ) as f:
            f.write(str(path))
        got = read_motion(path, 7)
        assert got.shape == (4, 6, 2) and (got[..., 0] == 2.0).all() and (got[..., 1] == -3.0).all()
    depth_only = tmp_path / "z.exr"
    with OpenEXR.File({"type": OpenEXR.scanlineimage}, {"Z": mv + 1.0}) as f:
        f.write(str(depth_only))
    with pytest.raises(PassError, match=r"frame 7, motion pass\): no motion-vector channels"):
        read_motion(depth_only, 7)
    png = tmp_path / "mv.png"
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(png)
    with pytest.raises(PassError, match=r"motion pass\): motion vectors in pixels need a float image"):
        probe(png, 7, "motion")
    # +Y is up while rows go down: 3 px "up" is 3 rows fewer.
    u, v = next_frame_pixel(10.0, 10.0, (2.0, 3.0))
    assert (float(u), float(v)) == (12.0, 7.0)


def test_passes_with_other_aovs_read_the_right_channels(tmp_path: Path) -> None:
    """Depth and motion read only the channels they need (a span, not the whole file): other AOVs
    before, between and after them must not shift what comes back."""
    ramp = np.arange(24, dtype=np.float32).reshape(4, 6)
    path = tmp_path / "aovs.exr"
    channels = {
        "A": ramp + 100.0,
        "motion_vector.x": ramp + 2.0,
        "motion_vector.xz": ramp + 50.0,  # sorts between x and y in the file
        "motion_vector.y": ramp - 3.0,
        "N.x": ramp + 7.0,
        "Z": ramp + 1.0,
    }
    with OpenEXR.File({"type": OpenEXR.scanlineimage}, channels) as f:
        f.write(str(path))
    motion = read_motion(path, 7)
    assert motion.shape == (4, 6, 2)
    assert (motion[..., 0] == ramp + 2.0).all() and (motion[..., 1] == ramp - 3.0).all()
    assert (read_depth(path, 7) == ramp + 1.0).all()


@pytest.mark.parametrize(("dst", "src", "bound"), [(1001, 1002, 0.6), (1004, 1001, 0.5), (1001, 1004, 0.5)])
def test_falling_debris_follows_its_motion_and_static_pixels_the_camera(
    shot: Shot, dst: int, src: int, bound: float
) -> None:
    """One frame forward, three back, three forward (debris moves 1-3 px a frame at 96x64; what is
    left is the shading: sun and shadows do not move with a piece)."""
    flow = shot.flow
    moving = flow.moving(dst, src)
    assert 0.03 < moving.mean() < 0.3  # debris, not the whole frame
    camera, camera_valid = flow.warp(shot.beauty[src], src, dst, use_motion=False)
    aware, aware_valid = flow.warp(shot.beauty[src], src, dst)
    truth = shot.beauty[dst]
    # On debris the camera-only warp samples where the piece no longer is (or not yet was).
    assert sq_error(aware, truth)[moving].mean() < bound * sq_error(camera, truth)[moving].mean()
    assert aware_valid[moving].mean() > camera_valid[moving].mean() + 0.3
    # Static pixels: exactly the camera + depth reprojection.
    np.testing.assert_array_equal(aware[~moving], camera[~moving])
    np.testing.assert_array_equal(aware_valid[~moving], camera_valid[~moving])


def test_the_motion_sign_is_the_renderers(shot: Shot) -> None:
    """Reading +Y as down (a common mistake) sends debris the wrong way: the error on it grows."""
    flow = shot.flow
    assert flow.motion is not None
    upside_down = replace(flow, motion=lambda f: flow.motion(f) * np.array([1.0, -1.0], np.float32))  # type: ignore[misc]
    moving = flow.moving(1001, 1003)
    right, _ = flow.warp(shot.beauty[1003], 1003, 1001)
    wrong, _ = upside_down.warp(shot.beauty[1003], 1003, 1001)
    truth = shot.beauty[1001]
    assert sq_error(right, truth)[moving].mean() < 0.6 * sq_error(wrong, truth)[moving].mean()


def test_motion_aware_inbetweens_beat_camera_only_on_the_warping_error(shot: Shot) -> None:
    """Keyframes every 3 frames (the rendered beauty, so only the in-between method differs)."""
    frames, flow = shot.frames, shot.flow
    results = {}
    for use_motion in (False, True):
        seq = dict(shot.beauty)
        for p in plan_frames(frames, 3):
            if not p.keyframe:
                assert p.prev_key is not None and p.next_key is not None
                left, right = (p.prev_key, shot.beauty[p.prev_key]), (p.next_key, shot.beauty[p.next_key])
                seq[p.frame], _ = inbetween(p.frame, left, right, flow, use_motion=use_motion)
        error, pairs = warping_error([seq[f] for f in frames], frames, flow)
        to_truth = np.mean([sq_error(seq[f], shot.beauty[f]).mean() for f in frames])
        results[use_motion] = (error, float(to_truth))
    (camera, camera_truth), (aware, aware_truth) = results[False], results[True]
    assert aware < 0.6 * camera, results
    assert aware_truth < camera_truth, results
