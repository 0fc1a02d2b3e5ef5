"""The training loop on accelerate: one process or DDP over N processes/machines, checkpoints, resume.

Every process computes the same deterministic schedule (training/train/data.py) and takes its slice of
each global batch; DDP averages the gradients, so N processes with batch b make the same update as one
process with batch N*b (up to float summation order). SIGTERM on any process stops all of them after
the current optimizer step, with a checkpoint; ``--resume`` continues from the newest checkpoint,
including after kill -9 (then the work since that checkpoint is redone, identically).
"""

from __future__ import annotations

import contextlib
import hashlib
import signal
import sys
import time
from typing import Any

import torch

from training.train.base_model import (
    Components,
    Trainee,
    add_lora,
    load_components,
    trainable_parameters,
    unzero_controlnet,
)
from training.train.data import ShardDataset, load_batch
from training.train.evaluate import evaluation_loss
from training.train.objective import (
    noise_and_timesteps,
    prediction_type,
    sample_generator,
    snr_weights,
    target_for,
    weighted_mse,
)
from training.train.options import FitConfig, default_threads
from training.train.preview import grid_png, loss_curve_png
from training.train.run_folder import claim, latest_checkpoint, load_checkpoint, save_checkpoint


class _Sigterm:
    """Notes a SIGTERM (acted on between steps); restores the previous handler when the run ends."""

    def __init__(self) -> None:
        self.raised = False
        self._previous = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        self.raised = True

    def restore(self) -> None:
        signal.signal(signal.SIGTERM, self._previous)


def _dtype(mixed_precision: str) -> torch.dtype:
    return {"fp16": torch.float16, "bf16": torch.bfloat16}.get(mixed_precision, torch.float32)


def fit(cfg: FitConfig) -> int:
    stop = _Sigterm()
    try:
        if cfg.train == ("vae",):
            from training.train.vae_loop import fit_vae

            return fit_vae(cfg, stop)
        return _fit(cfg, stop)
    finally:
        stop.restore()


