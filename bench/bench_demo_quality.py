"""The demo model (models/demo) against the procedural ground truth, and its in-betweens' consistency.

1. SSIM on luma at the native size (128 px) between generated frames and the procedural render at the
   same cameras, on held-out shots (genfx-train synth seed 1; the model was trained on seed 0), through
   the server's sim mode; side by side: the same architecture at its initial random weights (with its
   ControlNet: what ``make model`` starts from), text-only generation (the demo model without its
   passes: txt2img), and the ground truth through the demo VAE and back (the ceiling). Target >= 0.5.
2. Warping error (the exact flow of camera + depth + motion vectors) of a held-out shot served through
   a real server with the demo model: every frame a keyframe (independent) vs keyframes every N with
   motion-aware in-betweens. Target <= 0.5x independent.

    python -m bench.bench_demo_quality [--model models/demo --shots 4 --frames 3]
                                       [--warp-frames 9 --keyframe-step 4]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

from bench.bench_motion_warp import exact_flow
from genfx.client import Client, build_request
from genfx.exr import read_frame
from genfx.local_server import LocalServer
from genfx.proto import genfx_pb2 as pb
from genfx.sequences import attach_passes
from genfx.shot import load_shot
from inference_server.engine.metrics import warping_error
from inference_server.frame_output import metric_image, metric_size
from training.demo import evaluate
from training.demo.recipe import NATIVE_SIZE
from training.synth.generate import SynthSettings, synthesize

ROOT = Path(__file__).resolve().parent.parent
PASSES = ("depth", "motion")  # as genfx demo sends them (a mask pass would become the alpha)


def quality(model: Path, shots: int, frames: int, work: Path) -> dict[str, float]:
    held_out = evaluate.held_out_frames(work / "held_out", shots, frames)
    sim, text = evaluate.load_demo(model)
    runs = {
        "demo model, sim passes": evaluate.sim_generator(sim),
        "demo model, passes w/o mask": evaluate.sim_generator(sim, mask=False),
        "random weights, sim passes": evaluate.sim_generator(evaluate.load_untrained(work)),
        "demo model, text only": evaluate.text_generator(text),
        "ground truth via the VAE": evaluate.vae_roundtrip(sim),
    }
    out = {}
    for name, generate in runs.items():
        started = time.perf_counter()
        out[name], _ = evaluate.score(generate, held_out)
        print(f"   {name:<28} SSIM {out[name]:.3f}   ({time.perf_counter() - started:.0f} s)", flush=True)
    return out


def warp(model: Path, frames: int, step: int, work: Path) -> dict[str, float]:
    size = NATIVE_SIZE
    settings = SynthSettings(shots=1, frames=frames, width=size, height=size, seed=evaluate.HELD_OUT_SEED)
    shot_dir = synthesize(work / "warp", settings)[0]
    numbers = list(range(1001, 1001 + frames))
    flow = exact_flow(shot_dir, numbers, *metric_size(size, size))
    shot = load_shot(shot_dir / "camera.json")
    results = {}
    server_args = ("--models-config", str(model / "models.json"))
    with (
        LocalServer(work / "server", extra_args=server_args) as server,
        Client(server.address, timeout=900) as c,
    ):
        for name, keyframe_step in (("independent", 1), ("motion-aware", step)):
            req = build_request(
                prompt="a concrete building collapsing into rubble",
                camera=shot.camera,
                frame_start=numbers[0],
                frame_end=numbers[-1],
                fps=Fraction(24),
                seed=7,
                steps=evaluate.STEPS,
                guidance=evaluate.GUIDANCE,
                model="demo",
                keyframe_step=keyframe_step,
                temporal="reproject" if keyframe_step > 1 else "none",
            )
            attach_passes(req, c, {k: str(shot_dir / f"{k}.####.exr") for k in PASSES})
            started = time.perf_counter()
            events = list(c.generate(req))
            job = c.get_job(events[0].job_id)
            if job.state != pb.JOB_STATE_SUCCEEDED:
                raise RuntimeError(f"{name}: {job.message}")
            folder = server.data_dir / "jobs" / job.id
            images = [
                metric_image(read_frame(folder / f.file_name)[0], "linear_rec709") for f in job.frame_infos
            ]
            results[name] = warping_error(images, numbers, flow)[0]
            print(
                f"   {name:<16} warping error {results[name]:.5f}   ({time.perf_counter() - started:.0f} s)"
            )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "demo")
    parser.add_argument("--shots", type=int, default=4, help="held-out shots for SSIM")
    parser.add_argument("--frames", type=int, default=3, help="frames per held-out shot for SSIM")
    parser.add_argument("--warp-frames", type=int, default=9)
    parser.add_argument("--keyframe-step", type=int, default=4)
    args = parser.parse_args()
    import torch

    # One thread: on a shared 2-core box two threads ran several times slower (docs/demo_model.md).
    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="genfx-demo-quality-"))
    n = args.shots * args.frames
    print(
        f"1. SSIM on luma at {NATIVE_SIZE} px, {n} held-out frames"
        f" (synth seed {evaluate.HELD_OUT_SEED}),"
        f" {evaluate.STEPS} steps, guidance {evaluate.GUIDANCE:g}; target >= 0.5"
    )
    scores = quality(args.model, args.shots, args.frames, work)
    demo = scores["demo model, sim passes"]
    for name in ("random weights, sim passes", "demo model, text only"):
        print(f"   demo / {name}: {demo / max(scores[name], 1e-6):.2f}x")
    print(
        f"\n2. warping error, {args.warp_frames} held-out frames,"
        f" keyframe step {args.keyframe_step}; target <= 0.5x"
    )
    errors = warp(args.model, args.warp_frames, args.keyframe_step, work)
    print(f"   motion-aware / independent: {errors['motion-aware'] / errors['independent']:.2f}x")
    print(f"\n(data in {work})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
