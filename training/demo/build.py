"""``make model``: synth -> ingest -> fit (VAE) -> ingest with cached latents -> fit (UNet + sim
ControlNet) -> assemble, into ``models/demo``. Every stage is a ``genfx-train`` command run as a
subprocess; a stage whose output is finished is skipped, and the fit stages run with ``--resume``, so an
interrupted build continues where it stopped (re-run ``make model``). Wall and CPU seconds of each stage
go to ``BUILD/timings.json`` and into the model card.

Deterministic: fixed seeds, ONE torch thread per process (reproducible float sums; on this shared
2-core box two threads were also 7x slower than one), Ray ingest with one worker. A rebuild on the
same machine reproduces the weights bit for bit (docs/demo_model.md says how that was checked).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from training.demo.recipe import NATIVE_SIZE

ROOT = Path(__file__).resolve().parents[2]
SEED = 0
SHOTS, FRAMES = 32, 12
VAE_STEPS, VAE_BATCH, VAE_LR = 400, 8, 1e-3
DIFFUSION_STEPS, DIFFUSION_BATCH, DIFFUSION_LR = 1000, 8, 5e-4
CHECKPOINT_EVERY = 100


PROCESSES = 2  # the diffusion fit runs as DDP over gloo on the CPU: one process (one thread) per core


def _train(*args: str) -> list[str]:
    return [sys.executable, "-m", "training", *args]


def _ddp(*args: str) -> list[str]:
    launch = ["-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(PROCESSES)]
    launch += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    return [sys.executable, *launch, "--main_process_port", "29581", "-m", "training", *args]


def stages(build: Path, out: Path) -> list[tuple[str, Path, list[str]]]:
    """(name, the file that exists once the stage is finished, command)."""
    bucket = f"{NATIVE_SIZE}x{NATIVE_SIZE}"
    in_netns = [str(ROOT / "scripts" / "in_netns.sh")]  # Ray may only bind loopback here
    fit = ["--threads", "1", "--seed", str(SEED), "--checkpoint-every", str(CHECKPOINT_EVERY), "--resume"]
    return [
        (
            "synth",
            build / "sims" / "source.json",
            _train(
                "synth",
                "--out",
                str(build / "sims"),
                "--shots",
                str(SHOTS),
                "--frames",
                str(FRAMES),
                "--width",
                str(NATIVE_SIZE),
                "--height",
                str(NATIVE_SIZE),
                "--seed",
                str(SEED),
            ),
        ),
        (
            "ingest",
            build / "images" / "manifest.json",
            in_netns
            + _train(
                "ingest",
                str(build / "sims"),
                "--out",
                str(build / "images"),
                "--bucket",
                bucket,
                "--workers",
                "1",
            ),
        ),
        (
            "init-model",
            build / "base" / "model_index.json",
            _train("init-model", "--out", str(build / "base")),
        ),
        (
            "fit-vae",
            build / "vae_run" / "model_card.json",
            _train(
                "fit",
                "--train",
                "vae",
                "--dataset",
                str(build / "images"),
                "--base-model",
                str(build / "base"),
                "--out",
                str(build / "vae_run"),
                "--steps",
                str(VAE_STEPS),
                "--batch-size",
                str(VAE_BATCH),
                "--lr",
                str(VAE_LR),
                *fit,
            ),
        ),
        (
            "assemble-vae",
            build / "stage" / "model_card.json",
            _train(
                "assemble",
                "--base-model",
                str(build / "base"),
                "--part",
                str(build / "vae_run"),
                "--out",
                str(build / "stage"),
            ),
        ),
        (
            "ingest-latents",
            build / "latents" / "manifest.json",
            in_netns
            + _train(
                "ingest",
                str(build / "sims"),
                "--out",
                str(build / "latents"),
                "--bucket",
                bucket,
                "--workers",
                "1",
                "--cache-latents",
                str(build / "stage" / "pipeline"),
            ),
        ),
        (
            "fit-diffusion",
            build / "diffusion_run" / "model_card.json",
            in_netns  # gloo on loopback, away from other users' ports
            + _ddp(
                "fit",
                "--train",
                "unet,controlnet",
                "--dataset",
                str(build / "latents"),
                "--base-model",
                str(build / "stage" / "pipeline"),
                "--out",
                str(build / "diffusion_run"),
                "--steps",
                str(DIFFUSION_STEPS),
                "--batch-size",
                str(DIFFUSION_BATCH // PROCESSES),  # per process
                "--lr",
                str(DIFFUSION_LR),
                # No min-SNR weighting: it nearly ignores the noisiest timesteps, where the layout is
                # decided; with the passes the layout is predictable there (at step 200 of a min-SNR-5
                # run the images still ignored the depth).
                "--snr-gamma",
                "0",
                "--validation-steps",
                "8",
                *fit,
            ),
        ),
        (
            "assemble",
            out / "model_card.json",
            _train(
                "assemble",
                "--base-model",
                str(build / "stage" / "pipeline"),
                "--part",
                str(build / "vae_run"),
                "--part",
                str(build / "diffusion_run"),
                "--out",
                str(out),
                "--fp16",
                "--build-info",
                str(build / "timings.json"),
            ),
        ),
        (
            "card",
            out / "MODEL_CARD.md",
            [sys.executable, "-m", "training.demo.card", "--model", str(out), "--build", str(build)],
        ),
    ]


def run(build: Path, out: Path) -> int:
    build.mkdir(parents=True, exist_ok=True)
    timings_file = build / "timings.json"
    timings = json.loads(timings_file.read_text()) if timings_file.is_file() else {}
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    for name, done, cmd in stages(build, out):
        if done.is_file():
            print(f"[model] {name}: done ({done})", flush=True)
            continue
        print(f"[model] {name}: {' '.join(cmd)}", flush=True)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        result = subprocess.run(cmd, cwd=ROOT, env=env, check=False)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        wall = time.monotonic() - started
        prior = timings.get(name, {"wall_s": 0.0, "cpu_s": 0.0})  # an interrupted stage's earlier part
        timings[name] = {"wall_s": round(prior["wall_s"] + wall, 1), "cpu_s": round(prior["cpu_s"] + cpu, 1)}
        timings_file.write_text(json.dumps(timings, indent=1))
        print(f"[model] {name}: {wall:.0f} s wall, {cpu:.0f} s CPU, exit {result.returncode}", flush=True)
        if result.returncode != 0:
            return result.returncode
    total = {k: round(sum(t[k] for t in timings.values()), 1) for k in ("wall_s", "cpu_s")}
    print(f"[model] all stages: {total['wall_s']:.0f} s wall, {total['cpu_s']:.0f} s CPU", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.demo.build", description=__doc__)
    p.add_argument("--build", type=Path, default=ROOT / "build" / "demo_model", help="working folder")
    p.add_argument("--out", type=Path, default=ROOT / "models" / "demo", help="the assembled model")
    p.add_argument("--clean", action="store_true", help="start from nothing (removes --build and --out)")
    args = p.parse_args(argv)
    if args.clean:
        shutil.rmtree(args.build, ignore_errors=True)
        shutil.rmtree(args.out, ignore_errors=True)
    return run(args.build, args.out)


if __name__ == "__main__":
    sys.exit(main())
