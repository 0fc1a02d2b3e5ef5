"""Job store: one SQLite database (WAL) under the data dir holds jobs, their frames and their events.

Everything a client can see about a job is derived from here, so a server restarted after a crash
picks up exactly where it was: running jobs are requeued, WatchJob replays the event log.

Durable: jobs, frames, state changes and frame-done events (rows). Live, in memory only: the latest
denoising-step progress of each running job and the cancel flags the workers check between steps, so
a step costs no SQL at all (a cancel is still stored, for a restart to honour).

Each job's record is also mirrored beside its frames (job_records.py), written before its row and again
when it ends, so start-up can rebuild what a damaged database lost (recovery.py).

Two locks: ``_lock`` serialises the database connection (a statement may take milliseconds);
``_live`` guards only the in-memory dictionaries, so the server's event loop can read live progress
without ever waiting on SQL.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genfx.proto import genfx_pb2 as pb
from inference_server.job_records import JobRecords

log = logging.getLogger("genfx.jobs")

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
CREATE INDEX IF NOT EXISTS jobs_newest ON jobs (created_at DESC, id DESC);
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
CREATE TABLE IF NOT EXISTS write_probe (id INTEGER PRIMARY KEY, at REAL NOT NULL);
"""
_JOB_COLUMNS = (
    "id, state, request, frames_total, progress, message, model_hash, created_at, started_at, finished_at,"
    " last_seq"
)
# Rows read per query while filling a page: a page stops at its byte budget without reading the rest.
_PAGE_BATCH = 25


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


class QueueFull(Exception):
    """Creating the job would pass the limit of queued + running jobs."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"queue full: {limit} jobs queued or running (max_queued_jobs); retry later")
        self.limit = limit


class JobNotEnded(Exception):
    """The job must have ended for this (DeleteJob)."""

    def __init__(self, job_id: str, state: int) -> None:
        name = pb.JobState.Name(pb.JobState.ValueType(state)).removeprefix("JOB_STATE_").lower()
        super().__init__(f"job_id: job {job_id} is {name}; cancel it and wait for it to end first")


@dataclass(frozen=True)
class Cursor:
    """Where a listing page ended: the last job's (created_at, id); the next page starts after it."""

    created_at: float
    job_id: str


def abridge(request: pb.GenerateRequest) -> None:
    """Leaves out the request's per-frame lists (what makes a 1000-frame job's request large)."""
    request.camera.ClearField("samples")
    request.conditioning.ClearField("frames")


