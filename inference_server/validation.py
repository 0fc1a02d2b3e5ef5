"""Request validation: every field checked, defaults filled in, errors that name the field and the limit.

Returns a normalised copy of the request; the job store keeps that copy, so a job re-run later uses
exactly the values that made its frames (seed included).
"""

from __future__ import annotations

import math
import re
import secrets
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import grpc

from genfx.camera import CameraError, validate_sample
from genfx.colour import ocio_available
from genfx.proto import genfx_pb2 as pb
from genfx.wire import camera_track_from_proto
from inference_server import defaults
from inference_server.engine import modes
from inference_server.engine.passes import PASSES, PassError, PassInfo, probe
from inference_server.storage import ASSET_ID, AssetStore

MAX_GUIDANCE = 30.0
# fullmatch, not match + "$": "$" also matches before a trailing newline.
NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
MAX_CLIENT_TAG = 256
ASPECT_TOLERANCE = 0.01  # passes may be proxies of the output size, but never a different framing
INT32_MAX = 2**31 - 1  # the EXR framesPerSecond attribute is a rational of 32-bit integers
MAX_FPS = 1000
# Characters that show nothing on their own: a prompt needs at least one other.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp", "Mn", "Me"})
_ALLOWED_CONTROLS = frozenset("\t\n\r")


@dataclass(frozen=True)
class Limits:
    max_frames_per_job: int = 1000
    max_width: int = 4096
    max_height: int = 2160
    max_steps: int = 150
    max_queued_jobs: int = 200
    max_upload_bytes: int = 512 * 1024 * 1024
    max_prompt_chars: int = 2000
    # A pass decodes to float32 RGBA in memory: twice the largest output (6K plates for a 4K output)
    # bounds what one read costs, whatever size a small compressed file declares.
    max_pass_pixels: int = 2 * 4096 * 2160
    # A request as stored (unknown fields dropped, samples outside the shot removed). 1000 frames with a
    # camera and three passes each take about 0.5 MiB.
    max_request_bytes: int = 2 << 20
    max_lora_weight: float = 2.0
    max_loras_per_job: int = 8
    max_controlnet_conditioning_scale: float = 2.0

    def to_proto(self) -> pb.Limits:
        return pb.Limits(
            max_frames_per_job=self.max_frames_per_job,
            max_width=self.max_width,
            max_height=self.max_height,
            max_steps=self.max_steps,
            max_queued_jobs=self.max_queued_jobs,
            max_upload_bytes=self.max_upload_bytes,
            max_prompt_chars=self.max_prompt_chars,
            max_pass_pixels=self.max_pass_pixels,
            max_request_bytes=self.max_request_bytes,
            max_lora_weight=self.max_lora_weight,
            max_loras_per_job=self.max_loras_per_job,
            max_controlnet_conditioning_scale=self.max_controlnet_conditioning_scale,
        )


class RequestError(Exception):
    """A request the server refuses; carries the gRPC status code to answer with."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def valid_output_name(name: str) -> bool:
    """Output.name's rule (the proto documents it): a file-name prefix that cannot leave the job folder."""
    return bool(NAME_PATTERN.fullmatch(name)) and ".." not in name and not name.endswith(".")


def invalid(message: str) -> RequestError:
    return RequestError(grpc.StatusCode.INVALID_ARGUMENT, message)


def _finite(value: float, field: str) -> float:
    if not math.isfinite(value):
        raise invalid(f"{field}: must be a finite number (got {value})")
    return value


def _check_text(text: str, field: str, limit: int) -> None:
    """No control characters (tabs and line breaks aside): they end up in EXR headers and logs."""
    if len(text) > limit:
        raise invalid(f"{field}: {len(text)} characters exceeds the limit of {limit}")
    for i, ch in enumerate(text):
        if unicodedata.category(ch) == "Cc" and ch not in _ALLOWED_CONTROLS:
            raise invalid(f"{field}: control character U+{ord(ch):04X} at position {i}")


