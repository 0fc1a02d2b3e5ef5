"""Warping error on a procedural collapse (moving debris): independent / camera-only / motion-aware.

A `genfx-train synth` shot (exact depth and motion vectors; seed 1's first shot is mid-collapse) is
made three ways and every result is measured with the SAME exact flow (camera + depth; moving pixels
along their motion vectors) at the manifests' metric size, so the numbers compare:

1. the reprojection alone: keyframes = the rendered beauty every N frames, in-betweens re-made
   camera-only and motion-aware (no diffusion: only the in-between method differs);
2. through a real server and the tiny model (depth mode, depth + motion passes uploaded):
   independent (every frame diffused), camera-only (keyframes every N, depth passes only) and
   motion-aware (keyframes every N, depth + motion passes); each job's own manifest is printed too.

    python -m bench.bench_motion_warp [--width 192 --height 128 --frames 10 --keyframe-step 3 --steps 4]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from genfx.client import Client, build_request
from genfx.exr import read_frame
from genfx.local_server import LocalServer
from genfx.proto import genfx_pb2 as pb
from genfx.sequences import attach_passes
from genfx.shot import load_shot
from inference_server.engine.metrics import warping_error
from inference_server.engine.motion import ShotFlow
from inference_server.engine.passes import read_depth, read_motion, read_plate
from inference_server.engine.reproject import View
from inference_server.engine.temporal import inbetween, plan_frames
from inference_server.engine.upscale import resize, resize_depth, resize_motion
from inference_server.frame_output import metric_image, metric_size
from training.synth.generate import SynthSettings, synthesize


def exact_flow(shot_dir: Path, frames: list[int], width: int, height: int) -> ShotFlow:
    cam = load_shot(shot_dir / "camera.json")
    depth = {f: resize_depth(read_depth(shot_dir / f"depth.{f}.exr", f), width, height) for f in frames}
    motion = {f: resize_motion(read_motion(shot_dir / f"motion.{f}.exr", f), width, height) for f in frames}
    views = {f: View(cam.camera.sample_at(f), cam.camera.width, cam.camera.height) for f in frames}
    return ShotFlow(width, height, views, depth.__getitem__, motion.__getitem__, depth_test=True)


def oracle(shot_dir: Path, frames: list[int], step: int, flow: ShotFlow) -> dict[str, tuple[float, float]]:
    """{method: (warping error, mean squared error to the rendered frame)} with rendered keyframes."""
    truth = {f: resize(read_plate(shot_dir / f"beauty.{f}.exr", f), flow.width, flow.height) for f in frames}
    out = {"rendered frames": (warping_error([truth[f] for f in frames], frames, flow)[0], 0.0)}
    for name, use_motion in (("camera-only", False), ("motion-aware", True)):
        seq = dict(truth)
        for p in plan_frames(frames, step):
            if not p.keyframe:
                assert p.prev_key is not None and p.next_key is not None
                left, right = (p.prev_key, truth[p.prev_key]), (p.next_key, truth[p.next_key])
                seq[p.frame], _ = inbetween(p.frame, left, right, flow, use_motion=use_motion)
        error = warping_error([seq[f] for f in frames], frames, flow)[0]
        out[name] = (error, float(np.mean([np.square(seq[f] - truth[f]).sum(-1).mean() for f in frames])))
    return out


def served(
    shot_dir: Path, frames: list[int], step: int, steps: int, flow: ShotFlow, out: Path
) -> dict[str, tuple[float, dict[str, object], float]]:
    """{method: (warping error of the written frames, the manifest's temporal_consistency, seconds)}."""
    shot = load_shot(shot_dir / "camera.json")
    results: dict[str, tuple[float, dict[str, object], float]] = {}
    jobs = (
        ("independent", 1, ("depth", "motion")),
        ("camera-only", step, ("depth",)),
        ("motion-aware", step, ("depth", "motion")),
    )
    with LocalServer(out / "server") as server, Client(server.address, timeout=600) as client:
        for name, keyframe_step, kinds in jobs:
            req = build_request(
                prompt="a concrete building collapsing into rubble, dust",
                camera=shot.camera,
                frame_start=frames[0],
                frame_end=frames[-1],
                fps=Fraction(24),
                seed=7,
                steps=steps,
                model="tiny",
                keyframe_step=keyframe_step,
                temporal="reproject" if keyframe_step > 1 else "none",
            )
            attach_passes(req, client, {k: str(shot_dir / f"{k}.####.exr") for k in kinds})
            started = time.perf_counter()
            events = list(client.generate(req))
            seconds = time.perf_counter() - started
            job = client.get_job(events[0].job_id)
            if job.state != pb.JOB_STATE_SUCCEEDED:
                raise RuntimeError(f"{name}: {job.message}")
            folder = server.data_dir / "jobs" / job.id
            images = [
                metric_image(read_frame(folder / f.file_name)[0], "linear_rec709") for f in job.frame_infos
            ]
            manifest = json.loads((folder / "manifest.json").read_text())
            results[name] = (
                warping_error(images, frames, flow)[0],
                manifest["temporal_consistency"],
                seconds,
            )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=192)
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--keyframe-step", type=int, default=3)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1, help="synth seed (1: debris falling from frame 1)")
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="genfx-motion-bench-"))
    settings = SynthSettings(
        shots=1, frames=args.frames, width=args.width, height=args.height, seed=args.seed
    )
    shot_dir = synthesize(out / "collapse", settings)[0]
    frames = list(range(1001, 1001 + args.frames))
    flow = exact_flow(shot_dir, frames, *metric_size(args.width, args.height))
    moving = np.mean([flow.moving(f, f + 1).mean() for f in frames[:-1]])
    print(
        f"procedural collapse: {args.frames} frames at {args.width}x{args.height} (synth seed {args.seed}),"
        f" {moving:.1%} of pixels moving per frame; keyframe step {args.keyframe_step};"
        f" warping error with the exact flow at {flow.width}x{flow.height} (lower is more consistent)"
    )
    print("\n1. reprojection alone (keyframes = the rendered beauty)")
    print(f"   {'method':<16} {'warping error':>14} {'error to truth':>15}")
    for name, (error, to_truth) in oracle(shot_dir, frames, args.keyframe_step, flow).items():
        print(f"   {name:<16} {error:>14.5f} {to_truth:>15.5f}")
    print(f"\n2. served (tiny model, depth mode, {args.steps} steps)")
    results = served(shot_dir, frames, args.keyframe_step, args.steps, flow, out)
    base = results["independent"][0]
    header = f"   {'method':<16} {'warping error':>14} {'vs independent':>15} {'job s':>7}"
    print(f"{header}  manifest: own value / methods compared")
    for name, (error, consistency, seconds) in results.items():
        methods = consistency["methods"]
        compared = methods["values"] if isinstance(methods, dict) else {}
        own = f"{consistency['value']:.5f}"
        print(f"   {name:<16} {error:>14.5f} {error / base:>15.2f} {seconds:>7.1f}  {own} / {compared}")
    print(f"\n(data in {out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
