"""What a (validated) request will cost on this server, before it runs: the generation size, the upscale
path, the keyframes and denoising steps, and a time from the server's recent per-step times.

The estimate counts the critical path: each keyframe's diffusion and upscale. In-betweens (reprojected)
and the frame writes run beside it on the frame writer's threads and are not counted.
"""

from __future__ import annotations

from genfx.proto import genfx_pb2 as pb
from inference_server import defaults
from inference_server.engine import modes
from inference_server.engine.common import steps_run
from inference_server.engine.shot_renderer import output_path
from inference_server.engine.temporal import plan_frames
from inference_server.models import ModelInfo
from inference_server.step_times import PerStep, StepTimes
from inference_server.validation import is_temporal, shot_passes

DIFFUSION = "diffusion"


def estimate(req: pb.GenerateRequest, model: ModelInfo, times: StepTimes) -> pb.JobEstimate:
    out = output_path(
        req.output.width, req.output.height, model.native_width, model.native_height, model.capabilities
    )
    frames = list(range(req.shot.frame_start, req.shot.frame_end + 1))
    temporal = is_temporal(req)
    plan = [p for p in plan_frames(frames, max(1, req.shot.keyframe_step) if temporal else 1) if p.keyframe]
    plates = {f.frame for f in req.conditioning.frames if f.plate_asset_id}
    # How far each keyframe is noised (engine/shot_renderer.py, the mode files): a keyframe carried over
    # from the previous one runs strength x steps, so does one over a plate (not in inpaint mode).
    plate_strength = modes.shot_mode(shot_passes(req.conditioning), model.capabilities).name != "inpaint"
    strength = req.conditioning.strength or defaults.STRENGTH
    diffusion_steps = sum(
        steps_run(
            req.steps,
            strength
            if (temporal and p.prev_key is not None) or (p.frame in plates and plate_strength)
            else 1.0,
        )
        for p in plan
    )
    upscale_steps = req.steps * len(plan) if out.upscale_x4 else 0

    diffusion = times.per_step(req.model, DIFFUSION, out.gen_size)
    upscale = times.per_step(req.model, modes.UPSCALE_X4, out.gen_size) if out.upscale_x4 else None
    known = diffusion is not None and (upscale is not None or not out.upscale_x4)
    seconds = 0.0
    if known:
        assert diffusion is not None
        seconds = diffusion_steps * diffusion.seconds + (upscale_steps * upscale.seconds if upscale else 0.0)
    return pb.JobEstimate(
        generation_width=out.gen_size[0],
        generation_height=out.gen_size[1],
        upscale=out.name,
        frames=len(frames),
        keyframes=len(plan),
        diffusion_steps=diffusion_steps,
        upscale_steps=upscale_steps,
        diffusion_seconds_per_step=diffusion.seconds if diffusion else 0.0,
        upscale_seconds_per_step=upscale.seconds if upscale else 0.0,
        estimated_seconds=seconds,
        basis=_basis(req.model, out.gen_size, diffusion, upscale, out.upscale_x4),
    )


def _basis(
    model: str, size: tuple[int, int], diffusion: PerStep | None, upscale: PerStep | None, x4: bool
) -> str:
    parts = []
    for what, per in ((DIFFUSION, diffusion), *(((modes.UPSCALE_X4, upscale),) if x4 else ())):
        if per is None:
            parts.append(f"{what}: not measured yet on this server for model {model!r}")
        elif per.measured_at == size:
            parts.append(f"{what}: median of the last {per.samples} keyframes at {size[0]}x{size[1]}")
        else:
            w, h = per.measured_at
            parts.append(f"{what}: scaled by pixel count from {per.samples} keyframes at {w}x{h}")
    return "; ".join(parts)
