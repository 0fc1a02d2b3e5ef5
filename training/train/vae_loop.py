"""``genfx-train fit --train vae``: train the base model's VAE on the dataset's images (one process).

A model trained from scratch needs its autoencoder first: the UNet and ControlNet then learn in its
latent space (and may use latents cached with it). Objective: L1 reconstruction plus a small KL term
(weight ``KL_WEIGHT``, as SD's autoencoders; no perceptual or GAN loss: those need pretrained
networks). Each sample is a random ``--vae-crop`` square of the image (the VAE has no attention, so it
is local and crops show it more content per second), from a generator seeded per sample as the
diffusion objective's noise. The schedule, checkpoints, SIGTERM and ``--resume`` are the diffusion
loop's (bit-identical resume).

At the end the VAE's ``scaling_factor`` is set to 1 / std of its latents over up to 64 samples (what
SD did for its VAE: unit-variance latents for the diffusion model) and ``RUN/vae/`` is written.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import numpy as np
import torch

from training.train.base_model import load_components, trainable_parameters
from training.train.data import ShardDataset, load_batch
from training.train.objective import sample_generator
from training.train.options import FitConfig, default_threads
from training.train.preview import grid_png, loss_curve_png
from training.train.run_folder import claim, latest_checkpoint, load_checkpoint, save_checkpoint

KL_WEIGHT = 1e-6
SCALE_SAMPLES = 64
PREVIEW_SAMPLES = 4
EVAL_SAMPLES = 8


def _crops(pixels: torch.Tensor, size: int, gens: list[torch.Generator]) -> torch.Tensor:
    h, w = pixels.shape[-2:]
    if size >= min(h, w):
        return pixels
    out = []
    for img, gen in zip(pixels, gens, strict=True):
        y = int(torch.randint(0, h - size + 1, (1,), generator=gen))
        x = int(torch.randint(0, w - size + 1, (1,), generator=gen))
        out.append(img[:, y : y + size, x : x + size])
    return torch.stack(out)


def vae_loss(vae: Any, pixels: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    posterior = vae.encode(pixels).latent_dist
    recon = vae.decode(posterior.sample(generator=gen)).sample
    kl = posterior.kl().mean() / pixels[0].numel()
    loss: torch.Tensor = (recon - pixels).abs().mean() + KL_WEIGHT * kl
    return loss


@torch.no_grad()
def _previews(vae: Any, dataset: ShardDataset) -> list[np.ndarray]:
    """Originals above their reconstructions (posterior mean), for the checkpoint's validation.png."""
    picks = dataset.samples[:: max(1, len(dataset.samples) // PREVIEW_SAMPLES)][:PREVIEW_SAMPLES]
    pixels = load_batch(picks, latents=False, condition=False)["pixels"]
    recon = vae.decode(vae.encode(pixels).latent_dist.mean).sample
    as_images = [((x.clamp(-1, 1) + 1) / 2).permute(1, 2, 0).numpy() for x in (*pixels, *recon)]
    return as_images


@torch.no_grad()
def evaluation_loss(vae: Any, dataset: ShardDataset) -> float:
    """L1 reconstruction (posterior mean) of the first EVAL_SAMPLES whole images: comparable over time."""
    pixels = load_batch(dataset.samples[:EVAL_SAMPLES], latents=False, condition=False)["pixels"]
    was_training = vae.training
    vae.eval()
    try:
        return float((vae.decode(vae.encode(pixels).latent_dist.mean).sample - pixels).abs().mean())
    finally:
        vae.train(was_training)


@torch.no_grad()
def latent_scale(vae: Any, dataset: ShardDataset) -> float:
    picks = dataset.samples[:: max(1, len(dataset.samples) // SCALE_SAMPLES)][:SCALE_SAMPLES]
    latents = [
        vae.encode(load_batch([s], latents=False, condition=False)["pixels"]).latent_dist.mean for s in picks
    ]
    return float(1.0 / torch.cat(latents).std())


def fit_vae(cfg: FitConfig, stop: Any) -> int:
    from inference_server.models import model_hash

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ValueError("--train vae: runs as one process (not under accelerate launch)")
    torch.set_num_threads(cfg.threads or default_threads())
    torch.manual_seed(cfg.seed)
    components = load_components(cfg.base_model, controlnet=False)
    vae = components.vae
    vae.requires_grad_(True)
    dataset = ShardDataset(cfg.dataset, need=("png",))
    base_hash = model_hash(cfg.base_model)
    identity = {
        **cfg.identity(),
        "dataset_sha256": dataset.manifest["dataset_sha256"],
        "base_model_sha256": base_hash,
        "world_size": 1,
    }
    claim(cfg.out, identity, cfg.resume, write=True)
    params = trainable_parameters(vae)
    optimizer = torch.optim.AdamW(list(params.values()), lr=cfg.lr, weight_decay=1e-2)
    step, losses = 0, []
    eval_losses: list[list[float]] = [[0, evaluation_loss(vae, dataset)]]
    checkpoint = latest_checkpoint(cfg.out) if cfg.resume else None
    if checkpoint is not None:
        saved, opt_state, state = load_checkpoint(checkpoint)
        with torch.no_grad():
            for name, p in params.items():
                p.copy_(saved[name])
        optimizer.load_state_dict(opt_state)
        step, losses, eval_losses = int(state["step"]), list(state["losses"]), list(state["eval_losses"])
        print(f"resuming {cfg.out} from step {step}", file=sys.stderr)
    step_seconds: list[float] = []
    while step < cfg.steps:
        started = time.perf_counter()
        vae.train()
        total = 0.0
        for a in range(cfg.grad_accum):
            m = step * cfg.grad_accum + a
            indices = dataset.micro_batch(m, cfg.batch_size, cfg.seed)
            pixels = load_batch([dataset.samples[i] for i in indices], latents=False, condition=False)[
                "pixels"
            ]
            gens = [sample_generator(cfg.seed, m, j) for j in range(len(indices))]
            crops = _crops(pixels, cfg.vae_crop, gens)
            loss = vae_loss(vae, crops, sample_generator(cfg.seed, m, len(indices))) / cfg.grad_accum
            torch.autograd.backward(loss)
            total += float(loss.detach())
        torch.nn.utils.clip_grad_norm_(list(params.values()), cfg.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        losses.append(total)
        step_seconds.append(time.perf_counter() - started)
        if step % cfg.checkpoint_every == 0 or step == cfg.steps or stop.raised:
            vae.eval()
            eval_losses.append([step, evaluation_loss(vae, dataset)])
            extras = {"loss.png": loss_curve_png(losses), "validation.png": grid_png(_previews(vae, dataset))}
            state = {"losses": losses, "eval_losses": eval_losses, "step_seconds": step_seconds}
            trainable = {k: v.data for k, v in params.items()}
            save_checkpoint(cfg.out, step, trainable, optimizer.state_dict(), state, extras)
            step_seconds = []
            if stop.raised:
                print(
                    f"stopped by SIGTERM after step {step}; checkpoint saved, continue with --resume",
                    file=sys.stderr,
                )
                return 0
    vae.eval()
    vae.register_to_config(scaling_factor=latent_scale(vae, dataset))
    from training.train.finish import finish_vae_run

    finish_vae_run(cfg, vae, dataset.manifest, base_hash, losses, eval_losses)
    return 0
