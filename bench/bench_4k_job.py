"""Peak memory and wall time of one 4K shot-aware job, run in process exactly as a worker runs it.

4096x2160 output, depth passes at 4K (EXR, exact synthetic depth) plus a 4K plate (PNG): depth mode,
keyframes every 2 frames with camera-aware reprojection, the tiny model's tiled x4 upscaler, ACEScg
output through OCIO, ZIP EXRs. Prints peak RSS (ru_maxrss) of this process.

    python -m bench.bench_4k_job [--frames 3] [--colorspace acescg]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import shutil
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

from genfx.client import build_request
from genfx.proto import genfx_pb2 as pb
from inference_server.jobs import JobStore
from inference_server.models import ModelRegistry
from inference_server.storage import DataDir
from inference_server.validation import Limits, validate_generate
from inference_server.worker import Worker
from tests.synthetic import render, track, write_depth_exr, write_png


def _store_asset(assets: Path, path: Path) -> str:
    asset_id = hashlib.sha256(path.read_bytes()).hexdigest()
    shutil.move(path, assets / asset_id)
    return asset_id


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=3)
    parser.add_argument("--width", type=int, default=4096)
    parser.add_argument("--height", type=int, default=2160)
    parser.add_argument("--colorspace", default="acescg", choices=["linear_rec709", "acescg"])
    parser.add_argument("--keep", action="store_true", help="keep the data dir")
    args = parser.parse_args()
    w, h = args.width, args.height
    data = DataDir(Path(tempfile.mkdtemp(prefix="genfx-4k-")))
    assets = data.assets.folder
    cam = track(range(1001, 1001 + args.frames), w, h, step=0.05)
    req = build_request(
        prompt="a concrete building collapsing, dust",
        camera=cam,
        frame_start=1001,
        frame_end=1000 + args.frames,
        fps=Fraction(24),
        seed=1,
        steps=2,
        model="tiny",
        width=w,
        height=h,
        keyframe_step=2,
    )
    req.temporal = pb.TEMPORAL_MODE_REPROJECT
    req.output.colorspace = (
        pb.COLOR_SPACE_ACESCG if args.colorspace == "acescg" else pb.COLOR_SPACE_LINEAR_REC709
    )
    t0 = time.perf_counter()
    for sample in cam.samples:
        colour, depth = render(sample, w, h)
        entry = req.conditioning.frames.add(frame=sample.frame)
        entry.plate_asset_id = _store_asset(assets, write_png(data.root / "plate.png", colour))
        entry.depth_asset_id = _store_asset(assets, write_depth_exr(data.root / "depth.exr", depth))
    del colour, depth
    print(f"passes written in {time.perf_counter() - t0:.1f} s; RSS so far {_rss_mb():.0f} MiB")

    registry = ModelRegistry({}, data.models)
    info = registry.info("tiny")
    req = validate_generate(req, Limits(), ["tiny"], "tiny", {"tiny": info.capabilities}, assets=data.assets)
    store = JobStore(data.jobs_db)
    job_id = store.create(req, args.frames)
    worker = Worker("cpu", store, registry, data)
    before = _rss_mb()
    t0 = time.perf_counter()
    assert store.claim_next() == job_id
    worker._run_job(job_id)
    wall = time.perf_counter() - t0
    job = store.get(job_id)
    if job.state != pb.JOB_STATE_SUCCEEDED:
        print(f"job failed: {job.message}")
        return 1
    manifest = json.loads((data.job_dir(job_id) / "manifest.json").read_text())
    print(
        f"{w}x{h}, {args.frames} frames ({sum(f['keyframe'] for f in manifest['frames'])} keyframes),"
        f" mode {manifest['mode']}, upscale {manifest['upscale']}, output {manifest['colour']['output']}"
    )
    print(f"job wall time {wall:.1f} s ({wall / args.frames:.1f} s/frame)")
    print(
        f"peak RSS {_rss_mb():.0f} MiB (before the job: {before:.0f} MiB incl. torch + model + bench passes)"
    )
    print(f"warping error {manifest['temporal_consistency']['value']:.5f}")
    if not args.keep:
        shutil.rmtree(data.root, ignore_errors=True)
    else:
        print(f"data in {data.root}")
    return 0


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    sys.exit(main())