def _fit(cfg: FitConfig, stop: _Sigterm) -> int:
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    torch.set_num_threads(cfg.threads or default_threads())
    accelerator = Accelerator(
        # Without a GPU, a multi-process launch (torchrun env) is DDP over gloo on the CPU.
        cpu=not torch.cuda.is_available(),
        mixed_precision=cfg.mixed_precision,
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=False)],
    )
    rank, world = accelerator.process_index, accelerator.num_processes
    main = accelerator.is_main_process

    from inference_server.models import model_hash  # the server's own definition of a model's hash

    # New weights (LoRA matrices, the ControlNet's condition encoder) come from the global RNG: seed
    # it, so a run is reproducible and a resumed run is the same run.
    torch.manual_seed(cfg.seed)
    components = load_components(cfg.base_model, controlnet="controlnet" in cfg.train)
    dataset = ShardDataset(cfg.dataset, need=("json", "cond.npy") if "controlnet" in cfg.train else ("json",))
    base_hash = model_hash(cfg.base_model)
    manifest = dataset.manifest
    identity = {
        **cfg.identity(),
        "dataset_sha256": manifest["dataset_sha256"],
        "base_model_sha256": base_hash,
        "world_size": world,
    }
    claim(cfg.out, identity, cfg.resume, write=False)  # every process checks before anyone writes
    accelerator.wait_for_everyone()
    if main:
        claim(cfg.out, identity, cfg.resume, write=True)
    accelerator.wait_for_everyone()

    use_cache = (
        cfg.use_latent_cache
        and dataset.has_latents
        and not cfg.lora_text_encoder
        and manifest["settings"].get("latent_model_sha256") == base_hash
    )
    if "lora" in cfg.train:
        add_lora(components, cfg.lora_rank, cfg.lora_text_encoder)
    if "unet" in cfg.train:
        components.unet.requires_grad_(True)
        if components.controlnet is not None:
            unzero_controlnet(components.controlnet)
    if cfg.gradient_checkpointing:
        components.unet.enable_gradient_checkpointing()
        if components.controlnet is not None:
            components.controlnet.enable_gradient_checkpointing()
    trainee = Trainee(components.unet, components.text_encoder, components.controlnet)
    params = trainable_parameters(trainee)

    start_step, losses = 0, []
    checkpoint = latest_checkpoint(cfg.out) if cfg.resume else None
    opt_state = None
    if checkpoint is not None:
        saved, opt_state, state = load_checkpoint(checkpoint)
        missing = set(params) ^ set(saved)
        if missing:
            raise ValueError(f"{checkpoint}: parameters differ from this run's ({len(missing)} names)")
        with torch.no_grad():
            for name, p in params.items():
                p.copy_(saved[name])
        start_step, losses = int(state["step"]), list(state["losses"])
        state_eval = list(state["eval_losses"])
        if main:
            print(f"resuming {cfg.out} from step {start_step}", file=sys.stderr)

    optimizer = torch.optim.AdamW(list(params.values()), lr=cfg.lr, weight_decay=1e-2)
    model, optimizer = accelerator.prepare(trainee, optimizer)
    if opt_state is not None:
        optimizer.load_state_dict(opt_state)
    device, weight_dtype = accelerator.device, _dtype(cfg.mixed_precision)
    components.vae.to(device, dtype=weight_dtype)
    scheduler = components.noise_scheduler
    kind = prediction_type(scheduler, cfg.prediction_type)
    global_batch = cfg.batch_size * world
    num_timesteps = int(scheduler.config.num_train_timesteps)

    def eval_loss() -> float:
        return evaluation_loss(
            trainee,
            components,
            dataset,
            kind=kind,
            seed=cfg.seed,
            use_cache=use_cache,
            snr_gamma=cfg.snr_gamma,
        )

    eval_losses: list[list[float]] = state_eval if checkpoint is not None else [[0, eval_loss()]]
    step = start_step
    step_seconds: list[float] = []
    while step < cfg.steps:
        started = time.perf_counter()
        model.train()
        total = torch.zeros((), device=device)
        for a in range(cfg.grad_accum):
            m = step * cfg.grad_accum + a
            indices = dataset.micro_batch(m, global_batch, cfg.seed)[
                rank * cfg.batch_size : (rank + 1) * cfg.batch_size
            ]
            batch = load_batch(
                [dataset.samples[i] for i in indices],
                latents=use_cache,
                condition=components.controlnet is not None,
            )
            with torch.no_grad():
                if use_cache:
                    latents = batch["latents"].to(device)
                else:
                    latents = components.vae.encode(batch["pixels"].to(device, weight_dtype)).latent_dist.mean
                latents = latents.float() * components.vae.config.scaling_factor
            gens = [sample_generator(cfg.seed, m, rank * cfg.batch_size + j) for j in range(len(indices))]
            noise, t = noise_and_timesteps(latents.cpu(), gens, num_timesteps, cfg.noise_offset)
            noise, t = noise.to(device), t.to(device)
            noisy = scheduler.add_noise(latents, noise, t)
            target = target_for(scheduler, kind, latents, noise, t)
            ids = None
            if not use_cache:
                ids = components.tokenizer(
                    batch["captions"],
                    padding="max_length",
                    truncation=True,
                    max_length=components.tokenizer.model_max_length,
                    return_tensors="pt",
                ).input_ids.to(device)
            sync = contextlib.nullcontext() if a == cfg.grad_accum - 1 else accelerator.no_sync(model)
            with sync:
                pred = model(
                    noisy,
                    t,
                    ids,
                    batch["text_embeds"].to(device) if use_cache else None,
                    batch["condition"].to(device) if "condition" in batch else None,
                )
                loss = (
                    weighted_mse(pred, target, snr_weights(scheduler, t, kind, cfg.snr_gamma))
                    / cfg.grad_accum
                )
                accelerator.backward(loss)
            total += loss.detach()
        accelerator.clip_grad_norm_(list(params.values()), cfg.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        step_seconds.append(time.perf_counter() - started)
        losses.append(float(accelerator.reduce(total, "mean").item()))
        flag = accelerator.reduce(torch.tensor(float(stop.raised), device=device), "sum")
        stopping = bool(flag.item() > 0)
        if step % cfg.checkpoint_every == 0 or step == cfg.steps or stopping:
            eval_losses.append([step, eval_loss()])
            _checkpoint(
                accelerator, cfg, components, trainee, optimizer, step, losses, eval_losses, step_seconds
            )
            step_seconds = []
        if stopping:
            if main:
                print(
                    f"stopped by SIGTERM after step {step}; checkpoint saved, continue with --resume",
                    file=sys.stderr,
                )
            return 0

    accelerator.wait_for_everyone()
    if main:
        from training.train.finish import finish_run

        finish_run(cfg, components, manifest, base_hash, losses, eval_losses, world)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return 0


def _param_digest(trainee: Trainee) -> torch.Tensor:
    """sha256 of this process's trainable weights, as 32 bytes (so processes can compare by gather)."""
    h = hashlib.sha256()
    for name, p in sorted(trainable_parameters(trainee).items()):
        h.update(name.encode())
        h.update(p.detach().float().cpu().numpy().tobytes())
    return torch.tensor(list(h.digest()), dtype=torch.int64)


def _checkpoint(
    accelerator: Any,
    cfg: FitConfig,
    c: Components,
    trainee: Trainee,
    optimizer: Any,
    step: int,
    losses: list[float],
    eval_losses: list[list[float]],
    step_seconds: list[float],
) -> None:
    # DDP keeps every process's weights identical; record each one's digest so that is checkable.
    digests = accelerator.gather(_param_digest(trainee).to(accelerator.device)).view(-1, 32).cpu()
    ranks = [bytes(int(b) for b in row).hex() for row in digests]
    if len(set(ranks)) > 1 and accelerator.is_main_process:
        print(f"WARNING: processes hold different weights at step {step}: {ranks}", file=sys.stderr)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        from training.train.sampling import sample_images

        extras = {"loss.png": loss_curve_png(losses)}
        extras["validation.png"] = grid_png(_validation_images(cfg, c, sample_images))
        trainable = {k: v.data for k, v in trainable_parameters(trainee).items()}
        state = {
            "losses": losses,
            "eval_losses": eval_losses,
            "rank_param_sha256": ranks,
            "step_seconds": step_seconds,  # wall time of each step since the previous checkpoint
        }
        save_checkpoint(cfg.out, step, trainable, optimizer.state_dict(), state, extras)
    accelerator.wait_for_everyone()


def _validation_images(cfg: FitConfig, c: Components, sampler: Any) -> list[Any]:
    dataset = ShardDataset(cfg.dataset, need=("json", "cond.npy") if c.controlnet is not None else ("json",))
    same_size = [s for s in dataset.samples if s.bucket == dataset.samples[0].bucket]
    picks = same_size[:: max(1, len(same_size) // 4)][:4]
    conds = []
    for s in picks:
        cond = load_batch([s], latents=False, condition=c.controlnet is not None).get("condition")
        conds.append(cond)
    was_training = c.unet.training
    c.unet.eval()
    try:
        # Same seed at every checkpoint: the grids show the model changing, not the noise.
        return list(
            sampler(c, [s.caption for s in picks], conds, picks[0].bucket, cfg.validation_steps, cfg.seed)
        )
    finally:
        c.unet.train(was_training)
