"""Camera conventions: golden projections and one point -> one pixel in every convention."""

from __future__ import annotations

import math
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from genfx import exr
from genfx.camera import (
    CameraError,
    CameraSample,
    CameraTrack,
    ae_camera_to_world,
    ae_point_to_world,
    ae_project,
    camera_to_world_from_exr,
    from_after_effects,
    from_houdini,
    houdini_project,
    project_to_pixel,
    validate_sample,
    validate_track,
    world_to_camera_exr,
    world_to_ndc_exr,
)

W, H = 1920, 1080
Point = tuple[float, float, float]
Pixel = tuple[float, float]


def _translate(x: float, y: float, z: float) -> tuple[float, ...]:
    m = np.eye(4)
    m[:3, 3] = (x, y, z)
    return tuple(m.ravel())


def _ndc_pixel(w2ndc: np.ndarray, point: tuple[float, ...], width: int, height: int) -> tuple[float, float]:
    # EXR convention: row vector times matrix, divide by w, NDC [0,1] y down, times the resolution.
    p = np.append(np.asarray(point, np.float64), 1.0) @ w2ndc.astype(np.float64)
    return float(p[0] / p[3] * width), float(p[1] / p[3] * height)


# Camera at (0, 0, 10) looking down -Z; focal 50 mm, aperture 36 mm, 1920x1080, square pixels.
#   fx_px = 50/36 * 1920 = 2666.667;  vertical aperture = 36 * 1080/1920 = 20.25 mm,
#   fy_px = 50/20.25 * 1080 = 2666.667 (square pixels: fy = fx).
#   (0,0,0): depth 10, on axis                 -> (960, 540)
#   (1,0,0): u = 960 + 2666.667 * 1/10          -> 1226.667
#   (0,1,0): v = 540 - 2666.667 * 1/10 (y down) -> 273.333
#   (1,1,-10): depth 20: 960 + 133.333, 540 - 133.333 -> (1093.333, 406.667)
FX = 50 / 36 * 1920
GOLDEN_STRAIGHT = [
    ((0.0, 0.0, 0.0), (960.0, 540.0)),
    ((1.0, 0.0, 0.0), (960 + FX / 10, 540.0)),
    ((0.0, 1.0, 0.0), (960.0, 540 - FX / 10)),
    ((1.0, 1.0, -10.0), (960 + FX / 20, 540 - FX / 20)),
]

# Camera at (5, 2, 0) turned +90 degrees about Y (looks down world -X; its right is world -Z):
#   R = Ry(90) = [[0,0,1],[0,1,0],[-1,0,0]], p_cam = R^T (p - t).
#   (0,2,0):  p - t = (-5,0,0)  -> p_cam = (0, 0, -5)        -> (960, 540)
#   (0,2,-1): p - t = (-5,0,-1) -> p_cam = (1, 0, -5)        -> u = 960 + 2666.667/5 = 1493.333
#   (0,3,0):  p - t = (-5,1,0)  -> p_cam = (0, 1, -5)        -> v = 540 - 2666.667/5 = 6.667
YAW_90 = (0.0, 0.0, 1.0, 5.0, 0.0, 1.0, 0.0, 2.0, -1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0)
GOLDEN_YAWED = [
    ((0.0, 2.0, 0.0), (960.0, 540.0)),
    ((0.0, 2.0, -1.0), (960 + FX / 5, 540.0)),
    ((0.0, 3.0, 0.0), (960.0, 540 - FX / 5)),
]


@pytest.mark.parametrize(
    ("matrix", "golden"),
    [(_translate(0, 0, 10), GOLDEN_STRAIGHT), (YAW_90, GOLDEN_YAWED)],
    ids=["straight", "yawed"],
)
def test_golden_projections(matrix: tuple[float, ...], golden: list[tuple[Point, Pixel]]) -> None:
    sample = CameraSample(frame=1, camera_to_world=matrix, focal_length_mm=50.0, horizontal_aperture_mm=36.0)
    houdini_xform = tuple(np.asarray(matrix).reshape(4, 4).T.ravel())  # what hou.Matrix4.asTuple() holds
    for point, (u, v) in golden:
        assert project_to_pixel(sample, W, H, point) == pytest.approx((u, v), abs=1e-9)
        hou_px = houdini_project(
            houdini_xform, focal=50, aperture=36, resx=W, resy=H, aspect=1.0, point=point
        )
        assert hou_px == pytest.approx((u, v), abs=1e-9)
        assert _ndc_pixel(world_to_ndc_exr(sample, W, H), point, W, H) == pytest.approx((u, v), abs=1e-3)


def test_from_houdini_transposes_and_scales_units() -> None:
    houdini_xform = tuple(np.asarray(YAW_90).reshape(4, 4).T.ravel())
    assert houdini_xform[12:15] == (5.0, 2.0, 0.0)  # row-vector: translation in the last row
    s = from_houdini(houdini_xform, frame=7, focal=0.05, aperture=0.036, resx=W, resy=H, focal_units="m")
    assert s.camera_to_world == pytest.approx(YAW_90)
    assert s.frame == 7
    assert (s.focal_length_mm, s.horizontal_aperture_mm) == pytest.approx((50.0, 36.0))
    assert s.vertical_aperture_mm == pytest.approx(20.25)
    with pytest.raises(CameraError, match="focal_units"):
        from_houdini(houdini_xform, frame=1, focal=50, aperture=36, resx=W, resy=H, focal_units="cm")


