"""What one Generate click sends: a plain-data JobSpec read from the node on Houdini's main thread, and
the GenerateRequest built from it on the worker thread. Nothing here imports ``hou``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from genfx.camera import CameraTrack
    from genfx.proto import genfx_pb2 as pb

# Rates that Houdini shows as 23.976, 29.97, ... are the NTSC n*1000/1001 rates.
_NTSC_BASES = (24, 30, 48, 60, 120)


def fps_fraction(fps: float) -> Fraction:
    """hou.fps() (a float) -> the exact rate: 23.976 -> 24000/1001, 24.0 -> 24, 12.5 -> 25/2."""
    for base in _NTSC_BASES:
        ntsc = Fraction(base * 1000, 1001)
        if abs(fps - float(ntsc)) < 5e-4:
            return ntsc
    return Fraction(fps).limit_denominator(1000)


@dataclass(frozen=True)
class FramePasses:
    """The conditioning files of one frame: (pass kind: "plate" | "mask" | "depth" | "motion", local file
    path) pairs."""

    frame: int
    files: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class JobSpec:
    node_id: int  # hou.Node.sessionId(): survives renames; hou.nodeBySessionId finds the node again
    node_path: str
    server: str  # "" = GENFX_SERVER or 127.0.0.1:50051 (the SDK's default)
    token: str  # "" = GENFX_TOKEN
    camera_path: str
    track: CameraTrack
    frame_start: int
    frame_end: int
    fps: Fraction
    keyframe_step: int  # 0 = the server's default (as for steps, guidance and strength)
    prompt: str
    negative_prompt: str
    model: str
    loras: tuple[tuple[str, float], ...]  # (name, weight) per LoRA row; weight 0 = the server's 1.0
    controlnet_scale: float  # the sim mode's ControlNet strength; 0 = the server's default
    seed: int
    steps: int
    guidance: float
    width: int
    height: int
    passes: tuple[FramePasses, ...]
    strength: float
    out_dir: Path
    name: str  # the node's name: the SDK makes it the frames' file name prefix (Output.name)

    @property
    def pass_files(self) -> list[str]:
        """Distinct local files to upload, in frame order."""
        seen: dict[str, None] = {}
        for fp in self.passes:
            for _, path in fp.files:
                seen.setdefault(path, None)
        return list(seen)


def build_request(spec: JobSpec, asset_ids: Mapping[str, str]) -> pb.GenerateRequest:
    """The GenerateRequest for ``spec`` (through the SDK's builder); ``asset_ids`` maps each pass file to
    its uploaded asset id."""
    from genfx.request import build_request as sdk_build_request

    passes = {fp.frame: {kind: asset_ids[path] for kind, path in fp.files} for fp in spec.passes}
    return sdk_build_request(
        prompt=spec.prompt,
        negative_prompt=spec.negative_prompt,
        camera=spec.track,
        frame_start=spec.frame_start,
        frame_end=spec.frame_end,
        fps=spec.fps,
        keyframe_step=spec.keyframe_step,
        seed=spec.seed,
        steps=spec.steps,
        # Guidance 0 on the node means the server's default; diffusers treats any guidance <= 1 alike
        # (no classifier-free guidance), so 1 still turns it off.
        guidance=spec.guidance or None,
        model=spec.model,
        loras=spec.loras,
        controlnet_scale=spec.controlnet_scale or None,
        width=spec.width,
        height=spec.height,
        name=spec.name,
        passes=passes,
        strength=spec.strength if passes else 0.0,  # Plate Strength: only with passes, as labelled
        client_tag=f"houdini:{spec.node_path}",
    )
