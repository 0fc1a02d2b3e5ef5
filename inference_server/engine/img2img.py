"""Image-to-image over an init image (the plate, or a reprojected previous frame)."""

from __future__ import annotations

from typing import Any

from .common import F32, StepFn, cpu_generator, first_image, image_tensor, step_end_callback, strength_steps


class Img2ImgRenderer:
    """Renders with a StableDiffusionImg2ImgPipeline; output has the init image's size."""

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline

    def render(
        self,
        *,
        prompt: str,
        negative_prompt: str,
        seed: int,
        steps: int,
        guidance: float,
        init: F32,
        strength: float,
        on_step: StepFn | None = None,
    ) -> F32:
        """(H, W, 3) display sRGB in [0, 1] from ``init`` (same layout), noised to ``strength``."""
        result = self.pipeline(
            prompt=prompt,
            negative_prompt=negative_prompt or None,
            image=image_tensor(init),
            strength=strength,
            num_inference_steps=strength_steps(steps, strength),
            guidance_scale=guidance,
            generator=cpu_generator(seed),
            output_type="np",
            callback_on_step_end=step_end_callback(on_step, steps),
        )
        return first_image(result)
