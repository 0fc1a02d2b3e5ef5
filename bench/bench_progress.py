"""What progress costs: database rows written per job and step-to-client latency.

Runs one 48-frame job (the sample shot, tiny model, small frames) on a local server with a watcher
attached, then reports the rows the job left in the server's database (events and all) and the time
from each progress event's creation on the server to its arrival at the client (same host, same clock).

    python -m bench.bench_progress [--frames 48] [--steps 10]

Run it on two checkouts to compare (point PYTHONPATH at the other checkout; it must have a venv with the
same packages).
"""

from __future__ import annotations

import argparse
import sqlite3
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    shot = load_shot(ROOT / "examples" / "shots" / "building_orbit.json")
    data = Path(tempfile.mkdtemp(prefix="genfx-progress-"))
    latencies: list[float] = []
    kinds: dict[str, int] = {}
    with LocalServer(data) as server, Client(server.address, timeout=60) as client:
        request = build_request(
            prompt="dust",
            camera=shot.camera,
            frame_start=shot.frame_start,
            frame_end=shot.frame_start + args.frames - 1,
            fps=Fraction(24),
            seed=1,
            steps=args.steps,
            model="tiny",
            width=64,
            height=64,
        )
        job = client.submit(request)
        started = time.perf_counter()
        for event in client.watch(job.id):
            kind = event.WhichOneof("kind") or "?"
            kinds[kind] = kinds.get(kind, 0) + 1
            if kind == "progress":
                latencies.append(time.time() - event.time)
        wall = time.perf_counter() - started
        final = client.get_job(job.id)
    with sqlite3.connect(data / "jobs.sqlite") as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        rows = {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables}
    print(f"job {final.id}: {args.frames} frames x {args.steps} steps in {wall:.1f} s, state {final.state}")
    print(f"events seen by the watcher: {kinds}")
    print(f"database rows after the job: {rows} (total {sum(rows.values())})")
    if latencies:
        ms = sorted(x * 1000 for x in latencies)
        p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
        print(
            f"step-to-client latency: median {statistics.median(ms):.2f} ms, p95 {p95:.2f} ms,"
            f" max {ms[-1]:.2f} ms over {len(ms)} progress events"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
