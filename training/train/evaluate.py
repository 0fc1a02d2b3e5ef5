"""A fixed evaluation loss: the same samples, noise and timesteps every time, so it shows learning.

The training loss jumps with each batch's random timesteps; this one is measured before the first
step and at every checkpoint on up to EVAL_SAMPLES samples (one bucket), with timesteps spread evenly
over the schedule and noise from a seed stream training never uses.
"""

from __future__ import annotations

from typing import Any

import torch

from training.train.data import ShardDataset, load_batch
from training.train.objective import sample_generator, snr_weights, target_for, weighted_mse

EVAL_SAMPLES = 8
_EVAL_STREAM = 10**9  # micro-batch numbers training never reaches


@torch.no_grad()
def evaluation_loss(
    model: Any, c: Any, dataset: ShardDataset, *, kind: str, seed: int, use_cache: bool, snr_gamma: float
) -> float:
    first = dataset.samples[0].bucket
    picks = [s for s in dataset.samples if s.bucket == first][:EVAL_SAMPLES]
    device = next(c.unet.parameters()).device
    batch = load_batch(picks, latents=use_cache, condition=c.controlnet is not None)
    if use_cache:
        latents = batch["latents"].to(device)
    else:
        latents = c.vae.encode(batch["pixels"].to(device, next(c.vae.parameters()).dtype)).latent_dist.mean
    latents = latents.float() * c.vae.config.scaling_factor
    n = len(picks)
    steps = int(c.noise_scheduler.config.num_train_timesteps)
    t = torch.tensor([int((j + 0.5) / n * steps) for j in range(n)], device=device)
    noise = torch.stack(
        [torch.randn(latents.shape[1:], generator=sample_generator(seed, _EVAL_STREAM, j)) for j in range(n)]
    ).to(device)
    noisy = c.noise_scheduler.add_noise(latents, noise, t)
    ids = None
    if not use_cache:
        ids = c.tokenizer(
            batch["captions"],
            padding="max_length",
            truncation=True,
            max_length=c.tokenizer.model_max_length,
            return_tensors="pt",
        ).input_ids.to(device)
    was_training = model.training
    model.eval()
    try:
        pred = model(
            noisy,
            t,
            ids,
            batch["text_embeds"].to(device) if use_cache else None,
            batch["condition"].to(device) if "condition" in batch else None,
        )
    finally:
        model.train(was_training)
    target = target_for(c.noise_scheduler, kind, latents, noise, t)
    return float(weighted_mse(pred, target, snr_weights(c.noise_scheduler, t, kind, snr_gamma)).item())
