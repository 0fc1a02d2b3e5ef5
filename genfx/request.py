"""The one builder of genfx.v1.GenerateRequest, covering the whole contract; every client (CLI, Houdini,
scripts) goes through it. Proto messages only: no channel, no server.

Fields left at 0 / empty / None are left unset, so the server fills in its own defaults (published in
ServerInfo.defaults; `genfx info` prints them). No client keeps a copy of them.

The After Effects panel cannot call Python: ae_bridge/shared/request.js ports `output_name` rule for
rule, and tests/golden/output_names.json holds both to the same answers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import TypeVar

from genfx.camera import CameraTrack
from genfx.proto import genfx_pb2 as pb
from genfx.wire import camera_track_to_proto, fraction_to_proto

E = TypeVar("E")

# Option names as the CLI and the DCC clients spell them; "" = unset (the proto's default).
COMPRESSIONS = {
    "": pb.COMPRESSION_UNSPECIFIED,
    "zip": pb.COMPRESSION_ZIP,
    "piz": pb.COMPRESSION_PIZ,
    "dwaa": pb.COMPRESSION_DWAA,
    "none": pb.COMPRESSION_NONE,
}
COLORSPACES = {
    "": pb.COLOR_SPACE_UNSPECIFIED,
    "linear_rec709": pb.COLOR_SPACE_LINEAR_REC709,
    "acescg": pb.COLOR_SPACE_ACESCG,
}
TEMPORAL_MODES = {
    "": pb.TEMPORAL_MODE_UNSPECIFIED,
    "none": pb.TEMPORAL_MODE_NONE,
    "reproject": pb.TEMPORAL_MODE_REPROJECT,
}
# Conditioning pass kinds -> their FrameAssets field.
PASS_FIELDS = {
    "plate": "plate_asset_id",
    "mask": "mask_asset_id",
    "depth": "depth_asset_id",
    "motion": "motion_asset_id",
}

MAX_NAME_CHARS = 64  # Output.name
MAX_CLIENT_TAG_CHARS = 256  # GenerateRequest.client_tag

_LEADING = re.compile(r"^[^A-Za-z0-9_]+")  # the server wants a letter, digit or '_' first
_TRAILING = re.compile(r"[^A-Za-z0-9_-]+\Z")  # ... and refuses a name ending with '.'
_INSIDE = re.compile(r"[^A-Za-z0-9_.-]+")
_DOTS = re.compile(r"\.{2,}")
_TRAILING_DOTS = re.compile(r"\.+\Z")


def output_name(text: str) -> str:
    """Free text (a node, comp or shot name) -> an Output.name the server accepts, or "" (= the
    server's default name) when nothing usable is left. A name the server accepts comes back unchanged.

    The rule, in order: drop everything before the first letter, digit or '_' and after the last
    letter, digit, '_' or '-'; each run of other characters inside becomes one '_'; each run of dots
    one '.'; cut to 64 characters, then drop dots left at the end. ASCII only, so Python and ES3
    JavaScript (which count characters differently beyond the BMP) agree.
    """
    name = _TRAILING.sub("", _LEADING.sub("", text))
    name = _DOTS.sub(".", _INSIDE.sub("_", name))
    return _TRAILING_DOTS.sub("", name[:MAX_NAME_CHARS])


def frame_assets(passes: Mapping[int, Mapping[str, str]]) -> list[pb.FrameAssets]:
    """{frame: {"plate" | "mask" | "depth" | "motion": asset id}} -> FrameAssets, in frame order."""
    out = []
    for frame, kinds in sorted(passes.items()):
        entry = pb.FrameAssets(frame=frame)
        for kind, asset_id in kinds.items():
            if kind not in PASS_FIELDS:
                raise ValueError(f"frame {frame}: unknown pass {kind!r} (known: {', '.join(PASS_FIELDS)})")
            setattr(entry, PASS_FIELDS[kind], asset_id)
        out.append(entry)
    return out


def parse_lora(text: str) -> tuple[str, float]:
    """'NAME' or 'NAME=WEIGHT' (a CLI or DCC field) -> (name, weight); weight 0 = the server's 1.0."""
    name, sep, weight = text.partition("=")
    name = name.strip()
    if not name:
        raise ValueError(f"LoRA: expected NAME or NAME=WEIGHT, got {text!r}")
    if not sep:
        return name, 0.0
    try:
        return name, float(weight)
    except ValueError:
        raise ValueError(f"LoRA {name!r}: weight {weight!r} is not a number") from None


def _choice(table: Mapping[str, E], value: str, field: str) -> E:
    if value not in table:
        known = ", ".join(k for k in table if k)
        raise ValueError(f"{field}: must be one of {known} (got {value!r})")
    return table[value]


def build_request(
    *,
    prompt: str,
    camera: CameraTrack,
    frame_start: int,
    frame_end: int,
    fps: Fraction | None = None,
    keyframe_step: int = 0,
    negative_prompt: str = "",
    seed: int | None = None,
    steps: int = 0,
    guidance: float | None = None,
    model: str = "",
    loras: Mapping[str, float] | Iterable[tuple[str, float]] = (),
    width: int = 0,
    height: int = 0,
    compression: str = "",
    colorspace: str = "",
    name: str = "",
    passes: Mapping[int, Mapping[str, str]] | None = None,
    strength: float = 0.0,
    plane_distance: float = 0.0,
    controlnet_scale: float | None = None,
    temporal: str = "",
    priority: int = 0,
    client_tag: str = "",
) -> pb.GenerateRequest:
    """A GenerateRequest; 0 / "" / None leaves a field to the server (its default, the camera's size,
    its default model, a seed it picks). ``name`` goes through output_name(); ``passes`` maps a frame to
    its {"plate" | "mask" | "depth" | "motion": asset id}; ``loras`` are (name, weight) pairs or a
    mapping (weight 0 = 1.0; parse_lora reads "NAME=WEIGHT"); ``controlnet_scale`` is the sim mode's
    ControlNet strength (None = the server's default, ServerInfo.defaults)."""
    pairs = loras.items() if isinstance(loras, Mapping) else loras
    req = pb.GenerateRequest(
        prompt=prompt,
        negative_prompt=negative_prompt,
        steps=steps,
        model=model,
        loras=[pb.LoraRef(name=lora, weight=weight) for lora, weight in pairs],
        shot=pb.Shot(frame_start=frame_start, frame_end=frame_end, keyframe_step=keyframe_step),
        output=pb.Output(
            width=width,
            height=height,
            name=output_name(name),
            compression=_choice(COMPRESSIONS, compression, "compression"),
            colorspace=_choice(COLORSPACES, colorspace, "colorspace"),
        ),
        camera=camera_track_to_proto(camera),
        temporal=_choice(TEMPORAL_MODES, temporal, "temporal"),
        priority=priority,
        client_tag=client_tag[:MAX_CLIENT_TAG_CHARS],
    )
    if fps is not None:
        req.shot.fps.CopyFrom(fraction_to_proto(fps))
    if seed is not None:
        req.seed = seed
    if guidance is not None:
        req.guidance = guidance
    if passes or strength or plane_distance:
        req.conditioning.frames.extend(frame_assets(passes or {}))
        req.conditioning.strength = strength
        req.conditioning.plane_distance = plane_distance
    if controlnet_scale is not None:
        req.conditioning.controlnet_conditioning_scale = controlnet_scale
    return req
