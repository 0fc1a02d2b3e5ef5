"""A small DDIM sampler over the training modules, for the validation grid written at each checkpoint.

Deliberately the bare loop (UNet + optional ControlNet + classifier-free guidance), so it runs on the
live training modules without building a pipeline around them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


@torch.no_grad()
def sample_images(
    c: Any,
    prompts: list[str],
    conditions: list[torch.Tensor | None],
    size: tuple[int, int],
    steps: int,
    seed: int,
    guidance: float = 5.0,
) -> list[np.ndarray]:
    """One (H, W, 3) image in [0, 1] per prompt (``c``: unet, vae, text_encoder, tokenizer, controlnet)."""
    import diffusers

    d: Any = diffusers  # untyped for mypy --strict
    scheduler = d.DDIMScheduler.from_config(c.noise_scheduler.config)
    scheduler.set_timesteps(steps)
    device = next(c.unet.parameters()).device
    scale = 2 ** (len(c.vae.config.block_out_channels) - 1)
    images = []
    for i, (prompt, cond) in enumerate(zip(prompts, conditions, strict=True)):
        ids = c.tokenizer(
            [prompt, ""],
            padding="max_length",
            max_length=c.tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        ).input_ids.to(device)
        emb = c.text_encoder(ids)[0]
        gen = torch.Generator().manual_seed(seed + i)
        shape = (1, c.unet.config.in_channels, size[1] // scale, size[0] // scale)
        latents = torch.randn(shape, generator=gen).to(device) * scheduler.init_noise_sigma
        for t in scheduler.timesteps:
            model_in = scheduler.scale_model_input(torch.cat([latents, latents]), t)
            down = mid = None
            if c.controlnet is not None and cond is not None:
                down, mid = c.controlnet(
                    model_in,
                    t,
                    encoder_hidden_states=emb,
                    controlnet_cond=torch.cat([cond, cond]).to(device),
                    return_dict=False,
                )
            pred = c.unet(
                model_in,
                t,
                encoder_hidden_states=emb,
                down_block_additional_residuals=down,
                mid_block_additional_residual=mid,
            ).sample
            text, uncond = pred.chunk(2)
            latents = scheduler.step(uncond + guidance * (text - uncond), t, latents).prev_sample
        image = c.vae.decode(latents / c.vae.config.scaling_factor).sample[0]
        images.append(((image.clamp(-1, 1) + 1) / 2).permute(1, 2, 0).float().cpu().numpy())
    return images
