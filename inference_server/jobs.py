"""Job store: one SQLite database (WAL) under the data dir holds jobs, their frames and their events.

Everything a client can see about a job is derived from here, so a server restarted after a crash
picks up exactly where it was: running jobs are requeued, WatchJob replays the event log.

Durable: jobs, frames, state changes and frame-done events (rows). Live, in memory only: the latest
denoising-step progress of each running job and the cancel flags the workers check between steps, so
a step costs no SQL at all (a cancel is still stored, for a restart to honour).
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from genfx.proto import genfx_pb2 as pb

TERMINAL_STATES = frozenset({pb.JOB_STATE_SUCCEEDED, pb.JOB_STATE_FAILED, pb.JOB_STATE_CANCELLED})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    state INTEGER NOT NULL,
    priority INTEGER NOT NULL,
    request BLOB NOT NULL,
    frames_total INTEGER NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT '',
    model_hash TEXT NOT NULL DEFAULT '',
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    started_at REAL NOT NULL DEFAULT 0,
    finished_at REAL NOT NULL DEFAULT 0,
    last_seq INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_queue ON jobs (state, priority DESC, created_at);
CREATE TABLE IF NOT EXISTS frames (
    job_id TEXT NOT NULL,
    frame INTEGER NOT NULL,
    file_name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    keyframe INTEGER NOT NULL,
    PRIMARY KEY (job_id, frame)
);
CREATE TABLE IF NOT EXISTS events (
    job_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    payload BLOB NOT NULL,
    PRIMARY KEY (job_id, seq)
);
"""


_FRAME_COLUMNS = "frame, file_name, sha256, size_bytes, keyframe"


def _frame_info(row: Sequence[Any]) -> pb.FrameInfo:
    """A ``frames`` row (``_FRAME_COLUMNS``) as the wire's FrameInfo."""
    return pb.FrameInfo(
        frame=row[0], file_name=row[1], sha256=row[2], size_bytes=row[3], keyframe=bool(row[4])
    )


class JobNotFound(KeyError):
    def __init__(self, job_id: str) -> None:
        super().__init__(job_id)
        self.job_id = job_id

    def __str__(self) -> str:
        return f"job_id: no job {self.job_id!r} on this server"


