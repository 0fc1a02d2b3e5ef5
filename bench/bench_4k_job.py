"""A 4K temporal job's wall time against the sum of its diffusion + upscale time, run in process exactly
as a worker runs it, with the frame writer pool (frames colour, encode, hash, fsync and rename, and
in-betweens reprojected, on writer threads beside the denoising loop) and without it (``--frame-writers
0``: the worker does all of it between two keyframes, as before the pool), interleaved in one run.

4096x2160 output, depth passes at 4K (EXR, exact synthetic depth) plus a 4K plate (PNG): depth mode,
keyframes every ``--keyframe-step`` frames with camera-aware reprojection, the tiny model's tiled x4
upscaler, ACEScg output through OCIO, ZIP EXRs, the server's default steps. Pipelines are loaded before
timing (a running server keeps them), and one untimed keyframe runs first. Prints, per setting: wall,
diffusion + upscale, their ratio (target <= 1.10 with the pool), the time after the last keyframe's
diffusion + upscale (the frames that wait on that keyframe: no pool hides it, and in a short job it is
much of the ratio; a long shot spreads it thin) and the ratio without it (what a long shot tends to),
peak RSS during the job.

Both with torch on every core (this CPU server: the diffusion itself keeps every core busy, so nothing
is left to write frames beside it) and with torch on one core less than the machine has (a GPU box: the
device denoises, the CPU cores are free for the writers).

``--device-seconds T [T ...]`` adds a GPU-box stand-in for each T: torch on one core less, and every
keyframe's upscale stage ends with T seconds in which the worker thread waits with the GIL released and
the CPU idle, as a worker waits on a device (the T counts as diffusion + upscale time). It measures
whether the pool hides a frame's CPU side behind a device keyframe of that length; it is not a GPU
measurement (``bench_gpu_sd2`` is), and the T are assumptions the output states.

    python -m bench.bench_4k_job [--frames 5] [--keyframe-step 2] [--rounds 1] [--writers N]
                                 [--device-seconds 5 10 20]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import torch

from genfx.client import build_request
from genfx.proto import genfx_pb2 as pb
from inference_server import defaults
from inference_server.engine import modes
from inference_server.engine.mode import StageTime
from inference_server.frame_writer import WriterSettings
from inference_server.jobs import JobStore
from inference_server.models import ModelRegistry
from inference_server.step_times import StepTimes
from inference_server.storage import DataDir
from inference_server.validation import Limits, validate_generate
from inference_server.worker import Worker
from tests.synthetic import render, track, write_depth_exr, write_png


class _Totals(StepTimes):
    """StepTimes that also sums the time of every stage it hears of (diffusion, upscale).

    With ``device_seconds``, each keyframe's last stage (its upscale) is followed by that long a wait in
    the worker's thread: a stand-in for a device's share of the keyframe, CPU idle, GIL released."""

    def __init__(self, device_seconds: float = 0.0) -> None:
        super().__init__()
        self.device_seconds = device_seconds
        self.seconds = 0.0
        self.last_done = 0.0  # perf_counter when the last stage ended

    def record(self, model: str, stage: StageTime) -> None:
        super().record(model, stage)
        self.seconds += stage.seconds
        if self.device_seconds and stage.stage == modes.UPSCALE_X4:
            time.sleep(self.device_seconds)  # called on the worker thread, between two keyframes
            self.seconds += self.device_seconds
        self.last_done = time.perf_counter()


class _PeakRss:
    """Peak resident memory of this process while it is running (polled every 20 ms)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        page = 4096
        while not self._stop.is_set():
            with open("/proc/self/statm") as f:
                self.peak = max(self.peak, int(f.read().split()[1]) * page)
            self._stop.wait(0.02)

    def __enter__(self) -> _PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Run:
    label: str
    wall: float
    critical: float  # diffusion + upscale
    tail: float  # after the last diffusion/upscale: the frames that wait for the last keyframe
    peak_rss: int

    @property
    def ratio(self) -> float:
        return self.wall / self.critical

    @property
    def steady_ratio(self) -> float:
        """The ratio without the tail: what each keyframe's span costs, the ratio a long shot tends to."""
        return (self.wall - self.tail) / self.critical


def _store_asset(assets: Path, path: Path) -> str:
    asset_id = hashlib.sha256(path.read_bytes()).hexdigest()
    shutil.move(path, assets / asset_id)
    return asset_id


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--keyframe-step", type=int, default=2)
    parser.add_argument("--width", type=int, default=4096)
    parser.add_argument("--height", type=int, default=2160)
    parser.add_argument("--steps", type=int, default=defaults.STEPS, help="default: the server's")
    parser.add_argument("--rounds", type=int, default=1, help="serial/pooled pairs, interleaved")
    parser.add_argument("--writers", type=int, help="writer threads with the pool (default: the server's)")
    parser.add_argument("--colorspace", default="acescg", choices=["linear_rec709", "acescg"])
    parser.add_argument(
        "--device-seconds",
        type=float,
        nargs="*",
        default=[],
        metavar="T",
        help="GPU-box stand-ins: T s of idle device wait per keyframe, torch on one core less",
    )
    parser.add_argument(
        "--stand-ins-only",
        action="store_true",
        help="only the --device-seconds settings (no CPU-server ones)",
    )
    args = parser.parse_args()
    w, h = args.width, args.height
    data = DataDir(Path(tempfile.mkdtemp(prefix="genfx-4k-")))
    try:
        return _bench(args, data, w, h)
    finally:
        shutil.rmtree(data.root, ignore_errors=True)


