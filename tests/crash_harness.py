"""Crash harness: kill -9 the server at seeded random moments, restart it, check that nothing was lost.

Each trial runs a job (and, on upload trials, an asset upload), kills the server at a random delay,
notes what was in flight (a step, a frame file being written by the frame writer's pool, an upload),
restarts it on the same port and checks the invariants:
- the job ends SUCCEEDED with every frame (a FAILED job is a failed trial, whatever its reason);
- every frame in the range exists once under the name the server gave it, opens, carries its own frame
  number and job id, and matches the manifest's sha256; no temp file, no stray file;
- a watcher that stayed attached through the crash saw every stored event once, in order, each live
  progress event after the stored event whose seq it carries, and ended on the final state;
- an interrupted upload leaves no partial asset, and the same bytes upload again to their sha256.

Damage trials kill the server the same way, then damage its database before the restart: the
write-ahead log cut to a random length (0-90%), or junk over the database header. The job must still
end SUCCEEDED with every frame (rebuilt from its job.json and the frames on disk when the database lost
it); junk over the header must be logged with what was rebuilt. A watcher's replay position does not
survive the loss of the database (the rebuilt event log is shorter), so there the watcher need only end
on the final state.

Used by tests/test_crash.py (a few trials) and scripts/crash_suite.py (20+ trials).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from genfx.client import Client, GenFXError, build_request
from genfx.exr import read_frame
from genfx.local_server import LocalServer
from genfx.proto import genfx_pb2 as pb
from genfx.shot import Shot

from .event_order import event_order_problems

KINDS = ("mid-step", "mid-frame-write", "mid-upload", "wal-truncated", "junk-over-header")
DAMAGE = frozenset({"wal-truncated", "junk-over-header"})
WRITER_THREADS = 2


@dataclass
class TrialResult:
    seed: int
    kind: str
    in_flight: list[str] = field(default_factory=list)
    state: str = ""
    frames: int = 0
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_trial(seed: int, workdir: Path, shot: Shot, kind: str | None = None) -> TrialResult:
    rng = random.Random(seed)
    kind = kind or KINDS[seed % len(KINDS)]
    result = TrialResult(seed, kind)
    started = time.monotonic()
    data = workdir / f"trial-{seed}"
    port = free_port()
    frames = rng.randint(3, 5)
    # Big frames for write trials: the EXR write then takes a good share of each frame's time; keyframes
    # every other frame, so in-betweens (made on the writer threads too) are in the pool as well.
    writes = kind == "mid-frame-write"
    size = (1920, 1080) if writes else (64, 64)
    req = build_request(
        prompt=f"crash trial {seed}",
        camera=shot.camera,
        frame_start=shot.frame_start,
        frame_end=shot.frame_start + frames - 1,
        fps=Fraction(24),
        seed=seed,
        steps=rng.randint(3, 6),
        model="tiny",
        width=size[0],
        height=size[1],
        keyframe_step=2 if writes else 0,
        temporal="reproject" if writes else "none",
    )
    # Frames go through the frame writer's pool (writer threads beside the denoising loop): a write trial
    # kills the server while a writer thread is writing, with more frames queued behind it.
    args = ("--frame-writers", str(WRITER_THREADS))
    server = LocalServer(data, port=port, extra_args=args).start()
    seen: list[pb.JobEvent] = []
    try:
        with Client(server.address, timeout=60) as c:
            job = c.submit(req)
            watcher = threading.Thread(target=_watch, args=(server.address, job.id, seen), daemon=True)
            watcher.start()
            upload_file = data / "plate.bin"
            upload_error: list[BaseException] = []
            if kind == "mid-upload":
                upload_file.write_bytes(rng.randbytes(48 << 20))
                uploader = threading.Thread(
                    target=_upload, args=(server.address, upload_file, upload_error), daemon=True
                )
                uploader.start()
            if kind == "mid-upload":
                _wait_for_file(data / "assets", ".upload-*.tmp")  # bytes are arriving right now
            else:
                _wait_for_first_step(c, job.id)
            if kind == "mid-step" or kind in DAMAGE:
                time.sleep(rng.uniform(0.0, 0.5))
            elif kind == "mid-frame-write":
                _wait_for_file(data / "jobs" / job.id, "*.exr.*.tmp")  # an EXR is being written right now
            result.in_flight = _in_flight(data / "jobs" / job.id, data / "assets")
            server.kill()
        if f"{WRITER_THREADS} frame writer thread(s)" not in server.log_path.read_text():
            result.problems.append("the server did not run the frame writer pool")
        if kind in DAMAGE:
            result.in_flight.append(_damage(data / "jobs.sqlite", kind, rng))
        server = LocalServer(data, port=port, extra_args=args).start()
        with Client(server.address, timeout=60) as c:
            final = c.wait(job.id)
            result.state = pb.JobState.Name(final.state)
            result.frames = len(final.frame_infos)
            watcher.join(120)
            result.problems += _check_job(data / "jobs" / job.id, final, req)
            if kind in DAMAGE:
                if not seen or seen[-1].WhichOneof("kind") != "state" or seen[-1].state.state != final.state:
                    result.problems.append("watcher did not end on the final state")
                log = server.log_path.read_text()
                if kind == "junk-over-header" and not ("damaged" in log and "rebuilt" in log):
                    result.problems.append("the restart did not log the damage and what it rebuilt")
            else:
                result.problems += event_order_problems(seen, final)
            if kind == "mid-upload":
                result.problems += _check_upload(c, data / "assets", upload_file)
    finally:
        server.kill()
    result.seconds = time.monotonic() - started
    return result


def _damage(db: Path, kind: str, rng: random.Random) -> str:
    """Damages the database of a killed server; returns what was done."""
    if kind == "wal-truncated":
        wal = Path(f"{db}-wal")
        keep = rng.choice([0.0, rng.uniform(0.0, 0.9)])
        data = wal.read_bytes() if wal.exists() else b""
        wal.write_bytes(data[: int(len(data) * keep)])
        return f"wal-cut-to-{keep:.0%}"
    # A checkpoint first: with the log still there, SQLite reads page 1 from the log and never sees junk
    # over the file's header.
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with db.open("r+b") as f:
        f.write(rng.randbytes(100))
    return "junk-header"


def _watch(address: str, job_id: str, seen: list[pb.JobEvent]) -> None:
    with Client(address, timeout=60) as c:
        seen.extend(c.watch(job_id, retries=600, retry_delay=0.2))  # rides through the restart


def _upload(address: str, path: Path, errors: list[BaseException]) -> None:
    try:
        with Client(address, timeout=60) as c:
            c.upload(path, chunk_size=256 << 10)
    except GenFXError as exc:  # expected when the server dies under it
        errors.append(exc)


def _wait_for_first_step(c: Client, job_id: str) -> None:
    for event in c.watch(job_id):
        if event.WhichOneof("kind") == "progress":
            return


def _wait_for_file(folder: Path, pattern: str, timeout: float = 120.0) -> None:
    """Polls (1 ms) until a file matching `pattern` with some bytes in it exists in `folder`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in folder.glob(pattern):
            try:
                if path.stat().st_size > 0:
                    return
            except FileNotFoundError:  # renamed into place between glob and stat
                continue
        time.sleep(0.001)
    raise TimeoutError(f"no {pattern} appeared in {folder} within {timeout:.0f} s")


