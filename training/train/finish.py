"""End of a run: the trained parts in diffusers' formats, the last pictures, the model card (last)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from training.train.base_model import Components
from training.train.export import save_outputs, save_part, write_model_card
from training.train.options import FitConfig
from training.train.run_folder import latest_checkpoint


def finish_run(
    cfg: FitConfig,
    c: Components,
    manifest: dict[str, Any],
    base_hash: str,
    losses: list[float],
    eval_losses: list[list[float]],
    world: int,
) -> None:
    out = Path(cfg.out)
    outputs = save_outputs(out, c.unet, c.text_encoder, c.controlnet, cfg.train, cfg.lora_text_encoder)
    _pictures_and_card(cfg, outputs, manifest, base_hash, losses, eval_losses, world)


def finish_vae_run(
    cfg: FitConfig,
    vae: Any,
    manifest: dict[str, Any],
    base_hash: str,
    losses: list[float],
    eval_losses: list[list[float]],
) -> None:
    outputs = save_part(Path(cfg.out), "vae", vae)
    _pictures_and_card(cfg, outputs, manifest, base_hash, losses, eval_losses, world=1)


def _pictures_and_card(
    cfg: FitConfig,
    outputs: dict[str, str],
    manifest: dict[str, Any],
    base_hash: str,
    losses: list[float],
    eval_losses: list[list[float]],
    world: int,
) -> None:
    """The last checkpoint's pictures beside the outputs, then the card (written last: a run folder with
    a card is complete)."""
    out = Path(cfg.out)
    last = latest_checkpoint(out)
    if last is not None:
        for name in ("validation.png", "loss.png"):
            shutil.copyfile(last / name, out / name)
    write_model_card(
        out,
        base_model=cfg.base_model,
        base_hash=base_hash,
        manifest=manifest,
        dataset=cfg.dataset,
        hyperparameters={**cfg.identity(), "global_batch": cfg.batch_size * world * cfg.grad_accum},
        outputs=outputs,
        steps=len(losses),
        final_loss=losses[-1] if losses else float("nan"),
        eval_losses=eval_losses,
        world_size=world,
    )
