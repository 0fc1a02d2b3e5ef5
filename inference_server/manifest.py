"""A job's manifest.json: the full request, the model, how each frame was made and its sha256 — enough to
re-run the job and to prove what made each frame. Pure functions: the shot job gathers the facts."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.json_format import MessageToDict

import genfx
from genfx.colour import MODEL_SPACE, OCIO_CONFIG
from genfx.proto import genfx_pb2 as pb
from inference_server.engine.common import frame_seed
from inference_server.models import ModelInfo

SEED_DERIVATION = "inference_server.engine.common.frame_seed(job seed, frame)"
WARPING_ERROR_DEFINITION = (
    "mean over consecutive pairs of sum((I_t - warp(I_t+1))^2) over channels and non-occluded pixels"
    " / non-occluded pixels; exact flow from the camera matrices and depth, and from the motion vectors"
    " for pixels the simulation moves when the shot has motion passes"
)
METHODS = {
    "independent": "every frame made by diffusion, each from its own noise",
    "camera_only": "keyframes by diffusion; in-betweens and keyframe inits reprojected with depth + camera",
    "motion_aware": "as camera_only, but pixels the simulation moves follow their motion vectors",
}


@dataclass(frozen=True)
class ShotFacts:
    """How the shot job made the frames (what the request alone does not say)."""

    device: str
    mode: str
    passes: Sequence[str]
    strength: float
    depth_range: tuple[float, float] | None
    temporal: bool
    keyframe_step: int
    depth_source: str  # "depth passes" or the plane approximation used without them
    generation_size: tuple[int, int]
    upscale: str  # "upscale_x4+lanczos" or "lanczos"
    colorspace: str
    notes: Sequence[str] = ()
    coverage: Mapping[int, float] = field(default_factory=dict)  # in-between/keyframe reprojection cover
    loras: Sequence[Mapping[str, Any]] = ()  # as in each frame's genfx/loras header
    controlnet: Mapping[str, Any] | None = None  # as in each frame's genfx/controlnet header


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def consistency(
    value: float,
    pairs: Sequence[float],
    resolution: tuple[int, int],
    depth_source: str,
    motion: bool = False,
    method: str = "independent",
    compared: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """The warping error over the whole written shot (docs/temporal.md). ``method``: how this job made
    its frames (METHODS); ``compared``: the same keyframes with in-betweens re-made by each method at
    the metric's size (jobs with in-betweens and motion passes)."""
    side_by_side: dict[str, float | None] = {name: None for name in METHODS}
    side_by_side.update({k: _finite_or_none(v) for k, v in (compared or {}).items()})
    if method == "independent":
        side_by_side["independent"] = _finite_or_none(value)
    return {
        "metric": "warping_error",
        "value": _finite_or_none(value),
        "per_pair": [_finite_or_none(p) for p in pairs],
        "definition": WARPING_ERROR_DEFINITION,
        "resolution": list(resolution),
        "space": "written RGB (premultiplied), resized in linear light, in display sRGB encoding, [0, 1]",
        "depth": depth_source,
        "flow": "camera + depth + motion vectors (moving pixels)" if motion else "camera + depth",
        "method": method,
        "methods": {
            "values": side_by_side,
            "definitions": METHODS,
            "how": "independent: the job's own value when it diffused every frame (else null: run it with"
            " keyframe_step 1 to compare); camera_only / motion_aware: this job's keyframes with the"
            " in-betweens re-made by each method at the metric's size (needs motion passes)",
        },
    }


def build(
    job_id: str,
    request: pb.GenerateRequest,
    model: ModelInfo,
    facts: ShotFacts,
    frames: Iterable[pb.FrameInfo],
    temporal_consistency: Mapping[str, Any],
) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "genfx_version": genfx.__version__,
        "request": MessageToDict(request, preserving_proto_field_name=True),
        "model": {"name": model.name, "hash": model.hash, "path": str(model.path)},
        "device": facts.device,
        "seed_derivation": SEED_DERIVATION,
        "mode": facts.mode,
        "passes": sorted(facts.passes),
        "loras": [dict(lora) for lora in facts.loras],
        "controlnet": dict(facts.controlnet) if facts.controlnet else None,
        "conditioning": {
            "strength": facts.strength,
            "depth_range": list(facts.depth_range) if facts.depth_range else None,
            "depth_normalisation": "inverse depth over the shot's near/far, to [-1, 1]"
            if facts.depth_range
            else None,
        },
        "temporal": {
            "enabled": facts.temporal,
            "keyframe_step": facts.keyframe_step,
            "depth": facts.depth_source,
        },
        "generation_size": list(facts.generation_size),
        "upscale": facts.upscale,
        "colour": {"ocio_config": OCIO_CONFIG, "model_space": MODEL_SPACE, "output": facts.colorspace},
        "notes": list(facts.notes),
        "temporal_consistency": dict(temporal_consistency),
        "frames": [
            {
                "frame": f.frame,
                "file": f.file_name,
                "sha256": f.sha256,
                "size_bytes": f.size_bytes,
                "keyframe": f.keyframe,
                "seed": frame_seed(request.seed, f.frame),
                **({"coverage": facts.coverage[f.frame]} if f.frame in facts.coverage else {}),
            }
            for f in sorted(frames, key=lambda f: f.frame)
        ],
    }


def encode(manifest: Mapping[str, Any]) -> bytes:
    return json.dumps(manifest, indent=2, sort_keys=True).encode()
