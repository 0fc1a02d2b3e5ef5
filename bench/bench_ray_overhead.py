"""What the Ray path costs per frame against the local worker on this CPU, and the throughput model
(1 / 2 / 8 / 32 GPUs) of docs/ray.md built from what it measures.

Run it inside a private network namespace (Ray binds to loopback only there):

    scripts/in_netns.sh .venv/bin/python -m bench.bench_ray_overhead [--repeats 5] [--gpu-frame-s 6.3]

Both paths run the same jobs through a real server in this process (tiny model), one after the other,
with one torch thread each: a Ray actor with num_cpus=1 runs with OMP_NUM_THREADS=1, and the local worker
is set to match. Each path first runs a one-frame job (the model loads), then:

- slow frames (steps calibrated so a local frame takes >= 1 s): seconds per frame on each path, overhead %;
- fast frames (64 px, 1 step): the fixed per-frame cost of each path; their difference is what Ray adds
  to every frame (dispatch, progress and pixels through the object store, on one machine);
- the EXR encode per frame at 1080p and 4K (done on the actor, beside the GPU) and the head's own work
  per frame (atomic write of the bytes, fsync, rename, record): the ceiling of the one writer.

Both servers stay up and their jobs alternate (``--repeats`` pairs): this machine is shared, and two jobs
run one after the other see about the same load, so the overhead is the median of the pairs' ratios.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from fractions import Fraction
from pathlib import Path

import numpy as np

from genfx.client import Client, build_request
from genfx.proto import genfx_pb2 as pb
from genfx.shot import Shot, load_shot
from inference_server.ray_executor import RayOptions
from inference_server.server import GenFXServer, ServerConfig

ROOT = Path(__file__).resolve().parent.parent
NETWORK_BYTES_S = 1.1e9  # 10 GbE, what a farm node usually has: EXR bytes cross it from actor to head
EXR_RATIO = 1.0  # EXR size / raw half RGBA: 1 is the worst case (noise barely compresses; photos do)


def request(shot: Shot, frames: int, steps: int, size: int = 64, seed: int = 3) -> pb.GenerateRequest:
    return build_request(
        prompt="dust",
        camera=shot.camera,
        frame_start=shot.frame_start,
        frame_end=shot.frame_start + frames - 1,
        fps=Fraction(24),
        seed=seed,
        steps=steps,
        model="tiny",
        width=size,
        height=size,
    )


def run_job(client: Client, req: pb.GenerateRequest) -> float:
    started = time.perf_counter()
    job = client.wait(client.submit(req).id)
    if job.state != pb.JOB_STATE_SUCCEEDED:
        raise SystemExit(f"job failed: {job.message}")
    return time.perf_counter() - started


@contextmanager
def serving(config: ServerConfig) -> Iterator[Client]:
    server = GenFXServer(config)
    server.start()
    try:
        deadline = time.monotonic() + 120
        while not server.executor.can_run():
            if time.monotonic() > deadline:
                raise SystemExit("no render actor became ready")
            time.sleep(0.1)
        with Client(f"127.0.0.1:{server.port}", timeout=120) as client:
            yield client
    finally:
        server.stop(grace=1)


def encode_and_write_s(width: int, height: int, repeats: int = 3) -> tuple[float, float]:
    """(encode, write) seconds for one frame at this size: the EXR encode (ZIP) where the frame was
    rendered, then the head's atomic write (fsync, rename) and record."""
    from inference_server.frame_writer import FrameEncoder, FrameWriter, job_header
    from inference_server.jobs import JobStore

    shot = load_shot(ROOT / "examples" / "shots" / "building_orbit.json")
    folder = Path(tempfile.mkdtemp(prefix="genfx-write-"))
    store = JobStore(folder / "jobs.sqlite")
    req = request(shot, frames=repeats, steps=1, size=64)
    req.output.width, req.output.height = width, height
    job_id = store.create(req, repeats)
    header = job_header(job_id, req, "0" * 64)
    encoder, writer = FrameEncoder(header), FrameWriter(store, folder / job_id, header)
    rgba = np.random.default_rng(0).random((height, width, 4), dtype=np.float32).astype(np.float16)
    encodes, writes = [], []
    for i in range(repeats):
        started = time.perf_counter()
        encoded = encoder.encode(shot.frame_start + i, rgba, True)
        encodes.append(time.perf_counter() - started)
        started = time.perf_counter()
        writer.write(encoded)
        writes.append(time.perf_counter() - started)
    store.close()
    return min(encodes), min(writes)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument(
        "--gpu-frame-s",
        type=float,
        default=6.3,
        help="one frame on one GPU for the model (default: SD 2.1 768², 50 steps, RTX A5000)",
    )
    args = parser.parse_args()

    import ray
    import torch
    from ray.cluster_utils import Cluster

    torch.set_num_threads(1)  # what a num_cpus=1 actor gets
    shot = load_shot(ROOT / "examples" / "shots" / "building_orbit.json")
    temp = Path(tempfile.mkdtemp(prefix="genfx-ray-bench-"))
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "include_dashboard": False, "temp_dir": str(temp / "ray")},
    )
    ray.init(address=cluster.address, log_to_driver=False)
    local = ServerConfig(port=0, data_dir=temp / "local", devices=["cpu"])
    on_ray = ServerConfig(
        port=0,
        data_dir=temp / "ray-data",
        ray=RayOptions(address=cluster.address, cpu_actors_per_node=1, cache_dir=temp / "ray-cache"),
    )

    with ExitStack() as stack:
        clients = {
            name: stack.enter_context(serving(config)) for name, config in (("local", local), ("ray", on_ray))
        }
        for client in clients.values():
            run_job(client, request(shot, 1, 2))  # warm: model loaded, actor ready
        # Calibrate: steps for >= 1 s a frame on the local path.
        per_step = run_job(clients["local"], request(shot, 1, 40)) / 40
        steps = max(40, math.ceil(1.1 / per_step))
        print(f"calibration: {per_step * 1000:.1f} ms a step locally -> {steps} steps a frame")
        # Both servers stay up; their jobs alternate, so each pair of runs sees the same load.
        results: dict[str, list[float]] = {"local slow": [], "ray slow": [], "local fast": [], "ray fast": []}
        fast_n = 24
        for repeat in range(args.repeats):
            order = ("local", "ray") if repeat % 2 == 0 else ("ray", "local")
            for name in order:
                slow = run_job(clients[name], request(shot, args.frames, steps, seed=repeat))
                results[f"{name} slow"].append(slow / args.frames)
            for name in order:
                fast = run_job(clients[name], request(shot, fast_n, 1, seed=100 + repeat))
                results[f"{name} fast"].append(fast / fast_n)
    ratios = sorted(r / loc for r, loc in zip(results["ray slow"], results["local slow"], strict=True))
    overhead = statistics.median(ratios) - 1
    med = {k: statistics.median(v) for k, v in results.items()}
    added = med["ray fast"] - med["local fast"]
    print(
        f"slow frames ({steps} steps, {args.frames} a job, {args.repeats} pairs):"
        f" local {med['local slow']:.3f} s/frame, ray {med['ray slow']:.3f} s/frame (medians)"
    )
    print(
        f"  -> Ray overhead {overhead * 100:+.1f} % (median of the pairs; pairs ranged"
        f" {(ratios[0] - 1) * 100:+.1f} % to {(ratios[-1] - 1) * 100:+.1f} %; target <= 5 %)"
    )
    print(
        f"fast frames (64 px, 1 step): local {med['local fast'] * 1000:.1f} ms/frame,"
        f" ray {med['ray fast'] * 1000:.1f} ms/frame -> Ray adds {added * 1000:.1f} ms a frame"
    )
    sizes = {"1080p": (1920, 1080), "4K": (4096, 2160)}
    costs = {name: encode_and_write_s(w, h) for name, (w, h) in sizes.items()}
    for name, (encode_s, write_s) in costs.items():
        w, h = sizes[name]
        print(
            f"{name}: encode on the actor {encode_s * 1000:.0f} ms,"
            f" head write + record {write_s * 1000:.0f} ms"
            f" ({w * h * 8 / 1e6:.0f} MB of raw half RGBA)"
        )
    ray.shutdown()
    cluster.shutdown()  # type: ignore[no-untyped-call]  # ray.cluster_utils is untyped

    # Throughput model: G actors each make a frame every gpu_frame_s + encode + what Ray adds; the head
    # takes every frame's bytes off the network and writes it, one at a time in the worst case.
    print()
    print(f"throughput model, {args.gpu_frame_s:g} s a frame on one GPU, frames/minute:")
    print("| GPUs | 1080p | 4K | limited by |")
    print("|---|---|---|---|")
    ray_added_s = max(0.0, overhead) * med["local slow"]  # what Ray added to a >= 1 s frame
    for gpus in (1, 2, 8, 32):
        row, limits = [str(gpus)], []
        for name, (w, h) in sizes.items():
            encode_s, write_s = costs[name]
            render = gpus / (args.gpu_frame_s + encode_s + ray_added_s)
            head = 1 / (write_s + w * h * 8 * EXR_RATIO / NETWORK_BYTES_S)
            row.append(f"{min(render, head) * 60:.0f}")
            if head < render:
                limits.append(f"the head at {name}")
        row.append(", ".join(limits) or "GPUs")
        print("| " + " | ".join(row) + " |")
    for name, (w, h) in sizes.items():
        write_s = costs[name][1]
        ceiling = 60 / (write_s + w * h * 8 * EXR_RATIO / NETWORK_BYTES_S)
        print(f"the head's ceiling at {name}: {ceiling:.0f} frames/minute")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
