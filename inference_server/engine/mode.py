"""What a generation mode is: one object per mode file, read by capabilities, validation, the model
loader and the shot renderer (engine/modes.py collects them). No torch here: validation imports it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
StepFn = Callable[[int, int], None]


@dataclass(frozen=True)
class ModelFacts:
    """What a model folder offers: its main UNet's input channels, its companion pipelines and whether a
    sim-pass ControlNet is configured for it."""

    main_channels: int
    variants: frozenset[str]
    sim_controlnet: bool = False


@dataclass(frozen=True)
class PipelineSpec:
    """How to load a mode's diffusers pipeline.

    ``variant``: the companion folder (a key of genfx.json's "variants") holding its weights, when the
    mode has one; ``variant_channels``: the UNet input channels that folder must have. Without the
    variant folder the pipeline shares the model's main components (``from_pipe``), or is the main
    pipeline itself (``cls`` = StableDiffusionPipeline). ``controlnet``: the pipeline also takes the
    model's configured sim ControlNet (a second component, loaded beside the shared ones).
    """

    cls: str
    variant: str = ""
    variant_channels: int = 0
    load_kwargs: Mapping[str, Any] = field(default_factory=dict)
    controlnet: bool = False


@dataclass(frozen=True)
class Keyframe:
    """What one keyframe's diffusion starts from, at generation size, in display sRGB [0, 1]."""

    base: F32  # the plate, or neutral grey
    init: F32  # ``base``, or the previous keyframe reprojected over it
    strength: float  # how far from ``init`` to go
    carried: bool  # ``init`` carries the previous keyframe's look
    mask: F32 | None  # (H, W) where to generate
    depth: F32 | None  # (H, W) depth normalised over the shot to [-1, 1]
    control: F32 | None  # (H, W, 4) the sim ControlNet's conditioning (genfx.sim_condition), in [0, 1]
    control_scale: float  # the ControlNet's strength (controlnet_conditioning_scale)
    prompt: str
    negative_prompt: str
    seed: int
    steps: int
    guidance: float
    on_step: StepFn | None = None

    @property
    def size(self) -> tuple[int, int]:
        height, width = self.base.shape[:2]
        return width, height


Render = Callable[[Any, Keyframe], F32]


@dataclass(frozen=True)
class StageTime:
    """One timed stage of a keyframe, pipeline loading excluded: ``stage`` is "diffusion" or the
    upscaler's mode name, ``size`` the generation size, ``steps`` the denoising steps it ran (for the
    tiled upscaler: steps over the whole frame, every tile included)."""

    stage: str
    size: tuple[int, int]
    steps: int
    seconds: float


@dataclass(frozen=True)
class Mode:
    """One generation mode; ``name`` is its capability string (a closed set, listed in the proto).

    Shot modes (``precedence`` set) are picked per shot from the passes it carries: the lowest
    precedence whose ``passes`` the shot has. Feature modes (``precedence`` None) add to a shot mode.
    An ``opportunistic`` shot mode is picked only when the model has it: its passes also serve other
    modes (motion vectors drive reprojection whatever the mode), so asking for them does not demand it.
    """

    name: str
    available: Callable[[ModelFacts], bool]
    precedence: int | None = None
    passes: frozenset[str] = frozenset()
    pipeline: PipelineSpec | None = None
    render: Render | None = None
    # The mode that runs a keyframe started from a reprojected image, when not this one (txt2img).
    reprojected_init: str = ""
    opportunistic: bool = False
