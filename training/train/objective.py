"""The diffusion training objective: noise, timesteps, target (epsilon or v), min-SNR weights, loss.

Noise and timesteps come from a generator seeded per SAMPLE (seed, micro-batch, position in it), not
from a process-wide RNG, so the same sample gets the same noise whatever the process count and
whether or not the run was resumed.
"""

from __future__ import annotations

from typing import Any

import torch


def sample_generator(seed: int, micro_batch: int, position: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + micro_batch) * 4099 + position)


def noise_and_timesteps(
    latents: torch.Tensor, generators: list[torch.Generator], num_timesteps: int, noise_offset: float
) -> tuple[torch.Tensor, torch.Tensor]:
    noises, steps = [], []
    for lat, gen in zip(latents, generators, strict=True):
        noise = torch.randn(lat.shape, generator=gen)
        if noise_offset:
            # Offset noise: a per-channel constant lets the model learn overall brightness shifts.
            noise = noise + noise_offset * torch.randn((lat.shape[0], 1, 1), generator=gen)
        noises.append(noise)
        steps.append(torch.randint(0, num_timesteps, (1,), generator=gen))
    return torch.stack(noises).to(latents.device), torch.cat(steps).to(latents.device)


def prediction_type(scheduler: Any, override: str) -> str:
    return str(scheduler.config.prediction_type) if override == "model" else override


def target_for(
    scheduler: Any, kind: str, latents: torch.Tensor, noise: torch.Tensor, t: torch.Tensor
) -> torch.Tensor:
    if kind == "epsilon":
        return noise
    if kind == "v_prediction":
        velocity: torch.Tensor = scheduler.get_velocity(latents, noise, t)
        return velocity
    raise ValueError(f"prediction type {kind!r}: must be epsilon or v_prediction")


def snr_weights(scheduler: Any, t: torch.Tensor, kind: str, gamma: float) -> torch.Tensor:
    """Min-SNR-gamma (Hang et al. 2023): min(snr, gamma)/snr for epsilon, min(snr, gamma)/(snr+1) for v."""
    if gamma <= 0:
        return torch.ones(t.shape[0], device=t.device)
    alphas = scheduler.alphas_cumprod.to(t.device)[t]
    snr = alphas / (1.0 - alphas)
    clipped = torch.clamp(snr, max=gamma)
    weights: torch.Tensor = clipped / (snr + 1.0) if kind == "v_prediction" else clipped / snr
    return weights


def weighted_mse(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    per_sample = ((pred.float() - target.float()) ** 2).mean(dim=(1, 2, 3))
    return (per_sample * weights).mean()
