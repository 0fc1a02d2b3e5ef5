"""The mode registry: every generation mode, in menu order. Capabilities, validation, the model loader
and the shot renderer read it; adding a mode is one file exporting a Mode plus one line here."""

from __future__ import annotations

from collections.abc import Collection

from . import depth2img, img2img, inpaint, sim, temporal, txt2img, upscale
from .mode import Mode, ModelFacts

MODES: tuple[Mode, ...] = (
    txt2img.MODE,
    img2img.MODE,
    inpaint.MODE,
    depth2img.MODE,
    sim.MODE,
    temporal.MODE,
    upscale.MODE,
)
BY_NAME = {m.name: m for m in MODES}
TEMPORAL = temporal.MODE.name
UPSCALE_X4 = upscale.MODE.name
NAMES = tuple(BY_NAME)
# Shot modes, most specific first: the sim ControlNet on depth + motion (when the model has one), the
# simulation's depth (a mask then only sets the output alpha), then a mask (inpaint inside it), then a
# plate (img2img over it); nothing is txt2img.
_SHOT_MODES = sorted((m for m in MODES if m.precedence is not None), key=lambda m: m.precedence or 0)
# Companion folders a model may name in genfx.json, and the UNet input channels each must have.
VARIANT_CHANNELS = {
    m.pipeline.variant: m.pipeline.variant_channels for m in MODES if m.pipeline and m.pipeline.variant
}


def get(name: str) -> Mode:
    return BY_NAME[name]


def capabilities(model: ModelFacts) -> tuple[str, ...]:
    return tuple(m.name for m in MODES if m.available(model))


def shot_mode(passes: Collection[str], capabilities: Collection[str]) -> Mode:
    """The diffusion mode for a shot whose frames carry ``passes`` (pass kinds) on a model with
    ``capabilities``: the most specific the passes ask for; an opportunistic mode only when the model
    has it. The result may still be one the model lacks (validation answers FAILED_PRECONDITION)."""
    return next(
        m for m in _SHOT_MODES if m.passes <= set(passes) and (not m.opportunistic or m.name in capabilities)
    )
