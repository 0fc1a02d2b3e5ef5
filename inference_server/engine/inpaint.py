"""Inpainting inside a mask (9-channel inpainting UNet, or legacy latent blending on a 4-channel one)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .common import F32, StepFn, cpu_generator, first_image, image_tensor, step_end_callback, strength_steps


class InpaintRenderer:
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
        image: F32,
        mask: F32,
        strength: float = 1.0,
        on_step: StepFn | None = None,
    ) -> F32:
        """(H, W, 3) display sRGB: new content where ``mask`` (H, W) is 1, ``image`` where it is 0."""
        height, width = mask.shape
        result = self.pipeline(
            prompt=prompt,
            negative_prompt=negative_prompt or None,
            image=image_tensor(image),
            mask_image=image_tensor(mask[..., None]),
            height=height,
            width=width,
            strength=strength,
            num_inference_steps=strength_steps(steps, strength),
            guidance_scale=guidance,
            generator=cpu_generator(seed),
            output_type="np",
            callback_on_step_end=step_end_callback(on_step, steps),
        )
        out = first_image(result)
        # The VAE round trip alters unmasked pixels slightly; outside the mask the plate is the truth.
        m = mask[..., None]
        return np.ascontiguousarray(out * m + image * (1.0 - m), dtype=np.float32)
