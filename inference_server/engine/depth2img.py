"""Depth-conditioned generation from the simulation's depth pass, normalised over the whole shot.

diffusers' Depth2Img min-max normalises each frame's depth (flicker when the depth range changes across
a shot) and expects MiDaS-style inverse depth. ``_shot_depth_pipeline`` is Depth2Img taking depth
already mapped to [-1, 1] with shot-wide near/far (``normalise_depth``); it only resizes it to the
latent grid. The shot's range is genfx.passes.shot_depth_range (the rule the sim ControlNet's
conditioning and the trainer use too).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from .common import cpu_generator, first_image, image_tensor, step_end_callback, strength_steps
from .mode import F32, Keyframe, Mode, PipelineSpec


def normalise_depth(z: F32, near: float, far: float) -> F32:
    """Camera Z -> inverse depth scaled to [-1, 1] with the shot's (near, far) (near = 1, far/sky = -1)."""
    inv = 1.0 / np.clip(z, near, far)  # inf (sky) clips to far
    out = 2.0 * (inv - 1.0 / far) / (1.0 / near - 1.0 / far) - 1.0
    return np.ascontiguousarray(out, dtype=np.float32)


@functools.cache
def _shot_depth_pipeline() -> Any:
    """Depth2Img whose ``depth_map`` is used as given (already normalised), never re-normalised.
    Built on first use: diffusers loads only when a depth shot runs."""
    import diffusers
    import torch

    base: Any = diffusers.StableDiffusionDepth2ImgPipeline  # untyped for mypy

    class ShotDepth2ImgPipeline(base):  # type: ignore[misc]
        def prepare_depth_map(
            self, image: Any, depth_map: Any, batch_size: int, do_cfg: bool, dtype: Any, device: Any
        ) -> Any:
            height, width = image.shape[-2:]  # always a (B, C, H, W) tensor from render()
            depth = depth_map.to(device=device, dtype=torch.float32).unsqueeze(1)
            size = (height // self.vae_scale_factor, width // self.vae_scale_factor)
            depth = torch.nn.functional.interpolate(depth, size=size, mode="area").to(dtype)
            if depth.shape[0] < batch_size:
                depth = depth.repeat(batch_size // depth.shape[0], 1, 1, 1)
            return torch.cat([depth] * 2) if do_cfg else depth

    return ShotDepth2ImgPipeline


def render(pipeline: Any, k: Keyframe) -> F32:
    """(H, W, 3) display sRGB from ``k.init`` conditioned on ``k.depth`` (from normalise_depth)."""
    import torch

    assert k.depth is not None
    # Same modules, our depth handling: no copy of any weights.
    shot_pipeline = _shot_depth_pipeline()(**pipeline.components)
    shot_pipeline.set_progress_bar_config(disable=True)
    result = shot_pipeline(
        prompt=k.prompt,
        negative_prompt=k.negative_prompt or None,
        image=image_tensor(k.init),
        depth_map=torch.from_numpy(np.ascontiguousarray(k.depth))[None],
        strength=k.strength,
        num_inference_steps=strength_steps(k.steps, k.strength),
        guidance_scale=k.guidance,
        generator=cpu_generator(k.seed),
        output_type="np",
        callback_on_step_end=step_end_callback(k.on_step, k.steps),
    )
    return first_image(result)


MODE = Mode(
    name="depth",
    available=lambda m: "depth" in m.variants,
    precedence=0,
    passes=frozenset({"depth"}),
    # Depth always comes from the shot's pass: never load the DPT estimator.
    pipeline=PipelineSpec(
        cls="StableDiffusionDepth2ImgPipeline",
        variant="depth",
        variant_channels=5,
        load_kwargs={"depth_estimator": None, "feature_extractor": None},
    ),
    render=render,
)
