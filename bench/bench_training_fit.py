"""Training throughput (samples/s) of `genfx-train fit` per mode, against a bare diffusers-style step
(UNet forward + backward + AdamW on the same batch, no data loading, no DDP) measured in the same run.

    .venv/bin/python -m bench.bench_training_fit [--size 64 --batch 4 --steps 12]

On the tiny model here; on a GPU box pass --base-model with a real SD 2.x folder and --size 768.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from training.etl.pipeline import run_plan_here
from training.etl.plan import check_or_save_plan, make_plan
from training.synth.generate import SynthSettings, synthesize
from training.train.loop import fit
from training.train.options import FitConfig


def _dataset(tmp: Path, size: int) -> Path:
    """A dataset made by the ETL's own shard tasks, without starting Ray (this bench measures training)."""
    src = tmp / "src"
    synthesize(src, SynthSettings(shots=2, frames=8, width=size * 2, height=size * 3 // 2))
    plan = make_plan([src], {"buckets": [[size, size]], "shard_size": 8}, 8)
    out = tmp / "ds"
    check_or_save_plan(out, plan)
    run_plan_here(plan, out)
    return out


def _bare_step_rate(model_dir: Path, size: int, batch: int, steps: int) -> float:
    import diffusers
    from peft import LoraConfig

    d: Any = diffusers  # untyped for mypy --strict
    unet = d.UNet2DConditionModel.from_pretrained(model_dir, subfolder="unet", local_files_only=True)
    unet.requires_grad_(False)
    unet.add_adapter(
        LoraConfig(
            r=4,
            lora_alpha=4,
            init_lora_weights="gaussian",
            target_modules=["to_k", "to_q", "to_v", "to_out.0"],
        )
    )
    params = [p for p in unet.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    lat = size // 2 if model_dir.name.startswith("tiny") else size // 8
    x = torch.randn(batch, 4, lat, lat)
    emb = torch.randn(batch, 77, unet.config.cross_attention_dim)
    t = torch.randint(0, 1000, (batch,))
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        loss = torch.nn.functional.mse_loss(unet(x, t, emb).sample, x)
        torch.autograd.backward(loss)  # Tensor.backward is untyped for mypy --strict
        opt.step()
        opt.zero_grad()
        times.append(time.perf_counter() - start)
    return batch / statistics.median(times[2:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--base-model", type=Path, default=None)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_fit_"))
    if args.base_model is None:
        from inference_server.tiny_model import ensure_tiny_model

        args.base_model = ensure_tiny_model(tmp / "models")
    dataset = _dataset(tmp, args.size)
    bare = _bare_step_rate(args.base_model, args.size, args.batch, args.steps)
    print(f"bare LoRA UNet step (baseline):  {bare:8.2f} samples/s")
    for mode in ("lora", "controlnet", "unet", "lora,controlnet"):
        out = tmp / f"run-{mode.replace(',', '+')}"
        cfg = FitConfig(
            dataset=dataset,
            base_model=args.base_model,
            out=out,
            train=tuple(sorted(mode.split(","))),
            steps=args.steps,
            batch_size=args.batch,
            checkpoint_every=args.steps,
            validation_steps=1,
        )
        fit(cfg)
        state = json.loads((out / "checkpoints" / f"step-{args.steps:06d}" / "state.json").read_text())
        rate = args.batch / statistics.median(state["step_seconds"][2:])
        print(f"fit --train {mode:16s} {rate:8.2f} samples/s  (x{rate / bare:.2f} of the bare LoRA step)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