def _visible(text: str) -> bool:
    return any(unicodedata.category(ch) not in _INVISIBLE_CATEGORIES for ch in text)


def check_pass_pixels(width: int, height: int, limits: Limits, where: str) -> None:
    """A pass (or an upload) may not declare more pixels than Limits.max_pass_pixels: a few hundred
    compressed bytes can declare gigabytes of pixels."""
    if width * height > limits.max_pass_pixels:
        raise invalid(
            f"{where}: {width}x{height} ({width * height} pixels) exceeds the limit of"
            f" {limits.max_pass_pixels} pixels (Limits.max_pass_pixels)"
        )


def validate_generate(
    request: pb.GenerateRequest,
    limits: Limits,
    models: Sequence[str],
    default_model: str,
    capabilities: dict[str, tuple[str, ...]],
    assets: AssetStore | None = None,
    *,
    loras: Mapping[str, Sequence[str]] | None = None,
    lora_modes: Mapping[str, Sequence[str]] | None = None,
) -> pb.GenerateRequest:
    """The normalised request, or RequestError. With ``assets`` every pass is checked on disk too
    (exists, readable header, consistent size): bad assets fail here, not frames later in a worker.
    ``loras``: LoRA name -> the models it applies to; ``lora_modes``: model -> the modes that run its
    own UNet (where LoRAs apply)."""
    req = pb.GenerateRequest()
    req.CopyFrom(request)
    # Fields this server does not know would be stored and echoed by every GetJob/ListJobs.
    req.DiscardUnknownFields()

    _check_text(req.prompt, "prompt", limits.max_prompt_chars)
    if not _visible(req.prompt):
        raise invalid("prompt: must contain at least one visible character")
    _check_text(req.negative_prompt, "negative_prompt", limits.max_prompt_chars)

    if not req.HasField("seed"):
        req.seed = secrets.randbits(63)
    if req.steps == 0:
        req.steps = defaults.STEPS
    if not 1 <= req.steps <= limits.max_steps:
        raise invalid(f"steps: must be in 1..{limits.max_steps} (got {req.steps})")
    if not req.HasField("guidance"):
        req.guidance = defaults.GUIDANCE
    _finite(req.guidance, "guidance")
    if not 0.0 <= req.guidance <= MAX_GUIDANCE:
        raise invalid(f"guidance: must be in [0, {MAX_GUIDANCE:g}] (got {req.guidance:g})")

    if not req.model:
        req.model = default_model
    if req.model not in models:
        raise invalid(f"model: unknown model {req.model!r}; this server has: {', '.join(models)}")
    _validate_loras(req, limits, loras or {})

    _validate_shot(req.shot, limits)
    frames = req.shot.frame_end - req.shot.frame_start + 1
    _validate_camera_and_output(req, limits, frames)
    _validate_conditioning(req, limits)
    _validate_modes(req, capabilities.get(req.model, ()), (lora_modes or {}).get(req.model, ()))
    if assets is not None:
        _validate_assets(req, assets, limits)

    if not -100 <= req.priority <= 100:
        raise invalid(f"priority: must be in -100..100 (got {req.priority})")
    _check_text(req.client_tag, "client_tag", MAX_CLIENT_TAG)
    size = req.ByteSize()
    if size > limits.max_request_bytes:
        raise invalid(
            f"request: {size} bytes once normalised exceeds the limit of {limits.max_request_bytes} bytes"
            " (Limits.max_request_bytes)"
        )
    return req


