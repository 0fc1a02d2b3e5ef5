"""Inpainting inside a mask: a 9-channel inpainting UNet (the "inpaint" variant, or a main folder that
is one), else legacy latent blending on the main 4-channel UNet."""

from __future__ import annotations

from typing import Any

import numpy as np

from .common import cpu_generator, first_image, image_tensor, step_end_callback, strength_steps
from .mode import F32, Keyframe, Mode, PipelineSpec


def render(pipeline: Any, k: Keyframe) -> F32:
    """New content where the mask is 1; the plate (or grey) where it is 0. A carried-over keyframe puts
    the previous look inside the mask and is noised to ``k.strength``; a fresh one starts from noise."""
    assert k.mask is not None
    m = k.mask[..., None]
    image = k.init * m + k.base * (1.0 - m) if k.carried else k.base
    strength = k.strength if k.carried else 1.0
    width, height = k.size
    result = pipeline(
        prompt=k.prompt,
        negative_prompt=k.negative_prompt or None,
        image=image_tensor(image),
        mask_image=image_tensor(m),
        height=height,
        width=width,
        strength=strength,
        num_inference_steps=strength_steps(k.steps, strength),
        guidance_scale=k.guidance,
        generator=cpu_generator(k.seed),
        output_type="np",
        callback_on_step_end=step_end_callback(k.on_step, k.steps),
    )
    out = first_image(result)
    # The VAE round trip alters unmasked pixels slightly; outside the mask the plate is the truth.
    return np.ascontiguousarray(out * m + image * (1.0 - m), dtype=np.float32)


MODE = Mode(
    name="inpaint",
    available=lambda m: m.main_channels == 4 or "inpaint" in m.variants,
    precedence=1,
    passes=frozenset({"mask"}),
    pipeline=PipelineSpec(cls="StableDiffusionInpaintPipeline", variant="inpaint", variant_channels=9),
    render=render,
)
