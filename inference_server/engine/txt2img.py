"""Text-to-image rendering of one frame, with per-step progress and cancellation."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np
import torch


class RenderCancelled(Exception):
    """Raised from the step callback to stop a render between denoising steps (skips the VAE decode)."""


def frame_seed(job_seed: int, frame: int) -> int:
    """The seed for one frame of a job: a pure function of (job seed, frame), stable forever.

    Derivation: the first 8 bytes (big-endian) of sha256(f"genfx:{job_seed}:{frame}"), shifted right by
    one bit to give 63 bits. A job resumed after a crash must remake identical frames, so never change it.
    """
    digest = hashlib.sha256(f"genfx:{job_seed}:{frame}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


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


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    # Antialiased bicubic on float32 keeps the full precision; bicubic overshoots, hence the clamp.
    t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).unsqueeze(0)
    t = torch.nn.functional.interpolate(t, size=(height, width), mode="bicubic", antialias=True)
    out: np.ndarray = t.clamp_(0.0, 1.0).squeeze(0).permute(1, 2, 0).contiguous().numpy()
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
    ) -> np.ndarray:
        """One frame as (height, width, 3) float32 display sRGB in [0, 1].

        ``on_step(done, total)`` runs after every denoising step; whatever it raises (e.g.
        RenderCancelled) propagates out of the pipeline before the decode, which is how cancel works.
        """
        if steps < 1:
            raise ValueError("steps must be >= 1")
        gen_w, gen_h = generation_size(width, height, self.native_width, self.native_height)
        # A CPU generator gives the same noise on every device, so a frame is reproducible anywhere.
        generator = torch.Generator("cpu").manual_seed(seed)

        def step_end(pipe: Any, step_index: int, timestep: Any, callback_kwargs: dict[str, Any]) -> Any:
            if on_step is not None:
                on_step(step_index + 1, int(getattr(pipe, "num_timesteps", steps)))
            return callback_kwargs  # the pipeline pops latents back out of this dict

        result = self.pipeline(
            prompt=prompt,
            negative_prompt=negative_prompt or None,
            num_inference_steps=steps,
            guidance_scale=guidance,
            height=gen_h,
            width=gen_w,
            generator=generator,
            output_type="np",
            callback_on_step_end=step_end if on_step is not None else None,
        )
        image = np.asarray(result.images[0], dtype=np.float32)
        if (gen_w, gen_h) != (width, height):
            # The seam for the later tiled upscaler.
            image = _resize(image, width, height)
        return image