def _validate_loras(req: pb.GenerateRequest, limits: Limits, loras: Mapping[str, Sequence[str]]) -> None:
    """Known, once each, for this model, weights in range (0 = 1.0, filled in)."""
    if len(req.loras) > limits.max_loras_per_job:
        raise invalid(
            f"loras: {len(req.loras)} LoRAs exceeds the limit of {limits.max_loras_per_job} per job"
        )
    seen: dict[str, int] = {}
    for i, lora in enumerate(req.loras):
        if lora.name not in loras:
            known = ", ".join(loras) or "no LoRAs configured"
            raise invalid(f"loras[{i}].name: unknown LoRA {lora.name[:70]!r}; this server has: {known}")
        if lora.name in seen:
            raise invalid(f"loras[{i}].name: LoRA {lora.name!r} is already in loras[{seen[lora.name]}]")
        seen[lora.name] = i
        if lora.weight == 0:
            lora.weight = 1.0
        _finite(lora.weight, f"loras[{i}].weight")
        if abs(lora.weight) > limits.max_lora_weight:
            raise invalid(
                f"loras[{i}].weight: {lora.weight:g} for LoRA {lora.name!r} is outside"
                f" [-{limits.max_lora_weight:g}, {limits.max_lora_weight:g}]"
            )
        if req.model not in loras[lora.name]:
            fits = ", ".join(loras[lora.name]) or "none of this server's models"
            raise RequestError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"loras[{i}].name: LoRA {lora.name!r} was trained for another base model than {req.model!r}"
                f" (it fits: {fits})",
            )


def _validate_shot(shot: pb.Shot, limits: Limits) -> None:
    if shot.frame_end < shot.frame_start:
        raise invalid(f"shot.frame_end: {shot.frame_end} is before shot.frame_start {shot.frame_start}")
    frames = shot.frame_end - shot.frame_start + 1
    if frames > limits.max_frames_per_job:
        raise invalid(
            f"shot: {frames} frames ({shot.frame_start}-{shot.frame_end}) exceeds the limit of "
            f"{limits.max_frames_per_job} frames per job"
        )
    if not shot.HasField("fps"):
        shot.fps.CopyFrom(pb.Rational(numerator=24, denominator=1))
    fps = shot.fps
    if not (0 < fps.numerator <= INT32_MAX and 0 < fps.denominator <= INT32_MAX):
        raise invalid(
            f"shot.fps: numerator and denominator must be in 1..{INT32_MAX} (got {fps.numerator}/"
            f"{fps.denominator})"
        )
    if fps.numerator / fps.denominator > MAX_FPS:
        raise invalid(f"shot.fps: must be at most {MAX_FPS} frames per second")
    if shot.keyframe_step < 0:
        raise invalid(f"shot.keyframe_step: must be >= 0 (got {shot.keyframe_step})")
    if shot.keyframe_step == 0:
        shot.keyframe_step = defaults.KEYFRAME_STEP


