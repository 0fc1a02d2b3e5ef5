"""What SQLite ``synchronous=FULL`` would cost the job store: a job's state changes (accepted with its
job.json, claimed, one frame recorded, finished) with NORMAL (what the server runs) vs FULL, on the same
disk, in alternating rounds; each with and without the job.json records (the database's own cost).

    python -m bench.bench_sync [--jobs 200] [--rounds 3] [--dir DIR]

DIR (default: a temp folder under the current directory) should be on the disk a data folder would use:
fsync on tmpfs costs nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from genfx.proto import genfx_pb2 as pb
from inference_server.job_records import JobRecords
from inference_server.jobs import JobStore


def one_round(folder: Path, mode: str, jobs: int, records: bool) -> float:
    """Milliseconds per job."""
    store = JobStore(folder / "jobs.sqlite", JobRecords(folder / "jobs") if records else None)
    store._db.execute(f"PRAGMA synchronous={mode}")  # the bench's one reach inside: the setting compared
    request = pb.GenerateRequest(prompt="bench", shot=pb.Shot(frame_start=1001, frame_end=1001))
    started = time.perf_counter()
    for _ in range(jobs):
        job_id = store.create(request, 1)
        store.claim_next()
        frame = pb.FrameInfo(frame=1001, file_name="genfx.1001.exr", sha256="0" * 64, size_bytes=1)
        store.record_frame(job_id, frame)
        store.finish(job_id, pb.JOB_STATE_SUCCEEDED)
    elapsed = time.perf_counter() - started
    store.close()
    return elapsed * 1000 / jobs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", default=".")
    args = parser.parse_args()
    results: dict[str, list[float]] = {
        "NORMAL": [],
        "FULL": [],
        "NORMAL, no job.json": [],
        "FULL, no job.json": [],
    }
    with tempfile.TemporaryDirectory(prefix="genfx-sync-", dir=args.dir) as tmp:
        for r in range(args.rounds):
            for label in results:
                mode = label.split(",")[0]
                folder = Path(tmp) / f"{r}-{label.replace(',', '').replace(' ', '-')}"
                results[label].append(one_round(folder, mode, args.jobs, records="no job.json" not in label))
    median = {label: statistics.median(v) for label, v in results.items()}
    print(f"{args.jobs} jobs x {args.rounds} rounds; ms per job (create + claim + 1 frame + finish), median:")
    for label, ms in median.items():
        print(f"  {label:<20} {ms:7.2f} ms")
    print(f"  FULL / NORMAL, the whole job: {median['FULL'] / median['NORMAL']:.2f}")
    print(
        f"  FULL / NORMAL, database only: {median['FULL, no job.json'] / median['NORMAL, no job.json']:.2f}"
    )
    print(f"  job.json records: {median['NORMAL'] - median['NORMAL, no job.json']:.2f} ms per job")
    return 0


if __name__ == "__main__":
    sys.exit(main())
