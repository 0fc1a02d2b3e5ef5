"""ETL throughput: frames/s per core for decode + colour + crop + condition + caption + shard, against a
raw OpenEXR read of the same files in the same run; Ray Data end to end; VAE latents/s.

    scripts/in_netns.sh .venv/bin/python -m bench.bench_training_etl [--width 960 --height 540]

(Ray must run inside a private network namespace on these machines.) Prints one line per measure and
the numbers docs/training.md extrapolates to 200 GB from.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import OpenEXR
import torch

from training.etl.discover import discover
from training.etl.ingest import IngestSettings, ingest
from training.etl.plan import make_plan
from training.etl.sample import build_sample
from training.synth.generate import SynthSettings, synthesize


def _raw_read(paths: list[Path]) -> None:
    for p in paths:
        with OpenEXR.File(str(p), separate_channels=True) as f:
            for ch in f.channels().values():
                np.asarray(ch.pixels).sum()


def _vae_latents_per_s(config: dict[str, object], size: int, count: int) -> float:
    import diffusers

    d: Any = diffusers  # untyped for mypy --strict
    torch.manual_seed(0)
    vae = d.AutoencoderKL(**config).eval()  # random weights: same FLOPs as the real one
    x = torch.rand(1, 3, size, size) * 2 - 1
    with torch.no_grad():
        vae.encode(x)  # warm-up
        t = time.perf_counter()
        for _ in range(count):
            _ = vae.encode(x).latent_dist.mean
    return count / (time.perf_counter() - t)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=960)
    parser.add_argument("--height", type=int, default=540)
    parser.add_argument("--shots", type=int, default=2)
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--bucket", default="512x512")
    args = parser.parse_args()
    OpenEXR.set_global_thread_count(1)  # per-core numbers: one decode thread
    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="bench_etl_"))
    src = tmp / "src"
    synthesize(src, SynthSettings(shots=args.shots, frames=args.frames, width=args.width, height=args.height))
    frames = discover(src)
    files = [src / f.beauty for f in frames] + [src / p for f in frames for p in f.passes.values()]
    n = len(frames)
    mb = sum(p.stat().st_size for p in files) / 1e6
    mpix = args.width * args.height / 1e6
    print(
        f"input: {n} frames of {args.width}x{args.height} (beauty+depth+motion+mask), {mb / n:.2f} MB/frame"
    )

    t = time.perf_counter()
    _raw_read(files)
    raw = n / (time.perf_counter() - t)
    plan = make_plan([src], {"buckets": [[512, 512]], "shard_size": 64}, 64)
    from training.etl.buckets import parse_bucket

    bucket = [parse_bucket(args.bucket)]
    from training.etl.shot_ranges import depth_files, range_of_files

    ranges = {key: range_of_files(paths) for key, paths in depth_files(plan, [0]).items()}
    t = time.perf_counter()
    for item in plan.shards[0] if plan.shards else []:
        near_far = ranges.get(f"{item.source}/{item.frame.shot}")
        build_sample(plan.sources[item.source], item.frame, bucket, near_far)
    per_core = min(n, len(plan.shards[0])) / (time.perf_counter() - t)
    print(f"raw OpenEXR read (baseline):      {raw:8.2f} frames/s/core")
    print(
        f"ETL sample build (1 core):        {per_core:8.2f} frames/s/core  ({per_core * mpix:.2f} Mpx/s/core)"
    )
    print(f"ratio ETL / raw read:             {per_core / raw:8.3f}")

    t = time.perf_counter()
    ingest(
        [src],
        tmp / "ds",
        IngestSettings(
            buckets=(args.bucket,), shard_size=max(1, n // (2 * args.workers)), workers=args.workers
        ),
    )
    wall = time.perf_counter() - t
    print(f"Ray Data ingest, {args.workers} workers, cold: {n / wall:8.2f} frames/s (incl. Ray start-up)")
    t = time.perf_counter()
    ingest(
        [src], tmp / "ds2", IngestSettings(buckets=(args.bucket,), shard_size=max(1, n // (2 * args.workers)))
    )
    wall = time.perf_counter() - t
    print(
        f"Ray Data ingest, {args.workers} workers, warm: {n / wall:8.2f} frames/s "
        f"({n / wall / args.workers:.2f}/core)"
    )

    tiny = {
        "block_out_channels": [32, 64],
        "down_block_types": ["DownEncoderBlock2D"] * 2,
        "up_block_types": ["UpDecoderBlock2D"] * 2,
        "latent_channels": 4,
    }
    sd2 = {
        "block_out_channels": [128, 256, 512, 512],
        "down_block_types": ["DownEncoderBlock2D"] * 4,
        "up_block_types": ["UpDecoderBlock2D"] * 4,
        "latent_channels": 4,
        "layers_per_block": 2,
    }
    print(f"latents/s, tiny VAE 128px (1 core):     {_vae_latents_per_s(tiny, 128, 20):8.2f}")
    sd2_rate = _vae_latents_per_s(sd2, 256, 2)
    print(
        f"latents/s, SD2-size VAE 256px (1 core): {sd2_rate:8.3f}  "
        f"-> ~{sd2_rate / 9:.4f} at 768px (x9 pixels)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
