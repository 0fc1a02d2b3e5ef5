"""Depth-conditioned generation from the simulation's depth pass, normalised over the whole shot.

diffusers' Depth2Img min-max normalises each frame's depth (flicker when the depth range changes across
a shot) and expects MiDaS-style inverse depth. ShotDepth2ImgPipeline takes depth already mapped to
[-1, 1] with shot-wide near/far (``normalise_depth``) and only resizes it to the latent grid.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import diffusers
import numpy as np
import torch

from .common import F32, StepFn, cpu_generator, first_image, image_tensor, step_end_callback, strength_steps

_Depth2Img: Any = diffusers.StableDiffusionDepth2ImgPipeline  # untyped for mypy


class ShotDepth2ImgPipeline(_Depth2Img):  # type: ignore[misc]
    """Depth2Img whose ``depth_map`` is used as given (already normalised), never re-normalised."""

    def prepare_depth_map(
        self, image: Any, depth_map: Any, batch_size: int, do_cfg: bool, dtype: Any, device: Any
    ) -> torch.Tensor:
        height, width = image.shape[-2:]  # always a (B, C, H, W) tensor from DepthRenderer
        depth = depth_map.to(device=device, dtype=torch.float32).unsqueeze(1)
        size = (height // self.vae_scale_factor, width // self.vae_scale_factor)
        depth = torch.nn.functional.interpolate(depth, size=size, mode="area").to(dtype)
        if depth.shape[0] < batch_size:
            depth = depth.repeat(batch_size // depth.shape[0], 1, 1, 1)
        return torch.cat([depth] * 2) if do_cfg else depth


def shot_depth_range(depths: Iterable[F32]) -> tuple[float, float]:
    """(near, far): the smallest and largest finite positive depth over every frame of the shot."""
    near, far = np.inf, 0.0
    for z in depths:
        finite = z[np.isfinite(z) & (z > 0)]
        if finite.size:
            near, far = min(near, float(finite.min())), max(far, float(finite.max()))
    if not np.isfinite(near):
        raise ValueError("depth: no finite positive depth in any frame of the shot")
    if far <= near:
        far = near * 1.001  # a flat shot: any range maps it to one value
    return near, far


def normalise_depth(z: F32, near: float, far: float) -> F32:
    """Camera Z -> inverse depth scaled to [-1, 1] with the shot's range (near = 1, far/sky = -1)."""
    inv = 1.0 / np.clip(z, near, far)  # inf (sky) clips to far
    out = 2.0 * (inv - 1.0 / far) / (1.0 / near - 1.0 / far) - 1.0
    return np.ascontiguousarray(out, dtype=np.float32)


class DepthRenderer:
    def __init__(self, pipeline: Any) -> None:
        # Same modules, our depth handling: no copy of any weights.
        self.pipeline: Any = ShotDepth2ImgPipeline(**pipeline.components)
        self.pipeline.set_progress_bar_config(disable=True)

    def render(
        self,
        *,
        prompt: str,
        negative_prompt: str,
        seed: int,
        steps: int,
        guidance: float,
        init: F32,
        depth: F32,
        strength: float = 1.0,
        on_step: StepFn | None = None,
    ) -> F32:
        """(H, W, 3) display sRGB; ``depth`` (H, W) from normalise_depth, ``init`` the start image."""
        result = self.pipeline(
            prompt=prompt,
            negative_prompt=negative_prompt or None,
            image=image_tensor(init),
            depth_map=torch.from_numpy(np.ascontiguousarray(depth))[None],
            strength=strength,
            num_inference_steps=strength_steps(steps, strength),
            guidance_scale=guidance,
            generator=cpu_generator(seed),
            output_type="np",
            callback_on_step_end=step_end_callback(on_step, steps),
        )
        return first_image(result)
