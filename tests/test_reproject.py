"""Reprojection with the known camera, in-betweens, the warping error, tiled upscaling (no diffusion)."""

from __future__ import annotations

import numpy as np

from genfx.passes import shot_depth_range
from inference_server.engine.depth2img import normalise_depth
from inference_server.engine.metrics import warping_error
from inference_server.engine.motion import ShotFlow
from inference_server.engine.reproject import View, backward_warp, default_plane_distance, plane_depth
from inference_server.engine.temporal import inbetween, plan_frames
from inference_server.engine.upscale import resize, resize_depth, tiled_map

from .synthetic import camera, render

W, H = 160, 96


def view(frame: int, x: float, z: float = 0.0) -> View:
    return View(camera(frame, x, z), W, H)


def test_backward_warp_matches_the_rendered_target_and_flags_disocclusions() -> None:
    src_img, src_depth = render(camera(1, 0.0), W, H)
    dst_img, dst_depth = render(camera(2, 0.4, -0.3), W, H)  # truck right and push in
    warped, valid = backward_warp(src_img, dst_depth, view(2, 0.4, -0.3), view(1, 0.0), src_depth)
    assert 0.75 < valid.mean() < 0.99
    err_valid = np.abs(warped - dst_img)[valid].mean()
    no_warp = np.abs(src_img - dst_img).mean()
    assert err_valid < 0.02 < no_warp
    # What the depth test rejected inside the frame is mostly wrong: the wall the card hid before.
    grid_inside = ~valid & (np.abs(warped - dst_img).max(axis=-1) > 0)
    assert np.abs(warped - dst_img)[grid_inside].mean() > 5 * err_valid


def test_plane_approximation_is_exact_for_a_plane_and_stated_by_distance() -> None:
    flat = plane_depth(H, W, 8.0)
    img = np.random.default_rng(0).random((H, W, 3), dtype=np.float32)
    same, valid = backward_warp(img, flat, view(1, 0.0), view(1, 0.0))
    assert valid.all() and np.abs(same - img).max() < 1e-5  # identity warp
    assert default_plane_distance(View(camera(1, 0.0, 5.0), W, H)) == 5.0  # origin 5 units ahead
    assert default_plane_distance(View(camera(1, 0.0, -5.0), W, H)) == 10.0  # origin behind: fallback


def test_plan_keyframes_every_n_and_last_then_their_inbetweens() -> None:
    plan = plan_frames(list(range(1001, 1009)), 3)
    assert [(p.frame, p.keyframe) for p in plan] == [
        (1001, True), (1004, True), (1002, False), (1003, False),
        (1007, True), (1005, False), (1006, False), (1008, True),
    ]  # fmt: skip
    assert [(p.prev_key, p.next_key) for p in plan if not p.keyframe][0] == (1001, 1004)
    assert all(p.keyframe for p in plan_frames([1, 2, 3], 1))


def flow(xs: dict[int, float], depths: dict[int, np.ndarray]) -> ShotFlow:
    """The synthetic shot's geometry (static: no motion passes)."""
    return ShotFlow(W, H, {f: view(f, x) for f, x in xs.items()}, depths.__getitem__, None, depth_test=True)


def test_inbetween_of_true_keyframes_reproduces_the_middle_frame() -> None:
    xs = {1: 0.0, 2: 0.15, 3: 0.3}
    imgs = {f: render(camera(f, x), W, H) for f, x in xs.items()}
    shot = flow(xs, {f: d for f, (_, d) in imgs.items()})
    out, coverage = inbetween(2, (1, imgs[1][0]), (3, imgs[3][0]), shot)
    assert coverage > 0.97
    assert np.abs(out - imgs[2][0]).mean() < 0.02


def test_warping_error_is_low_for_a_consistent_sequence_and_high_for_noise() -> None:
    xs = {0: 0.0, 1: 0.1, 2: 0.2}
    frames = {i: render(camera(i, x), W, H) for i, x in xs.items()}
    shot = flow(xs, {i: d for i, (_, d) in frames.items()})
    consistent, pairs = warping_error([c for c, _ in frames.values()], list(xs), shot)
    rng = np.random.default_rng(1)
    noise, _ = warping_error([rng.random((H, W, 3), dtype=np.float32) for _ in xs], list(xs), shot)
    assert len(pairs) == 2
    assert consistent < 0.01 < noise


def test_depth_is_normalised_over_the_shot_not_per_frame() -> None:
    near_frame = np.array([[2.0, 4.0]], np.float32)
    far_frame = np.array([[4.0, np.inf]], np.float32)
    found = shot_depth_range([near_frame, far_frame])
    assert found is not None
    lo, hi = found
    assert (lo, hi) == (2.0, 4.0)
    a, b = normalise_depth(near_frame, lo, hi), normalise_depth(far_frame, lo, hi)
    # Depth 4 maps to the same value in both frames; the sky is as far as the shot's far.
    assert a[0, 1] == b[0, 0] == -1.0 and a[0, 0] == 1.0 and b[0, 1] == -1.0


def test_tiled_map_reassembles_exactly_and_resize_is_exact_size() -> None:
    img = np.random.default_rng(2).random((40, 70, 3), dtype=np.float32)

    def nearest4(t: np.ndarray) -> np.ndarray:
        return np.repeat(np.repeat(t, 4, 0), 4, 1)

    assert np.abs(tiled_map(img, nearest4, 4, 16, 4) - nearest4(img)).max() < 1e-6
    big = resize(img, 4096, 2160)
    assert big.shape == (2160, 4096, 3) and big.dtype == np.float32 and 0 <= big.min() <= big.max() <= 1
    depth = np.array([[1.0, np.inf]], np.float32)
    assert np.isinf(resize_depth(depth, 4, 2)[:, 2:]).all()


def test_resize_of_a_large_image_is_the_channels_resized_one_by_one() -> None:
    """Large images resize their channels side by side on threads: the pixels are the same."""
    img = np.random.default_rng(3).random((540, 1024, 3), dtype=np.float32)
    together = resize(img, 4096, 2160)
    apart = np.stack([resize(img[..., c], 4096, 2160) for c in range(3)], axis=-1)
    assert np.array_equal(together, apart)