def _validate_camera_and_output(req: pb.GenerateRequest, limits: Limits, frames: int) -> None:
    cam = req.camera
    if not cam.samples:
        raise invalid("camera.samples: at least one camera sample is required")
    if cam.width < 0 or cam.height < 0:
        raise invalid(f"camera.width/height: must be >= 0 (got {cam.width}x{cam.height})")
    out = req.output
    if out.width < 0 or out.height < 0:
        raise invalid(f"output.width/height: must be >= 0 (got {out.width}x{out.height})")
    if out.width == 0:
        out.width = cam.width
    if out.height == 0:
        out.height = cam.height
    for field, value, limit in (
        ("output.width", out.width, limits.max_width),
        ("output.height", out.height, limits.max_height),
    ):
        if value <= 0:
            raise invalid(f"{field}: must be > 0 (set it, or the camera's resolution)")
        if value > limit:
            raise invalid(f"{field}: {value} exceeds the limit of {limit} pixels")
    if not out.name:
        out.name = defaults.OUTPUT_NAME
    if not valid_output_name(out.name):
        raise invalid(
            "output.name: 1-64 characters of letters, digits, '_', '-', '.', not starting with '.' or '-',"
            f" not ending with '.' and without '..' (got {out.name[:70]!r})"
        )
    if out.compression not in pb.Compression.values():
        raise invalid(f"output.compression: unknown value {out.compression}")
    if out.colorspace not in pb.ColorSpace.values():
        raise invalid(f"output.colorspace: unknown value {out.colorspace}")
    if out.colorspace == pb.COLOR_SPACE_ACESCG and not ocio_available():
        raise RequestError(
            grpc.StatusCode.FAILED_PRECONDITION,
            "output.colorspace: ACEScg output needs OpenColorIO (pip install opencolorio) on the server;"
            " use COLOR_SPACE_LINEAR_REC709",
        )

    if len(cam.samples) > 1:
        first_sample: dict[int, int] = {}
        for i, sample in enumerate(cam.samples):
            if sample.frame in first_sample:
                raise invalid(
                    f"camera.samples[{i}].frame: frame {sample.frame} already has a sample"
                    f" (camera.samples[{first_sample[sample.frame]}]); send one sample per frame"
                )
            first_sample[sample.frame] = i
        wanted = set(range(req.shot.frame_start, req.shot.frame_end + 1))
        missing = sorted(wanted - first_sample.keys())
        if missing:
            raise invalid(
                f"camera.samples: no sample for frame {missing[0]} ({len(missing)} of {frames} frames"
                " missing);"
                " send one sample (static camera) or one per frame"
            )
    for i, sample in enumerate(cam.samples):
        if len(sample.camera_to_world) != 16:
            raise invalid(
                f"camera.samples[{i}].camera_to_world: must hold 16 numbers"
                f" (got {len(sample.camera_to_world)})"
            )
    try:
        track = camera_track_from_proto(cam, out.width, out.height)
        for i, s in enumerate(track.samples):
            validate_sample(s, f"camera.samples[{i}]", resolution=(out.width, out.height))
    except CameraError as exc:
        raise invalid(str(exc)) from exc
    if len(cam.samples) > 1:
        # The proto says samples outside the shot are ignored: they are not stored either.
        kept = [s for s in cam.samples if req.shot.frame_start <= s.frame <= req.shot.frame_end]
        del cam.samples[:]
        cam.samples.extend(kept)


def is_temporal(req: pb.GenerateRequest) -> bool:
    """Keyframes carry the look over by reprojection (asked for, or implied by a keyframe step)."""
    return req.temporal == pb.TEMPORAL_MODE_REPROJECT or req.shot.keyframe_step > 1


def shot_passes(cond: pb.Conditioning) -> tuple[str, ...]:
    """The pass kinds the request carries (plate/mask/depth/motion), in PASSES order."""
    return tuple(k for k in PASSES if any(getattr(f, f"{k}_asset_id") for f in cond.frames))


def _validate_conditioning(req: pb.GenerateRequest, limits: Limits) -> None:
    cond = req.conditioning
    if cond.strength == 0:
        cond.strength = defaults.STRENGTH
    _finite(cond.strength, "conditioning.strength")
    if not 0.0 < cond.strength <= 1.0:
        raise invalid(f"conditioning.strength: must be in (0, 1] (got {cond.strength:g})")
    _finite(cond.plane_distance, "conditioning.plane_distance")
    if cond.plane_distance < 0:
        raise invalid(f"conditioning.plane_distance: must be >= 0 (got {cond.plane_distance:g})")
    if not cond.HasField("controlnet_conditioning_scale"):
        cond.controlnet_conditioning_scale = defaults.CONTROLNET_CONDITIONING_SCALE
    scale = _finite(cond.controlnet_conditioning_scale, "conditioning.controlnet_conditioning_scale")
    if not 0.0 <= scale <= limits.max_controlnet_conditioning_scale:
        raise invalid(
            f"conditioning.controlnet_conditioning_scale: must be in"
            f" [0, {limits.max_controlnet_conditioning_scale:g}] (got {scale:g})"
        )
    if not cond.frames:
        return
    start, end = req.shot.frame_start, req.shot.frame_end
    seen: dict[int, int] = {}
    for i, f in enumerate(cond.frames):
        field = f"conditioning.frames[{i}]"
        if not start <= f.frame <= end:
            raise invalid(f"{field}.frame: {f.frame} is outside the shot ({start}-{end})")
        if f.frame in seen:
            raise invalid(f"{field}.frame: frame {f.frame} already has passes in frames[{seen[f.frame]}]")
        seen[f.frame] = i
        for kind in PASSES:
            asset_id = getattr(f, f"{kind}_asset_id")
            if asset_id and not ASSET_ID.match(asset_id):
                raise invalid(
                    f"{field}.{kind}_asset_id (frame {f.frame}, {kind} pass): must be an asset id from"
                    f" UploadAsset (64 lowercase hex characters), got {asset_id[:70]!r}"
                )
    kinds = shot_passes(cond)
    if "motion" in kinds and "depth" not in kinds:
        first = next(i for i, f in enumerate(cond.frames) if f.motion_asset_id)
        raise invalid(
            f"conditioning.frames[{first}].motion_asset_id (frame {cond.frames[first].frame}, motion pass):"
            " motion vectors need depth passes too (static pixels are reprojected with depth and the camera)"
        )
    # The mode, the shot-wide depth range and reprojection are per shot: a pass is all frames or none.
    for kind in kinds:
        for frame in range(start, end + 1):
            at = seen.get(frame)
            if at is None or not getattr(cond.frames[at], f"{kind}_asset_id"):
                where = (
                    f"conditioning.frames[{at}].{kind}_asset_id" if at is not None else "conditioning.frames"
                )
                raise invalid(
                    f"{where} (frame {frame}, {kind} pass): missing; a {kind} pass given for some frames"
                    " must be given for every frame of the shot"
                )