class JobStore:
    """Thread-safe access to the jobs database. One connection, one lock: writes are tiny."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL survives a killed process (the case that matters); frames are fsynced files and
        # are re-recorded from disk at start-up, so a power cut loses no frame either.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.RLock()
        # Notified on every new event and every newly queued job (watchers and workers wait on it).
        self.changed = threading.Condition(self._lock)
        # Called with each new event after it is committed (metrics, logs); must be quick.
        self._listeners: list[Callable[[pb.JobEvent], None]] = []
        self._pending: list[pb.JobEvent] = []  # events of the open transaction, for the listeners
        # Live state (see the module doc), guarded by the same lock.
        self._last_seq: dict[str, int] = {}  # job -> seq of its latest stored event
        self._progress: dict[str, pb.JobEvent] = {}  # running job -> its latest progress event
        self._cancel = {
            str(job_id) for (job_id,) in self._db.execute("SELECT id FROM jobs WHERE cancel_requested = 1")
        }

    def add_listener(self, listener: Callable[[pb.JobEvent], None]) -> None:
        self._listeners.append(listener)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._pending = []
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            self.changed.notify_all()
            events, self._pending = self._pending, []
        for event in events:
            for listener in self._listeners:
                listener(event)

    # ---- events -----------------------------------------------------------------------------------

    def _append_event(self, db: sqlite3.Connection, job_id: str, event: pb.JobEvent) -> pb.JobEvent:
        (seq,) = db.execute("SELECT last_seq + 1 FROM jobs WHERE id = ?", (job_id,)).fetchone()
        event.seq = seq
        event.job_id = job_id
        event.time = time.time()
        db.execute("UPDATE jobs SET last_seq = ? WHERE id = ?", (seq, job_id))
        db.execute(
            "INSERT INTO events (job_id, seq, payload) VALUES (?, ?, ?)",
            (job_id, seq, event.SerializeToString()),
        )
        self._last_seq[job_id] = seq
        self._pending.append(event)
        return event

    def events_since(self, job_id: str, from_seq: int) -> list[pb.JobEvent]:
        with self._lock:
            rows = self._db.execute(
                "SELECT payload FROM events WHERE job_id = ? AND seq >= ? ORDER BY seq", (job_id, from_seq)
            ).fetchall()
        return [pb.JobEvent.FromString(r[0]) for r in rows]

    def latest_progress(self, job_id: str) -> pb.JobEvent | None:
        """The job's latest denoising-step progress while it runs (live; never stored)."""
        with self._lock:
            return self._progress.get(job_id)

    def wait_for_change(self, timeout: float) -> None:
        with self.changed:
            self.changed.wait(timeout)

    # ---- jobs -------------------------------------------------------------------------------------

    def create(self, request: pb.GenerateRequest, frames_total: int) -> str:
        job_id = uuid.uuid4().hex
        with self._tx() as db:
            db.execute(
                "INSERT INTO jobs (id, state, priority, request, frames_total, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    job_id,
                    pb.JOB_STATE_QUEUED,
                    request.priority,
                    request.SerializeToString(),
                    frames_total,
                    time.time(),
                ),
            )
            self._append_event(db, job_id, pb.JobEvent(state=pb.StateChange(state=pb.JOB_STATE_QUEUED)))
        return job_id

    def count_active(self) -> int:
        with self._lock:
            (n,) = self._db.execute(
                "SELECT COUNT(*) FROM jobs WHERE state IN (?, ?)", (pb.JOB_STATE_QUEUED, pb.JOB_STATE_RUNNING)
            ).fetchone()
        return int(n)

    def request(self, job_id: str) -> pb.GenerateRequest:
        with self._lock:
            row = self._db.execute("SELECT request FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFound(job_id)
        return pb.GenerateRequest.FromString(row[0])

    def state(self, job_id: str) -> int:
        with self._lock:
            row = self._db.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFound(job_id)
        return int(row[0])

    def get(self, job_id: str, output_dir: str = "") -> pb.Job:
        jobs = self._jobs("WHERE id = ?", (job_id,), output_dir_for=lambda _id: output_dir)
        if not jobs:
            raise JobNotFound(job_id)
        return jobs[0]

    def list_jobs(
        self, states: Sequence[int], limit: int, output_dir_for: Callable[[str], str] | None = None
    ) -> list[pb.Job]:
        where = ""
        args: tuple[int, ...] = ()
        if states:
            where = f"WHERE state IN ({','.join('?' * len(states))})"
            args = tuple(states)
        return self._jobs(f"{where} ORDER BY created_at DESC LIMIT {int(limit)}", args, output_dir_for)

    def _jobs(
        self, clause: str, args: tuple[object, ...], output_dir_for: Callable[[str], str] | None
    ) -> list[pb.Job]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, state, request, frames_total, progress, message, model_hash, created_at,"
                f" started_at, finished_at, last_seq FROM jobs {clause}",
                args,
            ).fetchall()
            frames = self._frame_infos([r[0] for r in rows])
            live = {r[0]: self._progress[r[0]].progress.fraction for r in rows if r[0] in self._progress}
        result = []
        for r in rows:
            req = pb.GenerateRequest.FromString(r[2])
            infos = frames.get(r[0], [])
            result.append(
                pb.Job(
                    id=r[0],
                    state=r[1],
                    request=req,
                    frames_total=r[3],
                    frames_done=len(infos),
                    progress=live.get(r[0], r[4]),
                    message=r[5],
                    model_hash=r[6],
                    created_at=r[7],
                    started_at=r[8],
                    finished_at=r[9],
                    last_seq=r[10],
                    seed=req.seed,
                    frames=[i.frame for i in infos],
                    frame_infos=infos,
                    output_dir=output_dir_for(r[0]) if output_dir_for else "",
                )
            )
        return result

    def _frame_infos(self, job_ids: list[str]) -> dict[str, list[pb.FrameInfo]]:
        """Every listed job's frames in one query (a temp table holds the ids: no SQL variable limit)."""
        out: dict[str, list[pb.FrameInfo]] = {}
        if not job_ids:
            return out
        self._db.execute("CREATE TEMP TABLE IF NOT EXISTS wanted (id TEXT PRIMARY KEY)")
        self._db.execute("DELETE FROM wanted")
        self._db.executemany("INSERT OR IGNORE INTO wanted (id) VALUES (?)", ((i,) for i in job_ids))
        rows = self._db.execute(
            f"SELECT job_id, {_FRAME_COLUMNS} FROM frames"
            " WHERE job_id IN (SELECT id FROM wanted) ORDER BY job_id, frame"
        ).fetchall()
        for row in rows:
            out.setdefault(row[0], []).append(_frame_info(row[1:]))
        return out

    def best_queued(self) -> tuple[str, int] | None:
        """(id, priority) of the job ``claim_next`` would take now, without taking it."""
        with self._lock:
            row = self._db.execute(
                "SELECT id, priority FROM jobs WHERE state = ? ORDER BY priority DESC, created_at LIMIT 1",
                (pb.JOB_STATE_QUEUED,),
            ).fetchone()
        return None if row is None else (str(row[0]), int(row[1]))

    def claim_next(self) -> str | None:
        """Moves the best queued job (priority, then age) to RUNNING and returns its id."""
        with self._tx() as db:
            row = db.execute(
                "SELECT id FROM jobs WHERE state = ? ORDER BY priority DESC, created_at LIMIT 1",
                (pb.JOB_STATE_QUEUED,),
            ).fetchone()
            if row is None:
                return None
            job_id = str(row[0])
            db.execute(
                "UPDATE jobs SET state = ?, started_at = ?, message = '' WHERE id = ?",
                (pb.JOB_STATE_RUNNING, time.time(), job_id),
            )
            self._append_event(db, job_id, pb.JobEvent(state=pb.StateChange(state=pb.JOB_STATE_RUNNING)))
        return job_id

    def set_model_hash(self, job_id: str, model_hash: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE jobs SET model_hash = ? WHERE id = ?", (model_hash, job_id))

    def progress(self, job_id: str, progress: pb.Progress) -> pb.JobEvent:
        """Publishes a step's progress to watchers and listeners: memory only, no SQL.

        The event carries the seq of the job's latest stored event, so a watcher that reattaches from
        seq + 1 misses no stored event."""
        with self._lock:
            seq = self._last_seq.get(job_id)
            if seq is None:
                (seq,) = self._db.execute("SELECT last_seq FROM jobs WHERE id = ?", (job_id,)).fetchone()
                self._last_seq[job_id] = seq
            event = pb.JobEvent(seq=seq, job_id=job_id, time=time.time(), progress=progress)
            self._progress[job_id] = event
            self.changed.notify_all()
        for listener in self._listeners:
            listener(event)
        return event

    def frames(self, job_id: str) -> dict[int, pb.FrameInfo]:
        with self._lock:
            infos = self._frame_infos([job_id]).get(job_id, [])
        return {i.frame: i for i in infos}

    def frame(self, job_id: str, frame: int) -> pb.FrameInfo | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_FRAME_COLUMNS} FROM frames WHERE job_id = ? AND frame = ?", (job_id, frame)
            ).fetchone()
        return None if row is None else _frame_info(row)

    def record_frame(self, job_id: str, rec: pb.FrameInfo) -> pb.JobEvent:
        """Called after the frame file is durably on disk (fsynced, renamed)."""
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO frames (job_id, frame, file_name, sha256, size_bytes, keyframe)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (job_id, rec.frame, rec.file_name, rec.sha256, rec.size_bytes, int(rec.keyframe)),
            )
            (done,) = db.execute("SELECT COUNT(*) FROM frames WHERE job_id = ?", (job_id,)).fetchone()
            (total,) = db.execute("SELECT frames_total FROM jobs WHERE id = ?", (job_id,)).fetchone()
            db.execute("UPDATE jobs SET progress = ? WHERE id = ?", (done / total, job_id))
            event = pb.JobEvent(
                frame_done=pb.FrameDone(
                    frame=rec.frame,
                    file_name=rec.file_name,
                    size_bytes=rec.size_bytes,
                    sha256=rec.sha256,
                    keyframe=rec.keyframe,
                    frames_done=done,
                    frames_total=total,
                )
            )
            return self._append_event(db, job_id, event)

    def finish(self, job_id: str, state: int, message: str = "") -> None:
        with self._tx() as db:
            self._forget_live(job_id)
            progress_sql = ", progress = 1" if state == pb.JOB_STATE_SUCCEEDED else ""
            db.execute(
                f"UPDATE jobs SET state = ?, message = ?, finished_at = ?{progress_sql} WHERE id = ?",
                (state, message, time.time(), job_id),
            )
            self._append_event(
                db,
                job_id,
                pb.JobEvent(state=pb.StateChange(state=pb.JobState.ValueType(state), message=message)),
            )

    def requeue(self, job_id: str, message: str) -> None:
        with self._tx() as db:
            self._progress.pop(job_id, None)
            db.execute(
                "UPDATE jobs SET state = ?, message = ? WHERE id = ?", (pb.JOB_STATE_QUEUED, message, job_id)
            )
            self._append_event(
                db, job_id, pb.JobEvent(state=pb.StateChange(state=pb.JOB_STATE_QUEUED, message=message))
            )

    def note_queued(self, message: str) -> None:
        """Says why queued jobs wait (Job.message), e.g. no render actor left; claiming clears it."""
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET message = ? WHERE state = ? AND message != ?",
                (message, pb.JOB_STATE_QUEUED, message),
            )

    def request_cancel(self, job_id: str) -> bool:
        """Cancels a queued job at once; flags a running one. Returns True if a worker must act."""
        with self._tx() as db:
            row = db.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise JobNotFound(job_id)
            state = int(row[0])
            if state == pb.JOB_STATE_QUEUED:
                db.execute(
                    "UPDATE jobs SET state = ?, message = ?, finished_at = ? WHERE id = ?",
                    (pb.JOB_STATE_CANCELLED, "cancelled before it started", time.time(), job_id),
                )
                self._append_event(
                    db,
                    job_id,
                    pb.JobEvent(
                        state=pb.StateChange(
                            state=pb.JOB_STATE_CANCELLED, message="cancelled before it started"
                        )
                    ),
                )
                return False
            if state == pb.JOB_STATE_RUNNING:
                db.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))
                self._cancel.add(job_id)
                return True
            return False

    def cancel_requested(self, job_id: str) -> bool:
        """Checked by workers between denoising steps: a set lookup, no SQL."""
        return job_id in self._cancel

    def _forget_live(self, job_id: str) -> None:
        self._progress.pop(job_id, None)
        self._cancel.discard(job_id)
        self._last_seq.pop(job_id, None)

    def count_by_state(self) -> dict[int, int]:
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall()
        return {int(state): int(n) for state, n in rows}

    def running_jobs(self) -> list[str]:
        with self._lock:
            rows = self._db.execute("SELECT id FROM jobs WHERE state = ?", (pb.JOB_STATE_RUNNING,)).fetchall()
        return [r[0] for r in rows]

    def recover(self) -> list[str]:
        """At start-up: jobs left RUNNING by a crash go back to the queue (or end, if cancel was asked)."""
        recovered = self.running_jobs()
        for job_id in recovered:
            if self.cancel_requested(job_id):
                self.finish(job_id, pb.JOB_STATE_CANCELLED, "cancelled (server restarted before it stopped)")
            else:
                self.requeue(job_id, "server restarted; resuming at the first missing frame")
        return recovered