def test_houdini_pixel_aspect_matches() -> None:
    """Anamorphic pixels (aspect 2): Houdini's formula and ours agree off-axis."""
    xform = tuple(np.asarray(YAW_90).reshape(4, 4).T.ravel())
    s = from_houdini(xform, frame=1, focal=35, aperture=24.9, resx=1024, resy=858, aspect=2.0)
    for point in [(0.0, 2.5, -0.7), (-3.0, 1.0, 0.4)]:
        expected = houdini_project(
            xform, focal=35, aperture=24.9, resx=1024, resy=858, aspect=2.0, point=point
        )
        assert project_to_pixel(s, 1024, 858, point) == pytest.approx(expected, abs=1e-6)
        assert _ndc_pixel(world_to_ndc_exr(s, 1024, 858), point, 1024, 858) == pytest.approx(
            expected, abs=1e-3
        )


# A deliberately awkward After Effects camera: two-node (POI), orientation and X/Y/Z rotations.
AE_W, AE_H, AE_ZOOM = 1920, 1080, 1600.0
AE_CAM = ae_camera_to_world(
    (700.0, 380.0, -1500.0), (1010.0, 590.0, 120.0), (8.0, -15.0, 4.0), (-3.0, 6.0, 11.0)
)
AE_POINTS = [(1100.0, 500.0, 300.0), (640.0, 260.0, -200.0), (1500.0, 900.0, 900.0)]


def test_ae_default_camera_maps_comp_plane_onto_itself() -> None:
    # AE's default camera sits at (W/2, H/2, -zoom) looking at the comp centre: z=0 pixels stay put.
    cam = ae_camera_to_world((AE_W / 2, AE_H / 2, -AE_ZOOM), (AE_W / 2, AE_H / 2, 0.0))
    assert ae_project(cam, AE_ZOOM, AE_W, AE_H, (100.0, 200.0, 0.0)) == pytest.approx((100.0, 200.0))


def test_one_point_same_pixel_in_every_convention(tmp_path: Path) -> None:
    """AE (its own projection), Houdini (its own formula), ours and the EXR worldToNDC agree."""
    sample = from_after_effects(AE_CAM, frame=1001, zoom_px=AE_ZOOM, comp_width=AE_W, comp_height=AE_H)
    validate_sample(sample)
    assert sample.focal_length_mm == pytest.approx(AE_ZOOM * 36 / AE_W)
    # The Houdini artist's view of the same camera: hou.Matrix4 is the transpose of ours.
    houdini_xform = tuple(sample.matrix().T.ravel())
    from_houdini_sample = from_houdini(
        houdini_xform, frame=1001, focal=sample.focal_length_mm, aperture=36, resx=AE_W, resy=AE_H
    )
    w2ndc = world_to_ndc_exr(sample, AE_W, AE_H)
    w2c = world_to_camera_exr(sample)

    meta = exr.FrameMetadata(camera=sample, width=AE_W, height=AE_H, frame=1001, fps=Fraction(24))
    path = tmp_path / "f.1001.exr"
    exr.write_frame(path, np.zeros((AE_H, AE_W, 4), np.float32), meta, compression="none")
    header = exr.read_header(path)
    w2ndc_file = header["worldToNDC"]
    assert w2ndc_file.dtype == np.float32 and w2ndc_file.shape == (4, 4)

    for p_ae in AE_POINTS:
        expected = ae_project(AE_CAM, AE_ZOOM, AE_W, AE_H, p_ae)
        p_world = tuple(ae_point_to_world(p_ae, AE_W, AE_H))
        assert project_to_pixel(sample, AE_W, AE_H, p_world) == pytest.approx(expected, abs=1e-6)
        hou_px = houdini_project(
            houdini_xform,
            focal=sample.focal_length_mm,
            aperture=36,
            resx=AE_W,
            resy=AE_H,
            aspect=1,
            point=p_world,
        )
        assert hou_px == pytest.approx(expected, abs=1e-6)
        assert project_to_pixel(from_houdini_sample, AE_W, AE_H, p_world) == pytest.approx(expected, abs=1e-6)
        # float32 matrices: ~1e-4 px at these distances.
        assert _ndc_pixel(w2ndc, p_world, AE_W, AE_H) == pytest.approx(expected, abs=1e-3)
        assert _ndc_pixel(w2ndc_file, p_world, AE_W, AE_H) == pytest.approx(expected, abs=1e-3)
        # EXR camera space is left-handed, +Z forward: visible points have z > 0.
        assert (np.append(p_world, 1.0) @ w2c.astype(np.float64))[2] > 0

    assert np.linalg.det(w2c[:3, :3].astype(np.float64)) == pytest.approx(-1.0, abs=1e-5)