def _validate_modes(req: pb.GenerateRequest, capabilities: Sequence[str], lora_modes: Sequence[str]) -> None:
    if req.temporal not in pb.TemporalMode.values():
        raise invalid(f"temporal: unknown value {req.temporal}")
    shot = modes.shot_mode(shot_passes(req.conditioning), capabilities)
    wanted = [shot.name]
    if is_temporal(req):
        wanted.append(modes.TEMPORAL)
    for mode in wanted:
        if mode not in capabilities:
            raise RequestError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"model {req.model!r} cannot run mode {mode!r} on this server (it supports: "
                f"{', '.join(capabilities) or 'nothing'})",
            )
    # LoRAs fit the model's own UNet: every diffusion mode the job runs must use it.
    diffused = [shot.name] + ([shot.reprojected_init] if shot.reprojected_init and is_temporal(req) else [])
    for mode in diffused:
        if req.loras and mode not in lora_modes:
            raise RequestError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"loras: model {req.model!r} runs mode {mode!r} with a companion pipeline (its own UNet),"
                " which LoRAs trained on the model's UNet do not fit; LoRAs work in:"
                f" {', '.join(lora_modes) or 'no mode of this model'}",
            )


def _validate_assets(req: pb.GenerateRequest, assets: AssetStore, limits: Limits) -> None:
    """Every pass exists, has a readable header and the shot's size (header reads only: cheap)."""
    reference: tuple[PassInfo, str] | None = None
    out_aspect = req.output.width / req.output.height
    for i, f in enumerate(req.conditioning.frames):
        for kind in PASSES:
            asset_id = getattr(f, f"{kind}_asset_id")
            if not asset_id:
                continue
            field = f"conditioning.frames[{i}].{kind}_asset_id"
            try:
                info = probe(assets.path(asset_id), f.frame, kind, field)
            except PassError as exc:
                raise invalid(str(exc)) from exc
            where = f"{field} (frame {f.frame}, {kind} pass)"
            check_pass_pixels(info.width, info.height, limits, where)
            if reference is None:
                aspect = info.width / info.height
                if abs(aspect / out_aspect - 1.0) > ASPECT_TOLERANCE:
                    raise invalid(
                        f"{where}: {info.width}x{info.height} does not have the output's aspect ratio"
                        f" ({req.output.width}x{req.output.height})"
                    )
                reference = (info, f"frame {f.frame} {kind} pass")
            elif (info.width, info.height) != (reference[0].width, reference[0].height):
                raise invalid(
                    f"{where}: {info.width}x{info.height} does not match the shot's passes"
                    f" ({reference[0].width}x{reference[0].height}, from the {reference[1]})"
                )
