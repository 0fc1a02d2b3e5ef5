"""Start-up checks of the job store: a damaged database is set aside, and jobs the database lost are
rebuilt from their record files (job_records.py) and the frames on disk. Everything done is logged and
returned, so nothing is lost silently.

What can go wrong, and what happens here:
- junk over the database file, a malformed page: ``PRAGMA quick_check`` (or opening it) fails; the file
  and its -wal/-shm go to ``jobs.sqlite.damaged-<time>`` and a fresh database is made;
- a write-ahead log cut short (a power cut with synchronous=NORMAL, a full disk, a copy): SQLite drops
  the commits it cannot verify without a word; each job's ``job.json`` still says it exists;
- a deletion cut off by a crash after its commit point: finished (job_records.py);
- a job whose end was lost from the log while its record file says it ended: ended as the record says.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from genfx.exr import read_header
from genfx.hashing import sha256_of
from genfx.proto import genfx_pb2 as pb
from inference_server.frame_writer import frame_file_name
from inference_server.job_records import JobRecords
from inference_server.jobs import TERMINAL_STATES, JobStore

log = logging.getLogger("genfx.recovery")

_DB_SIDE_FILES = ("", "-wal", "-shm")


@dataclass
class RecoveryReport:
    damaged_database: str = ""  # where the damaged database was moved, if it was
    rebuilt: dict[str, int] = field(default_factory=dict)  # job id -> state it was restored in
    ended_from_record: list[str] = field(default_factory=list)
    deletions_finished: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)
    records_written: int = 0  # jobs that had no job.json (a data folder from an older version)
    unrecoverable: list[str] = field(default_factory=list)  # job folders without a usable record


def database_problem(path: Path) -> str:
    """'' when the database opens and passes ``PRAGMA quick_check``, else what is wrong."""
    if not path.exists():
        return ""
    try:
        with contextlib.closing(sqlite3.connect(str(path), isolation_level=None)) as db:
            rows = db.execute("PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    answers = [str(r[0]) for r in rows]
    return "" if answers == ["ok"] else "; ".join(answers[:5])


def set_aside(path: Path) -> Path:
    """Moves the database and its -wal/-shm files to ``<name>.damaged-<time>``; returns the new name."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.damaged-{stamp}")
    for suffix in _DB_SIDE_FILES:
        source = Path(f"{path}{suffix}")
        if source.exists():
            os.replace(source, Path(f"{target}{suffix}"))
    return target


def open_store(db_path: Path, records: JobRecords) -> tuple[JobStore, RecoveryReport]:
    """The job store, checked and repaired (see the module doc)."""
    report = RecoveryReport()
    problem = database_problem(db_path)
    if problem:
        moved = set_aside(db_path)
        report.damaged_database = moved.name
        log.error(
            "the job database was damaged (%s); moved it to %s and rebuilding job records from the"
            " job folders",
            problem,
            moved.name,
        )
    store = JobStore(db_path, records)
    report.deletions_finished = store.finish_deletions()
    _rebuild(store, records, report)
    report.records_written = _backfill(store, records)
    report.requeued = store.recover()
    _log(report)
    return store, report


def _rebuild(store: JobStore, records: JobRecords, report: RecoveryReport) -> None:
    known = store.job_ids()
    unfinished = store.job_ids(pb.JOB_STATE_QUEUED, pb.JOB_STATE_RUNNING)
    for job_id in records.job_ids():
        if job_id in known and job_id not in unfinished:
            continue
        record = records.read(job_id)
        if record is None or record.id != job_id:
            if job_id not in known:
                report.unrecoverable.append(job_id)
            continue
        if job_id in unfinished:
            if record.state in TERMINAL_STATES:  # the end was committed, then lost from the log
                store.finish(job_id, record.state, record.message)
                report.ended_from_record.append(job_id)
            continue
        frames = _frames_on_disk(records.folder(job_id), record) if record.state in TERMINAL_STATES else []
        note = "job record rebuilt from its job folder after the database lost it"
        report.rebuilt[job_id] = store.restore(record, frames, note)


def _backfill(store: JobStore, records: JobRecords) -> int:
    """Writes the record of every job that has none, so a later loss of the database can rebuild it."""
    missing = [job_id for job_id in store.job_ids() if not records.has(job_id)]
    for job_id in missing:
        store.write_record(job_id)
    return len(missing)


def _frames_on_disk(folder: Path, record: pb.Job) -> list[pb.FrameInfo]:
    """The job's frames present on disk: from manifest.json (sha256 as written) when it has them, else
    hashed from the files. A file that does not match or does not open is left out (logged)."""
    from_manifest = _manifest_frames(folder)
    req = record.request
    found = []
    for frame in range(req.shot.frame_start, req.shot.frame_end + 1):
        name = frame_file_name(req.output.name, frame)
        path = folder / name
        if not path.is_file():
            continue
        size = path.stat().st_size
        known = from_manifest.get(frame)
        if known is not None and known.file_name == name and known.size_bytes == size:
            found.append(known)
            continue
        try:
            keyframe = bool(read_header(path).get("genfx/keyframe", 1))
        except Exception as exc:  # a damaged file: not a frame of this job any more
            log.warning("job %s: frame file %s does not open (%s); left out", record.id, name, exc)
            continue
        digest = sha256_of(path).hexdigest()
        found.append(
            pb.FrameInfo(frame=frame, file_name=name, sha256=digest, size_bytes=size, keyframe=keyframe)
        )
    return found


def _manifest_frames(folder: Path) -> dict[int, pb.FrameInfo]:
    try:
        doc = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        return {
            int(f["frame"]): pb.FrameInfo(
                frame=int(f["frame"]),
                file_name=str(f["file"]),
                sha256=str(f["sha256"]),
                size_bytes=int(f["size_bytes"]),
                keyframe=bool(f["keyframe"]),
            )
            for f in doc.get("frames", [])
        }
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _log(report: RecoveryReport) -> None:
    if report.deletions_finished:
        log.warning("finished %d deletion(s) a restart cut off", len(report.deletions_finished))
    for job_id, state in sorted(report.rebuilt.items()):
        name = pb.JobState.Name(pb.JobState.ValueType(state))
        log.warning("job %s: record rebuilt from its folder (%s)", job_id, name, extra={"job_id": job_id})
    for job_id in report.ended_from_record:
        log.warning("job %s: its end was lost from the database; ended as its record says", job_id)
    for job_id in report.unrecoverable:
        log.error("job folder %s has no readable job.json: not rebuilt (its files are kept)", job_id)
    if report.records_written:
        log.info("wrote job.json for %d job(s) that had none", report.records_written)
    if report.requeued:
        log.info("requeued %d interrupted job(s): %s", len(report.requeued), ", ".join(report.requeued))
