"""Image-to-image over an init image (the plate, or a reprojected previous keyframe)."""

from __future__ import annotations

from typing import Any

from .common import cpu_generator, first_image, image_tensor, step_end_callback, strength_steps
from .mode import F32, Keyframe, Mode, PipelineSpec


def render(pipeline: Any, k: Keyframe) -> F32:
    """(H, W, 3) display sRGB from ``k.init`` (same size), noised to ``k.strength``."""
    result = pipeline(
        prompt=k.prompt,
        negative_prompt=k.negative_prompt or None,
        image=image_tensor(k.init),
        strength=k.strength,
        num_inference_steps=strength_steps(k.steps, k.strength),
        guidance_scale=k.guidance,
        generator=cpu_generator(k.seed),
        output_type="np",
        callback_on_step_end=step_end_callback(k.on_step, k.steps),
    )
    return first_image(result)


MODE = Mode(
    name="img2img",
    available=lambda m: m.main_channels == 4,
    precedence=2,
    passes=frozenset({"plate"}),
    pipeline=PipelineSpec(cls="StableDiffusionImg2ImgPipeline"),  # shares the main components
    render=render,
)
