"""From the model's native size to the output size (up to 4096x2160), with bounded memory.

- ``resize``: high-quality (Lanczos, antialiased when shrinking) resize, each channel in float32 through
  Pillow, channels of large images side by side on genfx.parallel's threads (a 4K RGB frame 2.5x
  faster on 2 cores); peak memory is the output plus one copy of the input.
- ``tiled_map``: runs a per-tile function (the x4 upscaler) over overlapping tiles and feathers the
  seams; memory is one tile plus the output, whatever the frame size.
- ``X4Upscaler``: StableDiffusionUpscalePipeline per tile (tile = the UNet's sample size in low-res pixels).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from genfx import parallel

from .common import cpu_generator, first_image, image_tensor
from .mode import F32, Mode, PipelineSpec, StepFn

_RESAMPLE = Image.Resampling.LANCZOS


def resize(image: F32, width: int, height: int, *, clip: bool = True, resample: int = _RESAMPLE) -> F32:
    """(h, w[, C]) float32 -> (height, width[, C]); ``clip`` to [0, 1] (Lanczos rings past the range)."""
    if image.shape[:2] == (height, width):
        return np.ascontiguousarray(image, dtype=np.float32)
    planes = image[..., None] if image.ndim == 2 else image
    out = np.empty((height, width, planes.shape[2]), np.float32)

    def one(c: int) -> None:
        plane = Image.fromarray(np.ascontiguousarray(planes[..., c], dtype=np.float32), mode="F")
        out[..., c] = np.asarray(plane.resize((width, height), resample=resample), dtype=np.float32)

    # Channels side by side (Pillow resamples without the GIL).
    pixels = max(image.shape[0] * image.shape[1], width * height)
    parallel.run_all([partial(one, c) for c in range(planes.shape[2])], pixels)
    if clip:
        np.clip(out, 0.0, 1.0, out=out)
    return out[..., 0] if image.ndim == 2 else out


def resize_depth(depth: F32, width: int, height: int) -> F32:
    """Depth to another size; nearest keeps occlusion edges sharp (a blend of two depths is neither)."""
    finite = np.where(np.isfinite(depth), depth, np.float32(np.finfo(np.float32).max))
    out = resize(finite, width, height, clip=False, resample=Image.Resampling.NEAREST)
    out[out >= np.finfo(np.float32).max] = np.inf
    return out


def resize_motion(motion: F32, width: int, height: int) -> F32:
    """Motion vectors (h, w, 2) in pixels to another size: nearest (a blend of a moving piece's vector
    and the background's is neither), and each component scaled to pixels of the new size."""
    h, w = motion.shape[:2]
    out = resize(motion, width, height, clip=False, resample=Image.Resampling.NEAREST)
    out *= np.array([width / w, height / h], dtype=np.float32)
    return out


def _starts(size: int, tile: int, overlap: int) -> list[int]:
    if size <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, size - tile, stride))
    return [*starts, size - tile]


def tile_count(height: int, width: int, tile: int, overlap: int) -> int:
    """How many tiles ``tiled_map`` runs over an image of this size."""
    return len(_starts(height, tile, overlap)) * len(_starts(width, tile, overlap))


def _ramp(n: int, overlap: int, at_start: bool, at_end: bool) -> npt.NDArray[np.float32]:
    """1 in the middle, rising over ``overlap`` pixels at inner edges (never 0: every pixel counts)."""
    w = np.ones(n, np.float32)
    ramp = (np.arange(overlap, dtype=np.float32) + 0.5) / overlap
    if not at_start and overlap:
        w[:overlap] = ramp[: min(overlap, n)]
    if not at_end and overlap:
        w[-overlap:] = np.minimum(w[-overlap:], ramp[::-1][:n])
    return w


def tiled_map(image: F32, fn: Callable[[F32], F32], scale: int, tile: int, overlap: int) -> F32:
    """Apply ``fn`` ((th, tw, C) -> (th*scale, tw*scale, C)) over overlapping tiles, feathered seams."""
    h, w, c = image.shape
    if overlap >= tile:
        raise ValueError("overlap must be smaller than the tile")
    acc = np.zeros((h * scale, w * scale, c), np.float32)
    weight = np.zeros((h * scale, w * scale, 1), np.float32)
    ys, xs = _starts(h, tile, overlap), _starts(w, tile, overlap)
    for y in ys:
        for x in xs:
            th, tw = min(tile, h - y), min(tile, w - x)
            out = fn(np.ascontiguousarray(image[y : y + th, x : x + tw]))
            wy = _ramp(th * scale, overlap * scale, y == 0, y + th == h)
            wx = _ramp(tw * scale, overlap * scale, x == 0, x + tw == w)
            wt = (wy[:, None] * wx[None, :])[..., None]
            sl = np.s_[y * scale : (y + th) * scale, x * scale : (x + tw) * scale]
            acc[sl] += out * wt
            weight[sl] += wt
    acc /= weight
    return acc


class X4Upscaler:
    """The SD x4 upscaler run tile by tile (its latent is as large as the low-res input: tile it)."""

    def __init__(self, pipeline: Any, tile: int | None = None, overlap: int | None = None) -> None:
        self.pipeline = pipeline
        self.tile = tile or int(pipeline.unet.config.sample_size)
        self.overlap = overlap if overlap is not None else self.tile // 4

    def upscale(
        self,
        image: F32,
        *,
        prompt: str,
        negative_prompt: str,
        seed: int,
        steps: int,
        guidance: float,
        noise_level: int = 20,
        on_step: StepFn | None = None,
    ) -> F32:
        """(h, w, 3) display sRGB -> (4h, 4w, 3); every tile uses the frame's seed (consistent grain)."""

        def one(tile: F32) -> F32:
            def callback(step: int, timestep: Any, latents: Any) -> None:
                if on_step is not None:
                    on_step(step + 1, steps)

            result = self.pipeline(
                prompt=prompt,
                negative_prompt=negative_prompt or None,
                image=image_tensor(tile),
                num_inference_steps=steps,
                guidance_scale=guidance,
                noise_level=noise_level,
                generator=cpu_generator(seed),
                output_type="np",
                callback=callback,  # the upscaler only has the legacy callback
                callback_steps=1,
            )
            return first_image(result)

        return np.clip(tiled_map(image, one, 4, self.tile, self.overlap), 0.0, 1.0)


MODE = Mode(
    name="upscale_x4",
    available=lambda m: "upscale_x4" in m.variants,
    pipeline=PipelineSpec(cls="StableDiffusionUpscalePipeline", variant="upscale_x4", variant_channels=7),
)
