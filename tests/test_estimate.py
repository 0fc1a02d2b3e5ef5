"""EstimateJob's arithmetic (in process, no model loaded; well under a second): the generation size
and upscale path the shot renderer will use, keyframes and steps from the frame plan, and times from
the server's recent per-step medians (scaled by pixel count from the nearest measured size)."""

from __future__ import annotations

from pathlib import Path

import pytest

from genfx.proto import genfx_pb2 as pb
from inference_server.engine.mode import StageTime
from inference_server.engine.shot_renderer import output_path
from inference_server.estimate import estimate
from inference_server.models import ModelInfo
from inference_server.step_times import StepTimes

MODEL = ModelInfo("sd", "sd2", Path("."), 768, 768, ("txt2img", "img2img", "temporal", "upscale_x4"), "h")


def _request(
    width: int, height: int, frames: int, steps: int = 20, keyframe_step: int = 1
) -> pb.GenerateRequest:
    req = pb.GenerateRequest(model="sd", steps=steps)
    req.output.width, req.output.height = width, height
    req.shot.frame_start, req.shot.frame_end, req.shot.keyframe_step = 1001, 1000 + frames, keyframe_step
    return req


def test_a_4k_shot_says_where_its_time_goes() -> None:
    times = StepTimes()
    times.record("sd", StageTime("diffusion", (768, 432), 20, 10.0))  # 0.5 s/step
    times.record("sd", StageTime("upscale_x4", (768, 432), 20, 40.0))  # 2 s/step over every tile
    est = estimate(_request(3840, 2160, 10), MODEL, times)
    assert (est.generation_width, est.generation_height) == (768, 432)
    assert est.upscale == "upscale_x4+lanczos" == output_path(3840, 2160, 768, 768, MODEL.capabilities).name
    assert (est.frames, est.keyframes, est.diffusion_steps, est.upscale_steps) == (10, 10, 200, 200)
    assert est.estimated_seconds == pytest.approx(200 * 0.5 + 200 * 2.0)
    assert "median of the last 1 keyframes at 768x432" in est.basis


def test_temporal_keyframes_run_strength_times_steps_and_in_betweens_cost_nothing() -> None:
    req = _request(1024, 576, 9, steps=20, keyframe_step=4)
    req.temporal = pb.TEMPORAL_MODE_REPROJECT
    req.conditioning.strength = 0.5
    times = StepTimes()
    times.record("sd", StageTime("diffusion", (512, 288), 10, 1.0))  # measured at a quarter of the area
    est = estimate(req, MODEL, times)
    assert est.upscale == "lanczos" and est.upscale_steps == 0  # 1024 is not twice 768
    assert est.keyframes == 3  # 1001, 1005, 1009; the rest are reprojected
    assert est.diffusion_steps == 20 + 10 + 10  # the first from noise, then carried at strength 0.5
    assert est.diffusion_seconds_per_step == pytest.approx(0.1 * (768 * 432) / (512 * 288))
    assert "scaled by pixel count from 1 keyframes at 512x288" in est.basis


def test_no_estimate_until_the_server_has_measured_a_step() -> None:
    est = estimate(_request(3840, 2160, 2), MODEL, StepTimes())
    assert est.estimated_seconds == 0 and est.diffusion_seconds_per_step == 0
    assert "diffusion: not measured yet" in est.basis and "upscale_x4: not measured yet" in est.basis
