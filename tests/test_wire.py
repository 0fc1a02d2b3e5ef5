"""Dataclass <-> protobuf conversions and the proto's "0 means default" rules."""

from __future__ import annotations

from fractions import Fraction

import pytest

from genfx.camera import CameraSample, CameraTrack
from genfx.proto import genfx_pb2
from genfx.wire import (
    camera_track_from_proto,
    camera_track_to_proto,
    fraction_from_proto,
    fraction_to_proto,
)

M = tuple(float(v) for v in range(12)) + (0.0, 0.0, 0.0, 1.0)


def test_fraction_round_trip_and_defaults() -> None:
    msg = fraction_to_proto(Fraction(24000, 1001))
    assert (msg.numerator, msg.denominator) == (24000, 1001)
    assert fraction_from_proto(msg) == Fraction(24000, 1001)
    assert fraction_from_proto(genfx_pb2.Rational()) == 24  # unset -> 24 fps
    assert fraction_from_proto(None, default=Fraction(25)) == 25
    assert fraction_to_proto(Fraction(48, 2)).denominator == 1  # normalised
    with pytest.raises(ValueError, match=r"shot\.fps\.denominator: must be > 0"):
        fraction_from_proto(genfx_pb2.Rational(numerator=24, denominator=0), field="shot.fps")


def test_camera_track_round_trip() -> None:
    samples = (
        CameraSample(1001, M, 35.0, 36.0, 20.25, 1.0, 0.5, 900.0),
        CameraSample(1002, M, 50.0, 24.892, 0.0, 2.0, 0.01, 1e5),
    )
    track = CameraTrack(width=2048, height=858, samples=samples)
    msg = camera_track_to_proto(track)
    wire = genfx_pb2.CameraTrack.FromString(msg.SerializeToString())
    assert camera_track_from_proto(wire, 1, 1) == track


def test_zero_means_default() -> None:
    msg = genfx_pb2.CameraTrack(
        samples=[
            genfx_pb2.CameraSample(frame=7, camera_to_world=M, focal_length_mm=35, horizontal_aperture_mm=36)
        ]
    )
    track = camera_track_from_proto(msg, 1920, 1080)
    assert (track.width, track.height) == (1920, 1080)
    s = track.samples[0]
    assert (s.vertical_aperture_mm, s.pixel_aspect, s.near_clip, s.far_clip) == (0.0, 1.0, 0.1, 10000.0)
    assert s.vertical_aperture(track.width, track.height) == pytest.approx(20.25)  # derived
    assert s.camera_to_world == M and s.frame == 7
