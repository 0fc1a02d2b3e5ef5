"""Diffusion engine: turns one frame's request into pixels with a diffusers pipeline."""

from .txt2img import RenderCancelled, Txt2ImgRenderer, frame_seed, generation_size

__all__ = ["RenderCancelled", "Txt2ImgRenderer", "frame_seed", "generation_size"]
