"""Dataclasses <-> genfx.v1 protobuf messages, applying the proto's "0 means default" rules once."""

from __future__ import annotations

from fractions import Fraction

from genfx.camera import CameraSample, CameraTrack
from genfx.proto import genfx_pb2

# Proto defaults for zero-valued fields (see genfx.proto CameraSample).
DEFAULT_PIXEL_ASPECT = 1.0
DEFAULT_NEAR_CLIP = 0.1
DEFAULT_FAR_CLIP = 10000.0


def fraction_to_proto(value: Fraction) -> genfx_pb2.Rational:
    value = Fraction(value)  # normalises, and accepts ints
    return genfx_pb2.Rational(numerator=value.numerator, denominator=value.denominator)


def fraction_from_proto(
    msg: genfx_pb2.Rational | None, default: Fraction = Fraction(24), field: str = "fps"
) -> Fraction:
    """An unset Rational (0/0) is ``default``; a zero or negative denominator is an error naming ``field``."""
    if msg is None or (msg.numerator == 0 and msg.denominator == 0):
        return default
    if msg.denominator <= 0:
        raise ValueError(f"{field}.denominator: must be > 0 (got {msg.denominator})")
    return Fraction(msg.numerator, msg.denominator)


def camera_sample_to_proto(s: CameraSample) -> genfx_pb2.CameraSample:
    return genfx_pb2.CameraSample(
        frame=s.frame,
        camera_to_world=list(s.camera_to_world),
        focal_length_mm=s.focal_length_mm,
        horizontal_aperture_mm=s.horizontal_aperture_mm,
        vertical_aperture_mm=s.vertical_aperture_mm,
        pixel_aspect=s.pixel_aspect,
        near_clip=s.near_clip,
        far_clip=s.far_clip,
    )


def camera_sample_from_proto(msg: genfx_pb2.CameraSample) -> CameraSample:
    """Zero pixel aspect / near / far take the proto defaults; zero vertical aperture stays 0 (derived)."""
    return CameraSample(
        frame=msg.frame,
        camera_to_world=tuple(msg.camera_to_world),
        focal_length_mm=msg.focal_length_mm,
        horizontal_aperture_mm=msg.horizontal_aperture_mm,
        vertical_aperture_mm=msg.vertical_aperture_mm,
        pixel_aspect=msg.pixel_aspect or DEFAULT_PIXEL_ASPECT,
        near_clip=msg.near_clip or DEFAULT_NEAR_CLIP,
        far_clip=msg.far_clip or DEFAULT_FAR_CLIP,
    )


def camera_track_to_proto(track: CameraTrack) -> genfx_pb2.CameraTrack:
    return genfx_pb2.CameraTrack(
        samples=[camera_sample_to_proto(s) for s in track.samples],
        width=track.width,
        height=track.height,
    )


def camera_track_from_proto(
    msg: genfx_pb2.CameraTrack, default_width: int, default_height: int
) -> CameraTrack:
    """Width/height 0 = the output size given as defaults. Validation is camera.validate_track's job."""
    return CameraTrack(
        width=msg.width or default_width,
        height=msg.height or default_height,
        samples=tuple(camera_sample_from_proto(s) for s in msg.samples),
    )
