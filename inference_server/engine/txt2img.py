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