def test_exr_matrices_are_float32_c_contiguous_and_invertible() -> None:
    sample = CameraSample(frame=1, camera_to_world=YAW_90, focal_length_mm=35.0, horizontal_aperture_mm=36.0)
    for m in (world_to_camera_exr(sample), world_to_ndc_exr(sample, W, H)):
        assert m.dtype == np.float32 and m.shape == (4, 4) and m.flags.c_contiguous
    back = camera_to_world_from_exr(world_to_camera_exr(sample))
    assert back.ravel() == pytest.approx(YAW_90, abs=1e-6)
    # Row-vector: the translation row of worldToCamera is the last one.
    w2c = world_to_camera_exr(sample)
    assert w2c[:, 3] == pytest.approx((0, 0, 0, 1))


def test_vertical_aperture_derived_and_explicit() -> None:
    s = CameraSample(
        frame=1, camera_to_world=_translate(0, 0, 0), focal_length_mm=50, horizontal_aperture_mm=36
    )
    assert s.vertical_aperture(1920, 1080) == pytest.approx(20.25)
    anamorphic = CameraSample(1, _translate(0, 0, 0), 50, 36, pixel_aspect=2.0)
    assert anamorphic.vertical_aperture(1920, 1080) == pytest.approx(10.125)
    assert CameraSample(1, _translate(0, 0, 0), 50, 36, vertical_aperture_mm=24).vertical_aperture(W, H) == 24


GOOD = CameraSample(
    frame=1, camera_to_world=_translate(0, 0, 10), focal_length_mm=50, horizontal_aperture_mm=36
)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"camera_to_world": (1.0,) * 15},
            r"camera\.samples\[3\]\.camera_to_world: must hold 16 finite numbers",
        ),
        (
            {"camera_to_world": (math.nan,) + GOOD.camera_to_world[1:]},
            r"camera_to_world: must hold 16 finite",
        ),
        ({"camera_to_world": (0.0,) * 15 + (1.0,)}, r"camera_to_world: matrix is singular"),
        ({"camera_to_world": GOOD.camera_to_world[:12] + (0, 0, 1, 1)}, r"camera_to_world: last row"),
        ({"focal_length_mm": -1.0}, r"camera\.samples\[3\]\.focal_length_mm: must be > 0 \(got -1\)"),
        ({"horizontal_aperture_mm": 0.0}, r"horizontal_aperture_mm: must be > 0"),
        ({"vertical_aperture_mm": -2.0}, r"vertical_aperture_mm: must be >= 0"),
        ({"pixel_aspect": 0.0}, r"pixel_aspect: must be > 0"),
        ({"near_clip": 0.0}, r"near_clip: must be > 0"),
        ({"far_clip": 0.05}, r"far_clip: must be > near_clip"),
        ({"far_clip": math.inf}, r"far_clip: must be a finite number"),
    ],
)
def test_validation_names_the_field(changes: dict[str, Any], message: str) -> None:
    validate_sample(GOOD, "camera.samples[3]")
    with pytest.raises(CameraError, match=message):
        validate_sample(replace(GOOD, **changes), "camera.samples[3]")


def test_validate_track() -> None:
    validate_track(CameraTrack(W, H, (GOOD,)))
    with pytest.raises(CameraError, match=r"camera\.samples: must hold at least one"):
        validate_track(CameraTrack(W, H, ()))
    with pytest.raises(CameraError, match=r"camera\.width: must be > 0"):
        validate_track(CameraTrack(0, H, (GOOD,)))
    with pytest.raises(CameraError, match=r"camera\.samples\[1\]\.frame: frame 1 appears twice"):
        validate_track(CameraTrack(W, H, (GOOD, GOOD)))


def test_sample_at_static_and_animated() -> None:
    static = CameraTrack(W, H, (GOOD,))
    assert static.sample_at(1042).frame == 1042
    assert static.sample_at(1042).camera_to_world == GOOD.camera_to_world
    frames = [CameraSample(f, _translate(f, 0, 0), 50, 36) for f in range(1001, 1004)]
    animated = CameraTrack(W, H, tuple(frames))
    assert animated.sample_at(1002).camera_to_world[3] == 1002.0
    with pytest.raises(KeyError, match="1004"):
        animated.sample_at(1004)
    with pytest.raises(KeyError):
        CameraTrack(W, H, ()).sample_at(1)


def test_sample_accepts_lists_and_is_hashable() -> None:
    s = CameraSample(1, list(np.eye(4).ravel()), 50, 36)  # type: ignore[arg-type]
    assert isinstance(s.camera_to_world, tuple) and all(type(v) is float for v in s.camera_to_world)
    assert hash(s) == hash(CameraSample(1, tuple(np.eye(4).ravel()), 50, 36))


def test_ae_look_at_straight_up_is_an_error() -> None:
    with pytest.raises(CameraError, match="point_of_interest"):
        ae_camera_to_world((0.0, 0.0, 0.0), (0.0, -100.0, 0.0))
