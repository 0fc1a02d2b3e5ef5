"""``genfx-train fit`` options and the FitConfig they make (one place for every training setting)."""

from __future__ import annotations

import argparse
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

TRAIN_KINDS = ("lora", "controlnet", "unet", "vae")
PREDICTION_TYPES = ("model", "epsilon", "v_prediction")
MIXED_PRECISION = ("no", "fp16", "bf16")


@dataclass(frozen=True)
class FitConfig:
    dataset: Path
    base_model: Path
    out: Path
    train: tuple[str, ...] = ("lora",)
    steps: int = 100
    batch_size: int = 1  # per process
    grad_accum: int = 1
    lr: float = 1e-4
    seed: int = 0
    lora_rank: int = 4
    lora_text_encoder: bool = False
    prediction_type: str = "model"  # "model" = what the base model's scheduler says
    snr_gamma: float = 0.0  # 0 = no min-SNR weighting
    noise_offset: float = 0.0
    mixed_precision: str = "no"
    gradient_checkpointing: bool = False
    checkpoint_every: int = 50
    validation_steps: int = 10  # denoising steps of the validation grid
    max_grad_norm: float = 1.0
    use_latent_cache: bool = True
    resume: bool = False
    threads: int = 0  # 0 = this process's share of the machine's cores
    vae_crop: int = 64  # --train vae: side of the random square crop each sample is trained on

    def identity(self) -> dict[str, Any]:
        """What defines the run (a resumed run must match it); not where or how fast it runs."""
        d = asdict(self)
        for k in ("resume", "threads", "out", "dataset", "base_model"):
            d.pop(k)
        return d


def add_fit_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", type=Path, required=True, help="a folder made by genfx-train ingest")
    p.add_argument("--base-model", type=Path, required=True, help="a local diffusers SD 2.x model folder")
    p.add_argument("--out", type=Path, required=True, help="run folder: checkpoints, then the outputs")
    p.add_argument(
        "--train", default="lora", help="comma list of lora, controlnet, unet, or vae alone (default lora)"
    )
    p.add_argument("--steps", type=int, default=100, help="optimizer steps")
    p.add_argument("--batch-size", type=int, default=1, help="per process")
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lora-rank", type=int, default=4)
    p.add_argument("--lora-text-encoder", action="store_true")
    p.add_argument("--prediction-type", choices=PREDICTION_TYPES, default="model")
    p.add_argument("--snr-gamma", type=float, default=0.0, help="min-SNR weighting (5.0 is usual); 0 = off")
    p.add_argument("--noise-offset", type=float, default=0.0)
    p.add_argument("--mixed-precision", choices=MIXED_PRECISION, default="no")
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--checkpoint-every", type=int, default=50)
    p.add_argument("--validation-steps", type=int, default=10)
    p.add_argument(
        "--no-latent-cache", action="store_true", help="encode images even if the dataset has latents"
    )
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: cores / local processes)")
    p.add_argument("--vae-crop", type=int, default=64, help="--train vae: random square crop side (pixels)")


def config_from_args(args: argparse.Namespace) -> FitConfig:
    kinds = tuple(sorted({k.strip() for k in str(args.train).split(",") if k.strip()}))
    unknown = [k for k in kinds if k not in TRAIN_KINDS]
    if unknown or not kinds:
        raise ValueError(
            f"--train: unknown {', '.join(unknown) or '(empty)'} (choose from {', '.join(TRAIN_KINDS)})"
        )
    if "lora" in kinds and "unet" in kinds:
        raise ValueError("--train: lora and unet exclude each other (unet already trains every UNet weight)")
    if "vae" in kinds and len(kinds) > 1:
        raise ValueError(
            "--train: vae trains alone (the diffusion parts learn in its latent space afterwards)"
        )
    for name in ("steps", "batch_size", "grad_accum", "checkpoint_every", "lora_rank", "vae_crop"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')}: must be >= 1 (got {getattr(args, name)})")
    return FitConfig(
        dataset=args.dataset,
        base_model=args.base_model,
        out=args.out,
        train=kinds,
        steps=args.steps,
        batch_size=args.batch_size,
        grad_accum=args.grad_accum,
        lr=args.lr,
        seed=args.seed,
        lora_rank=args.lora_rank,
        lora_text_encoder=args.lora_text_encoder,
        prediction_type=args.prediction_type,
        snr_gamma=args.snr_gamma,
        noise_offset=args.noise_offset,
        mixed_precision=args.mixed_precision,
        gradient_checkpointing=args.gradient_checkpointing,
        checkpoint_every=args.checkpoint_every,
        validation_steps=args.validation_steps,
        use_latent_cache=not args.no_latent_cache,
        resume=args.resume,
        threads=args.threads,
        vae_crop=args.vae_crop,
    )


def default_threads() -> int:
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(1, (os.cpu_count() or 1) // max(1, local))
