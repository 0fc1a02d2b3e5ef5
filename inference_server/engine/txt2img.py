"""Text-to-image: a frame from the prompt alone (StableDiffusionPipeline, the model's main folder)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .common import cpu_generator, step_end_callback
from .mode import F32, Keyframe, Mode, PipelineSpec


def generation_size(
    out_width: int, out_height: int, native_width: int, native_height: int, multiple: int = 8
) -> tuple[int, int]:
    """The (width, height) to generate at: the output aspect at the model's native scale.

    The longer output side maps to the native longer side; each side is rounded to ``multiple``
    (at least ``multiple``), which the pipeline requires.
    """
    if min(out_width, out_height, native_width, native_height, multiple) <= 0:
        raise ValueError("sizes and multiple must be positive")
    scale = max(native_width, native_height) / max(out_width, out_height)

    def snap(side: int) -> int:
        return max(multiple, round(side * scale / multiple) * multiple)

    return snap(out_width), snap(out_height)


def _resize(image: F32, width: int, height: int) -> F32:
    import torch

    # Antialiased bicubic on float32 keeps the full precision; bicubic overshoots, hence the clamp.
    t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).unsqueeze(0)
    t = torch.nn.functional.interpolate(t, size=(height, width), mode="bicubic", antialias=True)
    out: F32 = t.clamp_(0.0, 1.0).squeeze(0).permute(1, 2, 0).contiguous().numpy()
    return out


class Txt2ImgRenderer:
    """Renders frames with a StableDiffusionPipeline (components already loaded and on their device).

    A pipeline holds per-call state (scheduler timesteps), so one renderer must not render concurrently.
    """

    def __init__(self, pipeline: Any, native_width: int, native_height: int) -> None:
        self.pipeline = pipeline
        self.native_width = native_width
        self.native_height = native_height

    def render(
        self,
        *,
        prompt: str,
        negative_prompt: str,
        seed: int,
        steps: int,
        guidance: float,
        width: int,
        height: int,
        on_step: Callable[[int, int], None] | None = None,
    ) -> F32:
        """One frame as (height, width, 3) float32 display sRGB in [0, 1], generated at the model's
        native scale and resized to (width, height).

        ``on_step(done, total)`` runs after every denoising step; whatever it raises (e.g.
        RenderCancelled) propagates out of the pipeline before the decode, which is how cancel works.
        """
        if steps < 1:
            raise ValueError("steps must be >= 1")
        gen_w, gen_h = generation_size(width, height, self.native_width, self.native_height)
        image = _generate(
            self.pipeline, prompt, negative_prompt, seed, steps, guidance, gen_w, gen_h, on_step
        )
        return image if (gen_w, gen_h) == (width, height) else _resize(image, width, height)


def _generate(
    pipeline: Any,
    prompt: str,
    negative_prompt: str,
    seed: int,
    steps: int,
    guidance: float,
    width: int,
    height: int,
    on_step: Callable[[int, int], None] | None,
) -> F32:
    result = pipeline(
        prompt=prompt,
        negative_prompt=negative_prompt or None,
        num_inference_steps=steps,
        guidance_scale=guidance,
        height=height,
        width=width,
        generator=cpu_generator(seed),
        output_type="np",
        callback_on_step_end=step_end_callback(on_step, steps),
    )
    return np.asarray(result.images[0], dtype=np.float32)


def render(pipeline: Any, k: Keyframe) -> F32:
    width, height = k.size
    return _generate(
        pipeline, k.prompt, k.negative_prompt, k.seed, k.steps, k.guidance, width, height, k.on_step
    )


MODE = Mode(
    name="txt2img",
    available=lambda m: m.main_channels == 4,
    precedence=3,
    pipeline=PipelineSpec(cls="StableDiffusionPipeline"),
    render=render,
    reprojected_init="img2img",  # a keyframe carried over from the previous one starts from an image
)