def _bench(args: argparse.Namespace, data: DataDir, w: int, h: int) -> int:
    cam = track(range(1001, 1001 + args.frames), w, h, step=0.05)
    req = build_request(
        prompt="a concrete building collapsing, dust",
        camera=cam,
        frame_start=1001,
        frame_end=1000 + args.frames,
        fps=Fraction(24),
        seed=1,
        steps=args.steps,
        model="tiny",
        width=w,
        height=h,
        keyframe_step=args.keyframe_step,
    )
    req.temporal = pb.TEMPORAL_MODE_REPROJECT
    req.output.colorspace = (
        pb.COLOR_SPACE_ACESCG if args.colorspace == "acescg" else pb.COLOR_SPACE_LINEAR_REC709
    )
    for sample in cam.samples:
        colour, depth = render(sample, w, h)
        entry = req.conditioning.frames.add(frame=sample.frame)
        assets = data.assets.folder
        entry.plate_asset_id = _store_asset(assets, write_png(data.root / "plate.png", colour))
        entry.depth_asset_id = _store_asset(assets, write_depth_exr(data.root / "depth.exr", depth))
    registry = ModelRegistry({}, data.models)
    info = registry.info("tiny")
    req = validate_generate(req, Limits(), ["tiny"], "tiny", {"tiny": info.capabilities}, assets=data.assets)
    for mode in ("txt2img", "img2img", "depth", "upscale_x4"):  # a running server has them loaded
        registry.load("tiny", "cpu", mode)
    store = JobStore(data.jobs_db)

    pooled = WriterSettings.for_threads(args.writers)
    cores = os.cpu_count() or 2
    serial = WriterSettings(0, 1)
    variants = (
        []
        if args.stand_ins_only
        else [
            (f"torch on {threads} core(s), {label}", threads, settings, 0.0)
            for threads in sorted({cores, max(1, cores - pooled.threads)}, reverse=True)
            for label, settings in (("serial (--frame-writers 0)", serial), ("writer pool", pooled))
        ]
    )
    feeder = max(1, cores - pooled.threads)  # the threads a GPU box's worker uses to feed its device
    variants += [
        (f"stand-in device {t:g} s/keyframe, {label}", feeder, settings, t)
        for t in args.device_seconds
        for label, settings in (("serial", serial), ("writer pool", pooled))
    ]
    # One untimed keyframe first: the first diffusion and upscale calls pay one-off costs (kernel
    # selection, allocator growth) that would otherwise land on whichever setting runs first.
    warm = pb.GenerateRequest()
    warm.CopyFrom(req)
    warm.shot.frame_end = warm.shot.frame_start
    warm_id = store.create(warm, 1)
    assert store.claim_next() == warm_id
    Worker("cpu", store, registry, data, writers=WriterSettings(0, 1))._run_job(warm_id)
    shutil.rmtree(data.job_dir(warm_id), ignore_errors=True)

    runs: list[Run] = []
    for _ in range(args.rounds):
        for label, threads, settings, device_seconds in variants:
            torch.set_num_threads(threads)
            totals = _Totals(device_seconds)
            worker = Worker("cpu", store, registry, data, writers=settings, step_times=totals)
            job_id = store.create(req, args.frames)
            assert store.claim_next() == job_id
            with _PeakRss() as rss:
                started = time.perf_counter()
                outcome = worker._run_job(job_id)
                ended = time.perf_counter()
                wall = ended - started
            if outcome.state != pb.JOB_STATE_SUCCEEDED:
                print(f"job failed: {outcome.message}")
                return 1
            runs.append(Run(label, wall, totals.seconds, ended - totals.last_done, rss.peak))
            shutil.rmtree(data.job_dir(job_id), ignore_errors=True)

    keyframes = len(range(0, args.frames, args.keyframe_step)) + ((args.frames - 1) % args.keyframe_step > 0)
    print(
        f"{w}x{h}, {args.frames} frames ({keyframes} keyframes, keyframe step {args.keyframe_step}),"
        f" depth + plate, temporal reprojection, x4 upscale, {args.colorspace}, {args.steps} steps,"
        f" {pooled.threads} writer thread(s) in the pool:"
    )
    for label in dict.fromkeys(r.label for r in runs):
        mine = [r for r in runs if r.label == label]
        ratio = statistics.median(r.ratio for r in mine)
        steady = statistics.median(r.steady_ratio for r in mine)
        print(
            f"  {label:<48} wall {statistics.median(r.wall for r in mine):6.1f} s,"
            f" diffusion + upscale {statistics.median(r.critical for r in mine):6.1f} s,"
            f" ratio {ratio:.2f}, after the last keyframe {statistics.median(r.tail for r in mine):5.1f} s"
            f" (ratio without it {steady:.2f}), peak RSS {max(r.peak_rss for r in mine) / 2**20:.0f} MiB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
