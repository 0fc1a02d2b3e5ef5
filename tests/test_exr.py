"""EXR frames: header attributes with the right on-disk types, pixels, atomic writes."""

from __future__ import annotations

import hashlib
import io
import os
import struct
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import OpenEXR
import pytest

import genfx
from genfx import exr
from genfx.camera import CameraSample, world_to_camera_exr, world_to_ndc_exr
from genfx.colour import ACESCG_CHROMATICITIES, REC709_CHROMATICITIES

W, H = 64, 36
CAM = CameraSample(
    frame=1001,
    camera_to_world=(0.8, 0.0, 0.6, 12.5, 0.0, 1.0, 0.0, 3.25, -0.6, 0.0, 0.8, 40.125, 0.0, 0.0, 0.0, 1.0),
    focal_length_mm=35.0,
    horizontal_aperture_mm=36.0,
    near_clip=0.5,
    far_clip=5000.0,
)
META = exr.FrameMetadata(
    camera=CAM,
    width=W,
    height=H,
    frame=1001,
    fps=Fraction(24),
    job_id="job-123",
    prompt="a building collapses, dust",
    negative_prompt="blurry",
    seed=2**63 + 5,
    model="tiny-sd",
    model_hash="ab" * 32,
    loras='[{"name": "dust", "weight": 0.8}]',
    controlnet='{"sha256": "cd", "scale": 0.7}',
    keyframe=False,
    owner="studio",
    comments="test frame",
)