class JobStore:
    """Thread-safe access to the jobs database. One connection, one lock: writes are tiny."""

    def __init__(self, path: Path, records: JobRecords | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.records = records
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL survives a killed process (the case that matters). A power cut may lose the last
        # commits, never corrupt the file: frames are fsynced files and job records are mirrored to
        # fsynced job.json files, and start-up rebuilds both (recovery.py; FULL's cost: bench_sync).
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.RLock()
        # Notified on every new event and every newly queued job (workers wait on it).
        self.changed = threading.Condition(self._lock)
        # Called with each new event after it is committed (metrics, watchers); must be quick.
        self._listeners: list[Callable[[pb.JobEvent], None]] = []
        self._pending: list[pb.JobEvent] = []  # events of the open transaction, for the listeners
        # Live state (see the module doc), guarded by ``_live``.
        self._live = threading.Lock()
        self._last_seq: dict[str, int] = {}  # job -> seq of its latest stored event (when known)
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
        """One write transaction. When anything fails (a full disk can fail the COMMIT itself) it is
        rolled back, and the live seqs it advanced are forgotten (re-read from the database)."""
        with self._lock:
            self._pending = []
            try:
                self._db.execute("BEGIN IMMEDIATE")
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                with self._live:
                    for event in self._pending:
                        self._last_seq.pop(event.job_id, None)
                self._pending = []
                raise
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
        with self._live:
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
        """The job's latest denoising-step progress while it runs (live; never stored). Never waits on
        the database."""
        with self._live:
            return self._progress.get(job_id)

    def stored_up_to(self, job_id: str) -> int | None:
        """The seq of the job's latest stored event when known in memory (None: ask the database).
        Never waits on the database: a watcher that has seen this seq needs no query to wait on."""
        with self._live:
            return self._last_seq.get(job_id)

    def watch_snapshot(self, job_id: str, from_seq: int) -> tuple[int, list[pb.JobEvent]]:
        """(state, stored events from ``from_seq``), read together; JobNotFound for an unknown job."""
        with self._lock:
            row = self._db.execute("SELECT state, last_seq FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise JobNotFound(job_id)
            events = self.events_since(job_id, from_seq)
            state, last_seq = int(row[0]), int(row[1])
            if state not in TERMINAL_STATES:
                with self._live:
                    self._last_seq.setdefault(job_id, last_seq)
        return state, events

    def wait_for_change(self, timeout: float) -> None:
        with self.changed:
            self.changed.wait(timeout)

    # ---- jobs -------------------------------------------------------------------------------------

    def create(self, request: pb.GenerateRequest, frames_total: int, max_active: int | None = None) -> str:
        """Queues a job. With ``max_active``, raises QueueFull when that many jobs are already queued or
        running: counted and inserted in one transaction, so concurrent submits cannot pass the limit.
        The job's record file is written first; nothing of the job is left when this raises."""
        if max_active is not None and self.count_active() >= max_active:
            raise QueueFull(max_active)  # the common refusal, before any file is written
        job_id = uuid.uuid4().hex
        now = time.time()
        try:
            if self.records is not None:
                record = pb.Job(id=job_id, state=pb.JOB_STATE_QUEUED, request=request, created_at=now)
                self.records.write(record)
            with self._tx() as db:
                if max_active is not None:
                    (active,) = db.execute(
                        "SELECT COUNT(*) FROM jobs WHERE state IN (?, ?)",
                        (pb.JOB_STATE_QUEUED, pb.JOB_STATE_RUNNING),
                    ).fetchone()
                    if active >= max_active:
                        raise QueueFull(max_active)
                db.execute(
                    "INSERT INTO jobs (id, state, priority, request, frames_total, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        job_id,
                        pb.JOB_STATE_QUEUED,
                        request.priority,
                        request.SerializeToString(),
                        frames_total,
                        now,
                    ),
                )
                self._append_event(db, job_id, pb.JobEvent(state=pb.StateChange(state=pb.JOB_STATE_QUEUED)))
        except BaseException:
            if self.records is not None:
                shutil.rmtree(self.records.folder(job_id), ignore_errors=True)
            raise
        return job_id

    def count_active(self) -> int:
        with self._lock:
            (n,) = self._db.execute(
                "SELECT COUNT(*) FROM jobs WHERE state IN (?, ?)", (pb.JOB_STATE_QUEUED, pb.JOB_STATE_RUNNING)
            ).fetchone()
        return int(n)

    def probe_write(self) -> None:
        """A tiny write transaction: raises what a real write would raise (disk full, damaged file)."""
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO write_probe (id, at) VALUES (1, ?)", (time.time(),))

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

    def list_page(
        self,
        states: Sequence[int],
        limit: int,
        after: Cursor | None = None,
        *,
        abridged: bool = True,
        budget_bytes: int = 4 << 20,
        output_dir_for: Callable[[str], str] | None = None,
    ) -> tuple[list[pb.Job], Cursor | None]:
        """Up to ``limit`` jobs, newest first, after ``after``; the page also stops once its jobs
        pass ``budget_bytes`` serialised (never before its first job). Returns the jobs and where the
        next page starts (None: no more). ``abridged`` requests leave out their per-frame lists."""
        wanted = sorted(set(states))
        page: list[pb.Job] = []
        size = 0
        cursor = after
        while len(page) < limit:
            where = [f"state IN ({','.join('?' * len(wanted))})"] if wanted else []
            args: list[object] = list(wanted)
            if cursor is not None:
                where.append("(created_at < ? OR (created_at = ? AND id < ?))")
                args += [cursor.created_at, cursor.created_at, cursor.job_id]
            clause = ("WHERE " + " AND ".join(where)) if where else ""
            batch = min(_PAGE_BATCH, limit - len(page))
            jobs = self._jobs(
                f"{clause} ORDER BY created_at DESC, id DESC LIMIT {batch + 1}",
                tuple(args),
                output_dir_for,
                abridged=abridged,
            )
            for job in jobs[:batch]:
                job_size = job.ByteSize()
                if page and size + job_size > budget_bytes:
                    return page, cursor
                page.append(job)
                size += job_size
                cursor = Cursor(job.created_at, job.id)
            if len(jobs) <= batch:
                return page, None
        return page, cursor

    def _jobs(
        self,
        clause: str,
        args: tuple[object, ...],
        output_dir_for: Callable[[str], str] | None,
        *,
        abridged: bool = False,
    ) -> list[pb.Job]:
        with self._lock:
            rows = self._db.execute(f"SELECT {_JOB_COLUMNS} FROM jobs {clause}", args).fetchall()
            frames = self._frame_infos([r[0] for r in rows])
        with self._live:
            live = {r[0]: self._progress[r[0]].progress.fraction for r in rows if r[0] in self._progress}
        result = []
        for r in rows:
            req = pb.GenerateRequest.FromString(r[2])
            if abridged:
                abridge(req)
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
                    request_abridged=abridged,
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
        with self._lock:  # no writer in between: the seq read is the latest stored one
            with self._live:
                seq = self._last_seq.get(job_id)
            if seq is None:
                (seq,) = self._db.execute("SELECT last_seq FROM jobs WHERE id = ?", (job_id,)).fetchone()
            event = pb.JobEvent(seq=seq, job_id=job_id, time=time.time(), progress=progress)
            with self._live:
                self._last_seq[job_id] = seq
                self._progress[job_id] = event
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
        self._forget_live(job_id)
        self._write_record(job_id)

    def requeue(self, job_id: str, message: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET state = ?, message = ? WHERE id = ?", (pb.JOB_STATE_QUEUED, message, job_id)
            )
            self._append_event(
                db, job_id, pb.JobEvent(state=pb.StateChange(state=pb.JOB_STATE_QUEUED, message=message))
            )
        with self._live:
            self._progress.pop(job_id, None)

    def write_record(self, job_id: str) -> None:
        """Mirrors the job's row to its record file (recovery.py fills in records that are missing)."""
        self._write_record(job_id)

    def _write_record(self, job_id: str) -> None:
        """Mirrors a job that ended to its record file. The database already holds the state: a record
        that cannot be written (full disk) is logged and left behind, not an error."""
        if self.records is None:
            return
        with self._lock:
            row = self._db.execute(
                "SELECT state, request, message, model_hash, created_at, finished_at FROM jobs WHERE id = ?",
                (job_id,),
            ).fetchone()
        if row is None:
            return
        job = pb.Job(
            id=job_id,
            state=row[0],
            request=pb.GenerateRequest.FromString(row[1]),
            message=row[2],
            model_hash=row[3],
            created_at=row[4],
            finished_at=row[5],
        )
        try:
            self.records.write(job)
        except OSError as exc:
            log.warning(
                "job %s: could not update its record file (%s)", job_id, exc, extra={"job_id": job_id}
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
            elif state == pb.JOB_STATE_RUNNING:
                db.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))
        if state == pb.JOB_STATE_QUEUED:
            self._forget_live(job_id)
            self._write_record(job_id)
        elif state == pb.JOB_STATE_RUNNING:
            with self._live:
                self._cancel.add(job_id)
            return True
        return False

    def cancel_requested(self, job_id: str) -> bool:
        """Checked by workers between denoising steps: a set lookup, no SQL."""
        return job_id in self._cancel

    def _forget_live(self, job_id: str) -> None:
        with self._live:
            self._progress.pop(job_id, None)
            self._cancel.discard(job_id)
            self._last_seq.pop(job_id, None)

    # ---- deletion ---------------------------------------------------------------------------------

    def delete(self, job_id: str) -> int:
        """Deletes a job that has ended: rows, events and its folder together; returns the frames it had.
        The folder is renamed to a tombstone inside the transaction (the commit point: see
        job_records.py), put back if the database refuses, and removed after the commit."""
        marked = False
        with self._tx() as db:
            row = db.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise JobNotFound(job_id)
            if int(row[0]) not in TERMINAL_STATES:
                raise JobNotEnded(job_id, int(row[0]))
            (frames,) = db.execute("SELECT COUNT(*) FROM frames WHERE job_id = ?", (job_id,)).fetchone()
            marked = self.records is not None and self.records.mark_deleted(job_id)
            try:
                self._delete_rows(db, job_id)
            except BaseException:
                if marked and self.records is not None:
                    self.records.unmark_deleted(job_id)
                raise
        self._forget_live(job_id)
        if marked and self.records is not None:
            self.records.purge(job_id)
        return int(frames)

    @staticmethod
    def _delete_rows(db: sqlite3.Connection, job_id: str) -> None:
        for table, column in (("events", "job_id"), ("frames", "job_id"), ("jobs", "id")):
            db.execute(f"DELETE FROM {table} WHERE {column} = ?", (job_id,))

    def finish_deletions(self) -> list[str]:
        """At start-up: deletions a crash cut off after their commit point are completed."""
        if self.records is None:
            return []
        done = self.records.pending_deletions()
        for job_id in done:
            with self._tx() as db:
                self._delete_rows(db, job_id)
            self.records.purge(job_id)
        return done

    def ended_before(self, cutoff: float, limit: int = 100) -> list[str]:
        """Jobs that ended before ``cutoff`` (Unix time), oldest first: the retention sweep's work."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT id FROM jobs WHERE state IN ({','.join('?' * len(TERMINAL_STATES))})"
                " AND finished_at > 0 AND finished_at < ? ORDER BY finished_at LIMIT ?",
                (*sorted(TERMINAL_STATES), cutoff, limit),
            ).fetchall()
        return [str(r[0]) for r in rows]

    # ---- rebuilding from record files (recovery.py) -----------------------------------------------

    def job_ids(self, *states: int) -> set[str]:
        """Every job's id, or those in ``states``."""
        where = f" WHERE state IN ({','.join('?' * len(states))})" if states else ""
        with self._lock:
            return {str(r[0]) for r in self._db.execute(f"SELECT id FROM jobs{where}", states)}

    def restore(self, record: pb.Job, frames: Sequence[pb.FrameInfo], message: str) -> int:
        """Puts back a job the database lost, from its record file: in the record's final state if it
        had ended, else QUEUED (it resumes at its first missing frame); ``frames`` as found on disk.
        Its events are rebuilt in order: queued (with ``message``), each frame, the final state."""
        req = record.request
        total = max(1, req.shot.frame_end - req.shot.frame_start + 1)
        ended = record.state in TERMINAL_STATES
        state = record.state if ended else pb.JOB_STATE_QUEUED
        with self._tx() as db:
            db.execute(
                "INSERT INTO jobs (id, state, priority, request, frames_total, progress, message, model_hash,"
                " created_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.id,
                    state,
                    req.priority,
                    req.SerializeToString(),
                    total,
                    len(frames) / total,
                    record.message if ended else "",
                    record.model_hash,
                    record.created_at,
                    record.finished_at if ended else 0.0,
                ),
            )
            queued = pb.JobEvent(state=pb.StateChange(state=pb.JOB_STATE_QUEUED, message=message))
            self._append_event(db, record.id, queued)
            for done, info in enumerate(sorted(frames, key=lambda f: f.frame), start=1):
                db.execute(
                    "INSERT INTO frames (job_id, frame, file_name, sha256, size_bytes, keyframe)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (record.id, info.frame, info.file_name, info.sha256, info.size_bytes, int(info.keyframe)),
                )
                frame_done = pb.FrameDone(
                    frame=info.frame,
                    file_name=info.file_name,
                    size_bytes=info.size_bytes,
                    sha256=info.sha256,
                    keyframe=info.keyframe,
                    frames_done=done,
                    frames_total=total,
                )
                self._append_event(db, record.id, pb.JobEvent(frame_done=frame_done))
            if ended:
                final = pb.StateChange(state=record.state, message=record.message)
                self._append_event(db, record.id, pb.JobEvent(state=final))
        return state

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
