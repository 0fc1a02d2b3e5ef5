"""Sim mode: a ControlNet trained on the simulation's passes (genfx-train fit --train controlnet) steers
the model's own UNet. Capability "sim"; picked when the shot carries depth + motion passes and the model
has a sim ControlNet configured (a mask, when given, is the conditioning's fourth channel).

The conditioning image is genfx.sim_condition's, built by the shot renderer with the shot-wide depth
range at exactly the generation size. diffusers' control-image preprocessing returns a 4-channel tensor
as it is (it takes 4 channels for latents: no resize, no RGB conversion, no rescaling), which is what we
want; tests/test_sim_mode.py holds diffusers to that.

- a fresh keyframe without a plate (strength 1): StableDiffusionControlNetPipeline, from noise;
- a keyframe started from an image (a plate, or the previous keyframe reprojected, at ``strength``):
  StableDiffusionControlNetImg2ImgPipeline over the same modules.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from genfx.sim_condition import to_chw

from .common import cpu_generator, first_image, image_tensor, step_end_callback, strength_steps
from .mode import F32, Keyframe, Mode, PipelineSpec


def _control_tensor(k: Keyframe) -> Any:
    import torch

    assert k.control is not None
    width, height = k.size
    if k.control.shape != (height, width, 4):
        raise ValueError(f"sim conditioning is {k.control.shape}, the keyframe is {width}x{height}")
    return torch.from_numpy(to_chw(k.control))[None]


_IMG2IMG: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_IMG2IMG_LOCK = threading.Lock()


def _img2img(pipeline: Any) -> Any:
    """The img2img ControlNet pipeline over ``pipeline``'s modules (no copy of any weights), made once
    per cached pipeline. ``dtype`` is passed on: ``from_pipe`` would otherwise cast the shared modules
    to float32 (fp16 pipelines on GPUs)."""
    import diffusers

    with _IMG2IMG_LOCK:
        found = _IMG2IMG.get(pipeline)
        if found is None:
            found = diffusers.StableDiffusionControlNetImg2ImgPipeline.from_pipe(
                pipeline, dtype=pipeline.dtype
            )
            found.set_progress_bar_config(disable=True)
            _IMG2IMG[pipeline] = found
        return found


def render(pipeline: Any, k: Keyframe) -> F32:
    """(H, W, 3) display sRGB steered by ``k.control`` at ``k.control_scale``."""
    width, height = k.size
    common: dict[str, Any] = {
        "prompt": k.prompt,
        "negative_prompt": k.negative_prompt or None,
        "height": height,
        "width": width,
        "guidance_scale": k.guidance,
        "controlnet_conditioning_scale": k.control_scale,
        "generator": cpu_generator(k.seed),
        "output_type": "np",
        "callback_on_step_end": step_end_callback(k.on_step, k.steps),
    }
    if k.strength >= 1.0:
        result = pipeline(image=_control_tensor(k), num_inference_steps=k.steps, **common)
        return first_image(result)
    result = _img2img(pipeline)(
        image=image_tensor(k.init),
        control_image=_control_tensor(k),
        strength=k.strength,
        num_inference_steps=strength_steps(k.steps, k.strength),
        **common,
    )
    return first_image(result)


MODE = Mode(
    name="sim",
    available=lambda m: m.sim_controlnet and m.main_channels == 4,
    precedence=-1,  # the most specific: the simulation itself steers the frames
    passes=frozenset({"depth", "motion"}),
    pipeline=PipelineSpec(cls="StableDiffusionControlNetPipeline", controlnet=True),
    render=render,
    opportunistic=True,  # motion + depth without a sim ControlNet: depth mode, motion-aware reprojection
)
