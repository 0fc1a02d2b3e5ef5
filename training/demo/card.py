"""The demo model's human-readable card: MODEL_CARD.md, loss.png (both fit runs) and samples.png
(held-out frames: ground truth, the depth pass, generated with the passes, generated from text only).

Written by the last stage of ``make model`` from the assembled folder and the build folder's runs.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from genfx.model_card import CARD_FILE
from training.demo import evaluate
from training.train.preview import grid_png, loss_curve_png
from training.train.run_folder import latest_checkpoint

CARD_MD = "MODEL_CARD.md"
SAMPLE_SHOTS, SAMPLE_FRAMES = 4, 1


def _losses(run: Path) -> list[float]:
    last = latest_checkpoint(run)
    if last is None:
        return []
    return list(json.loads((last / "state.json").read_text())["losses"])


def loss_png(vae_run: Path, diffusion_run: Path) -> bytes:
    panels = [Image.open(io.BytesIO(loss_curve_png(_losses(r)))) for r in (vae_run, diffusion_run)]
    out = Image.new("RGB", (sum(p.width for p in panels), max(p.height for p in panels)), "white")
    x = 0
    for p in panels:
        out.paste(p, (x, 0))
        x += p.width
    buf = io.BytesIO()
    out.save(buf, "PNG")
    return buf.getvalue()


def samples(model: Path, work: Path) -> tuple[bytes, dict[str, float]]:
    frames = evaluate.held_out_frames(work / "held_out", SAMPLE_SHOTS, SAMPLE_FRAMES)
    sim, text = evaluate.load_demo(model)
    with_passes, images = evaluate.score(evaluate.sim_generator(sim), frames)
    text_only, text_images = evaluate.score(evaluate.text_generator(text), frames)
    depth = [np.repeat(h.control[..., :1], 3, axis=2) for h in frames]
    rows = [[h.truth for h in frames], depth, images, text_images]
    grid = grid_png([im for row in rows for im in row], columns=len(frames))
    return grid, {"sim passes": with_passes, "text only": text_only}


def _md(card: dict[str, Any], scores: dict[str, float]) -> str:
    build = card.get("build", {})
    wall = sum(float(t["wall_s"]) for t in build.values())
    cpu = sum(float(t["cpu_s"]) for t in build.values())
    runs = "\n".join(
        f"| {', '.join(r['trained'])} | {r['steps']} | {r['hyperparameters'].get('global_batch')} |"
        f" {r['hyperparameters'].get('lr')} |"
        f" {r['eval_loss']['first'][1]:.4f} -> {r['eval_loss']['last'][1]:.4f} |"
        for r in card["runs"]
    )
    stages = "\n".join(f"| {k} | {v['wall_s']:.0f} | {v['cpu_s']:.0f} |" for k, v in build.items())
    return f"""# GenFX demo model

A small SD 2.x-architecture diffusion model (VAE, UNet, CLIP text encoder, and its sim-pass ControlNet)
trained **from scratch, on this repository's procedural collapse renders only** (`genfx-train synth`),
by `make model`. It exists so that `genfx demo` shows what GenFX does; it is not a production model.

- **Data**: {card["dataset"].get("samples")} frames of `genfx-train synth` (seed 0), licence
  {", ".join(card["dataset"].get("licences", []))} (the generator's own output); dataset sha256
  `{card["dataset"].get("sha256")}`.
- **Code**: {card["code_version"]}.
- **Weights**: {card["dtype"]}, safetensors; `model_card.json` lists the sha256 of every file
  (`pipeline/` is the diffusers pipeline, `controlnet/` its sim ControlNet; `models.json` serves them).
- **Text encoder**: frozen at its seeded initial weights (captions are templates such as
  "a concrete building collapsing into rubble, high angle wide shot"); the passes steer the image.
- **Generation**: 8 DDIM steps, guidance 1 (the model never saw an empty prompt), at 128 px native.

## Training

| trained | steps | global batch | lr | evaluation loss |
|---|---|---|---|---|
{runs}

![loss curves: VAE (left), UNet + ControlNet (right)](loss.png)

Build time on the 2-core CPU machine (shared with other work while it ran), total {wall / 60:.0f} min wall,
{cpu / 60:.0f} min CPU:

| stage | wall s | CPU s |
|---|---|---|
{stages}

## Held-out samples

Rows: ground truth (procedural render), the depth pass (inverse depth), generated with the passes
(sim mode), generated from the prompt alone. Shots of synth seed 1, never seen in training. SSIM on luma
at 128 px over these: **{scores["sim passes"]:.3f}** with the passes, {scores["text only"]:.3f} from text
only (`python -m bench.bench_demo_quality` measures more frames, with baselines).

![held-out samples](samples.png)

## Rebuilding

`make model` (about an hour on 2 cores; `make model-resume` continues an interrupted build). Seeds are
fixed and every process runs one torch thread; see docs/demo_model.md for what a rebuild reproduces.
"""


def write_card(model: Path, build: Path) -> None:
    card = json.loads((model / CARD_FILE).read_text())
    (model / "loss.png").write_bytes(loss_png(build / "vae_run", build / "diffusion_run"))
    with tempfile.TemporaryDirectory() as work:
        grid, scores = samples(model, Path(work))
    (model / "samples.png").write_bytes(grid)
    (model / CARD_MD).write_text(_md(card, scores), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.demo.card", description=__doc__)
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--build", type=Path, required=True)
    args = p.parse_args(argv)
    write_card(args.model, args.build)
    return 0


if __name__ == "__main__":
    sys.exit(main())
