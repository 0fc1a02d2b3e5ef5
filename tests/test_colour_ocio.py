"""Colour through OpenColorIO's built-in config: known values, round trips, EXR chromaticities."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from genfx import exr
from genfx.colour import (
    ACESCG_CHROMATICITIES,
    REC709_CHROMATICITIES,
    colorspace_for_chromaticities,
    model_to_scene,
    scene_to_model,
    srgb_to_linear,
)
from inference_server.frame_output import encode_rgba, written_display

from .synthetic import camera


def test_known_values_match_the_docs() -> None:  # docs/exr.md, "Colour"
    grey = model_to_scene(np.full((1, 3), 0.5, np.float32), "linear_rec709")
    assert grey == pytest.approx(0.21404, abs=1e-4)
    red = model_to_scene(np.array([[1.0, 0.0, 0.0]], np.float32), "acescg")
    assert red[0] == pytest.approx([0.6131, 0.0702, 0.0206], abs=2e-4)
    ramp = np.linspace(0, 1, 101, dtype=np.float32)[:, None].repeat(3, 1)
    assert np.abs(model_to_scene(ramp, "linear_rec709") - srgb_to_linear(ramp)).max() < 1e-4


@pytest.mark.parametrize("space", ["linear_rec709", "acescg"])
def test_plate_to_model_and_back_round_trips(space: str) -> None:
    display = np.random.default_rng(0).random((16, 16, 3), dtype=np.float32)
    scene = model_to_scene(display, space)
    assert np.abs(scene_to_model(scene, space) - display).max() < 1e-4
    # Through the written EXR pixels (half floats, premultiplied by a mask) and back.
    alpha = np.linspace(0.2, 1.0, 256, dtype=np.float32).reshape(16, 16)
    back = written_display(encode_rgba(display, alpha, space), space)
    assert np.abs(back - display).max() < 5e-3


@pytest.mark.parametrize(
    ("space", "chroma"), [("linear_rec709", REC709_CHROMATICITIES), ("acescg", ACESCG_CHROMATICITIES)]
)
def test_exr_chromaticities_match_the_colour_space(
    space: str, chroma: tuple[float, ...], tmp_path: Path
) -> None:
    meta = exr.FrameMetadata(camera(1001, 0.0), 8, 4, 1001, Fraction(24), colorspace=space)
    rgba = encode_rgba(np.full((4, 8, 3), 0.5, np.float32), None, space)
    exr.write_frame(tmp_path / "f.exr", rgba, meta)
    header = exr.read_header(tmp_path / "f.exr")
    assert header["chromaticities"] == pytest.approx(chroma, abs=1e-6)
    assert header["genfx/colorspace"] == space
    assert colorspace_for_chromaticities(header["chromaticities"]) == space
    assert colorspace_for_chromaticities(None) == "linear_rec709"