def _pixels(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rgba = rng.uniform(0.0, 4.0, (H, W, 4)).astype(np.float32)
    rgba[..., 3] = rng.uniform(0.0, 1.0, (H, W))
    return rgba


def raw_attribute_types(path: Path) -> dict[str, str]:
    """Attribute name -> on-disk type name, parsed from the raw header bytes (single-part file).

    After the magic number and version field the header is a sequence of: name NUL, type name NUL,
    int32 little-endian size, value; an empty name ends it.
    """
    data = path.read_bytes()
    assert data[:4] == b"\x76\x2f\x31\x01", "not an OpenEXR file"
    pos, types = 8, {}
    while data[pos] != 0:
        name_end = data.index(b"\0", pos)
        type_end = data.index(b"\0", name_end + 1)
        (size,) = struct.unpack_from("<i", data, type_end + 1)
        types[data[pos:name_end].decode()] = data[name_end + 1 : type_end].decode()
        pos = type_end + 5 + size
    return types


def test_header_round_trip_types(tmp_path: Path) -> None:
    path = tmp_path / "shot.1001.exr"
    exr.write_frame(path, _pixels(), META)
    h = exr.read_header(path)

    for key, expected in (
        ("worldToCamera", world_to_camera_exr(CAM)),
        ("worldToNDC", world_to_ndc_exr(CAM, W, H)),
    ):
        assert h[key].dtype == np.float32 and h[key].shape == (4, 4)
        np.testing.assert_array_equal(h[key], expected)
    assert isinstance(h["framesPerSecond"], Fraction) and h["framesPerSecond"] == 24
    tc = h["timeCode"]
    assert isinstance(tc, OpenEXR.TimeCode)
    assert (tc.hours, tc.minutes, tc.seconds, tc.frame) == (0, 0, 41, 17)  # 1001 = 41 * 24 + 17
    assert h["chromaticities"] == pytest.approx(REC709_CHROMATICITIES, abs=1e-7)
    assert h["owner"] == "studio" and h["comments"] == "test frame"
    assert len(h["capDate"]) == 19 and h["capDate"][4] == ":" and h["capDate"][10] == " "
    assert h["pinholeFocalLength"] == 35.0
    assert h["sensorOverallDimensions"] == pytest.approx((36.0, 36.0 * H / W))
    assert h["CameraFocalLength"] == 35.0 and h["CameraFilmApertureHorizontal"] == 36.0
    assert h["CameraFilmApertureVertical"] == pytest.approx(20.25)
    assert h["pixelAspectRatio"] == 1.0
    assert h["compression"] == OpenEXR.ZIP_COMPRESSION

    c2w = h["genfx/cameraToWorld"]
    assert c2w.dtype == np.float64 and c2w.shape == (4, 4)
    assert tuple(c2w.ravel()) == CAM.camera_to_world
    assert {
        "genfx/jobId": "job-123",
        "genfx/frame": 1001,
        "genfx/prompt": "a building collapses, dust",
        "genfx/negativePrompt": "blurry",
        "genfx/seed": str(2**63 + 5),
        "genfx/model": "tiny-sd",
        "genfx/modelHash": "ab" * 32,
        "genfx/loras": '[{"name": "dust", "weight": 0.8}]',
        "genfx/controlnet": '{"sha256": "cd", "scale": 0.7}',
        "genfx/keyframe": 0,
        "genfx/colorspace": "linear_rec709",
        "genfx/version": genfx.__version__,
        "genfx/aiGenerated": 1,
    }.items() <= h.items()

    types = raw_attribute_types(path)
    assert types["worldToCamera"] == "m44f"
    assert types["worldToNDC"] == "m44f"
    assert types["framesPerSecond"] == "rational"
    assert types["timeCode"] == "timecode"
    assert types["chromaticities"] == "chromaticities"
    assert types["sensorOverallDimensions"] == "v2f"
    assert types["pinholeFocalLength"] == "float"
    assert types["capDate"] == "string"
    assert types["genfx/cameraToWorld"] == "m44d"
    assert types["genfx/nearClip"] == "double"
    assert types["genfx/frame"] == "int"
    assert types["genfx/aiGenerated"] == "int"
    assert types["genfx/seed"] == "string"
    assert types["channels"] == "chlist"


def test_camera_from_header_equals_sample(tmp_path: Path) -> None:
    path = tmp_path / "f.exr"
    exr.write_frame(path, _pixels(), META)
    back = exr.camera_from_header(exr.read_header(path))
    assert back.frame == 1001
    assert back.camera_to_world == CAM.camera_to_world  # float64 in our namespace: exact
    assert back.focal_length_mm == pytest.approx(CAM.focal_length_mm, rel=1e-6)
    assert back.horizontal_aperture_mm == pytest.approx(CAM.horizontal_aperture_mm, rel=1e-6)
    assert back.vertical_aperture(W, H) == pytest.approx(CAM.vertical_aperture(W, H), rel=1e-6)
    assert (back.near_clip, back.far_clip, back.pixel_aspect) == (0.5, 5000.0, 1.0)


def test_camera_from_foreign_header_uses_world_to_camera() -> None:
    header = {
        "worldToCamera": world_to_camera_exr(CAM),
        "pinholeFocalLength": 35.0,
        "sensorOverallDimensions": np.array([36.0, 20.25], np.float32),
    }
    back = exr.camera_from_header(header)
    assert back.camera_to_world == pytest.approx(CAM.camera_to_world, abs=1e-4)
    assert (back.focal_length_mm, back.horizontal_aperture_mm, back.vertical_aperture_mm) == (
        35.0,
        36.0,
        20.25,
    )
    with pytest.raises(KeyError):
        exr.camera_from_header({})


def test_pixels_round_trip_as_half(tmp_path: Path) -> None:
    rgba = _pixels(1)
    path = tmp_path / "p.exr"
    exr.write_frame(path, rgba, META)
    pixels, header = exr.read_frame(path)
    assert pixels.dtype == np.float16 and pixels.shape == (H, W, 4)
    np.testing.assert_array_equal(pixels, rgba.astype(np.float16))
    assert header["genfx/frame"] == 1001


def test_strided_input_is_written_correctly(tmp_path: Path) -> None:
    big = _pixels(2).repeat(2, axis=0).repeat(2, axis=1)
    view = big[::2, ::2]  # non-contiguous: the binding would misread it (openexr#1929)
    path = tmp_path / "s.exr"
    exr.write_frame(path, view, META)
    np.testing.assert_array_equal(exr.read_frame(path)[0], view.astype(np.float16))


@pytest.mark.parametrize("compression", exr.COMPRESSIONS)
def test_every_compression_opens(tmp_path: Path, compression: str) -> None:
    rgba = _pixels(3)
    path = tmp_path / f"{compression}.exr"
    exr.write_frame(path, rgba, META, compression=compression)
    pixels, header = exr.read_frame(path)
    assert pixels.shape == (H, W, 4)
    expected = {"zip": "ZIP", "piz": "PIZ", "dwaa": "DWAA", "none": "NO"}[compression]
    assert header["compression"] == getattr(OpenEXR, f"{expected}_COMPRESSION")
    if compression != "dwaa":  # DWAA is lossy on RGB, lossless on alpha
        np.testing.assert_array_equal(pixels, rgba.astype(np.float16))
    np.testing.assert_array_equal(pixels[..., 3], rgba[..., 3].astype(np.float16))


def test_acescg_chromaticities() -> None:
    data = exr.encode_frame(_pixels(), replace(META, colorspace="acescg"))
    with OpenEXR.File(io.BytesIO(data), header_only=True) as f:
        assert f.header()["chromaticities"] == pytest.approx(ACESCG_CHROMATICITIES, abs=1e-6)


def test_sha256_matches_file(tmp_path: Path) -> None:
    path = tmp_path / "h.exr"
    digest = exr.write_frame(path, _pixels(), META)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()


def test_atomic_write_leaves_only_the_file(tmp_path: Path) -> None:
    path = tmp_path / "a.exr"
    exr.write_frame(path, _pixels(), META)
    exr.write_frame(path, _pixels(1), META)  # overwrite in place
    assert os.listdir(tmp_path) == ["a.exr"]


def test_bad_input_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bad.exr"
    with pytest.raises(ValueError, match=r"shape \(36, 63, 4\) does not match"):
        exr.write_frame(path, np.zeros((H, W - 1, 4), np.float32), META)
    with pytest.raises(ValueError, match=r"compression: must be one of zip, piz, dwaa, none"):
        exr.write_frame(path, _pixels(), META, compression="htj2k")
    with pytest.raises(ValueError, match=r"must be a float array"):
        exr.write_frame(path, np.zeros((H, W, 4), np.uint8), META)
    assert os.listdir(tmp_path) == []


def test_failed_rename_leaves_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk gone"):
        exr.write_frame(tmp_path / "x.exr", _pixels(), META)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    ("frame", "fps", "expected"),
    [
        (0, Fraction(24), (0, 0, 0, 0)),
        (1001, Fraction(24), (0, 0, 41, 17)),
        (1001, Fraction(24000, 1001), (0, 0, 41, 17)),  # nominal 24, non-drop
        (25 * 3600 + 25 * 61 + 3, Fraction(25), (1, 1, 1, 3)),
        (24 * 86400 + 5, Fraction(24), (0, 0, 0, 5)),  # wraps at 24 h
        (119, Fraction(60), (0, 0, 1, 29)),  # > 30 fps counts frame pairs
    ],
)
def test_timecode_for(frame: int, fps: Fraction, expected: tuple[int, int, int, int]) -> None:
    tc = exr.timecode_for(frame, fps)
    assert (tc.hours, tc.minutes, tc.seconds, tc.frame) == expected
