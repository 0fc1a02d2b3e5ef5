"""Small helpers every renderer shares: seeds, step callbacks, tensors. torch loads on first use, so
the mode objects (and validation, which reads them) import without it."""

from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np

from .mode import F32, StepFn


class RenderCancelled(Exception):
    """Raised from the step callback to stop a render between denoising steps (skips the VAE decode)."""


def frame_seed(job_seed: int, frame: int) -> int:
    """The seed for one frame of a job: a pure function of (job seed, frame), stable forever.

    Derivation: the first 8 bytes (big-endian) of sha256(f"genfx:{job_seed}:{frame}"), shifted right by
    one bit to give 63 bits. A job resumed after a crash must remake identical frames, so never change it.
    """
    digest = hashlib.sha256(f"genfx:{job_seed}:{frame}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def step_end_callback(on_step: StepFn | None, steps: int) -> Any:
    """A ``callback_on_step_end`` reporting (done, total); whatever ``on_step`` raises stops the call."""
    if on_step is None:
        return None

    def step_end(pipe: Any, step_index: int, timestep: Any, callback_kwargs: dict[str, Any]) -> Any:
        on_step(step_index + 1, int(getattr(pipe, "num_timesteps", steps)))
        return callback_kwargs  # the pipeline pops latents back out of this dict

    return step_end


def cpu_generator(seed: int) -> Any:
    import torch

    # A CPU generator gives the same noise on every device, so a frame is reproducible anywhere.
    return torch.Generator("cpu").manual_seed(seed)


def image_tensor(image: F32) -> Any:
    """(H, W, C) float in [0, 1] -> (1, C, H, W); diffusers' image processor maps [0, 1] to [-1, 1]."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1).unsqueeze(0)


def strength_steps(steps: int, strength: float) -> int:
    """Steps to ask for so that img2img-style pipelines run at least one (they run int(steps*strength))."""
    if not 0.0 < strength <= 1.0:
        raise ValueError(f"strength must be in (0, 1] (got {strength})")
    return max(steps, math.ceil(1.0 / strength - 1e-9))


def steps_run(steps: int, strength: float) -> int:
    """Denoising steps an img2img-style pipeline runs when asked for ``strength_steps(steps, strength)``
    (diffusers runs int(asked x strength) of them; strength 1 runs them all)."""
    asked = strength_steps(steps, strength)
    return min(asked, max(1, int(asked * strength)))


def first_image(result: Any) -> F32:
    return np.ascontiguousarray(np.asarray(result.images[0], dtype=np.float32))
