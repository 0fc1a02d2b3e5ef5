"""FetchFrame throughput for a 4K EXR over loopback, against reading the same file from disk in the
same run. Target: >= 400 MB/s through gRPC.

    python -m bench.bench_fetch [--repeats 5] [--compression none]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

from genfx.client import Client, build_request
from genfx.local_server import LocalServer
from genfx.shot import load_shot

ROOT = Path(__file__).resolve().parent.parent

TARGET_MB_S = 400.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--compression", default="none", choices=["none", "zip", "piz", "dwaa"])
    args = parser.parse_args()
    shot = load_shot(ROOT / "examples" / "shots" / "building_orbit.json")
    work = Path(tempfile.mkdtemp(prefix="genfx-bench-fetch-"))
    with LocalServer(work / "data") as server, Client(server.address, timeout=300) as client:
        req = build_request(
            prompt="4k fetch bench",
            camera=shot.camera,
            frame_start=1001,
            frame_end=1001,
            fps=Fraction(24),
            seed=1,
            steps=1,
            model="tiny",
            width=3840,
            height=2160,
            compression=args.compression,
        )
        job = client.wait(client.submit(req).id)
        source = server.data_dir / "jobs" / job.id / f"genfx.{job.frames[0]:04d}.exr"
        size_mb = source.stat().st_size / 1e6
        grpc_rates, stream_rates, disk_rates = [], [], []
        for i in range(args.repeats):
            t0 = time.perf_counter()
            received = sum(len(chunk.data) for chunk in client.frame_chunks(job.id, job.frames[0]))
            stream_rates.append(received / 1e6 / (time.perf_counter() - t0))
            dest = work / f"fetched-{i}.exr"
            t0 = time.perf_counter()
            client.fetch_frame(job.id, job.frames[0], dest)  # includes the client's sha256 check
            grpc_rates.append(size_mb / (time.perf_counter() - t0))
            t0 = time.perf_counter()
            source.read_bytes()
            disk_rates.append(size_mb / (time.perf_counter() - t0))
            dest.unlink()
    grpc_mb_s, disk_mb_s = statistics.median(grpc_rates), statistics.median(disk_rates)
    stream_mb_s = statistics.median(stream_rates)
    print(f"4K EXR ({args.compression}, {size_mb:.1f} MB), median of {args.repeats}:")
    print(
        f"  FetchFrame stream over loopback (in memory)   : {stream_mb_s:8.1f} MB/s"
        f"  (target >= {TARGET_MB_S:.0f})"
    )
    print(f"  SDK fetch_frame (to disk, sha256 check, fsync): {grpc_mb_s:8.1f} MB/s")
    print(f"  read from disk (baseline)                     : {disk_mb_s:8.1f} MB/s")
    print(
        f"  ratios to disk read: stream {stream_mb_s / disk_mb_s:.3f},"
        f" SDK download {grpc_mb_s / disk_mb_s:.3f}"
    )
    print(f"  stream target met: {'yes' if stream_mb_s >= TARGET_MB_S else 'no'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