def _in_flight(job_dir: Path, assets: Path) -> list[str]:
    seen = []
    if any(p.name.endswith(".tmp") for p in job_dir.glob("*")):
        seen.append("frame-write")
    if any(p.name.startswith(".upload-") for p in assets.glob("*")):
        seen.append("upload")
    return seen or ["step"]


def _check_job(job_dir: Path, job: pb.Job, req: pb.GenerateRequest) -> list[str]:
    if job.state != pb.JOB_STATE_SUCCEEDED:
        return [f"job ended {pb.JobState.Name(job.state)}: {job.message!r}"]
    problems = []
    expected = list(range(req.shot.frame_start, req.shot.frame_end + 1))
    infos = list(job.frame_infos)
    if [i.frame for i in infos] != expected:
        problems.append(f"frames {[i.frame for i in infos]} != {expected}")
    manifest = json.loads((job_dir / "manifest.json").read_text())
    entries = {e["frame"]: e for e in manifest["frames"]}
    if len(entries) != len(manifest["frames"]) or sorted(entries) != expected:
        problems.append(f"manifest frames {[e['frame'] for e in manifest['frames']]}")
    names = {i.file_name for i in infos}
    files = {p.name for p in job_dir.iterdir()} - {"manifest.json", "job.json"}
    if len(names) != len(infos) or files != names:
        problems.append(f"unexpected files: {sorted(files ^ names)}")
    for info in infos:
        path = job_dir / info.file_name
        try:
            pixels, header = read_frame(path)
        except Exception as exc:  # a truncated file fails to open
            problems.append(f"frame {info.frame} does not open: {exc}")
            continue
        if header.get("genfx/frame") != info.frame or header.get("genfx/jobId") != job.id:
            problems.append(f"frame {info.frame} header says frame {header.get('genfx/frame')}")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != info.sha256 or entries.get(info.frame, {}).get("sha256") != digest:
            problems.append(f"frame {info.frame} sha256 differs from the job record or the manifest")
    return problems


def _check_upload(c: Client, assets: Path, path: Path) -> list[str]:
    problems = [f"partial upload left behind: {p.name}" for p in assets.glob(".upload-*")]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    asset = c.upload(path)
    if asset.id != digest:
        problems.append("re-upload id is not the sha256")
    stored = assets / asset.id
    if hashlib.sha256(stored.read_bytes()).hexdigest() != digest:
        problems.append("stored asset bytes differ from the upload")
    return problems
