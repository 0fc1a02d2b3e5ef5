"""Start-up recovery of the job store (in process, no server): a write-ahead log cut short or a
database with junk over its header loses no job; a deletion cut off by a crash is finished; an end the
log lost is taken from the record. Plus the store's own failure paths: a refused record leaves nothing,
storage errors map to the contract's statuses."""

from __future__ import annotations

import errno
import shutil
import sqlite3
from fractions import Fraction
from pathlib import Path

import grpc
import numpy as np
import pytest

from genfx.client import build_request
from genfx.proto import genfx_pb2 as pb
from genfx.shot import Shot
from inference_server.frame_output import encode_rgba
from inference_server.frame_writer import FrameEncoder, FrameWriter, job_header
from inference_server.job_records import JobRecords
from inference_server.jobs import JobStore
from inference_server.recovery import RecoveryReport, open_store
from inference_server.service import status_for


def _request(shot: Shot, frames: int, name: str) -> pb.GenerateRequest:
    return build_request(
        prompt=name,
        camera=shot.camera,
        frame_start=1001,
        frame_end=1000 + frames,
        fps=Fraction(24),
        seed=1,
        model="tiny",
        width=32,
        height=32,
        name=name,
    )


def _write_frames(store: JobStore, folder: Path, job_id: str, req: pb.GenerateRequest) -> None:
    header = job_header(job_id, req, "hash")
    encoder, writer = FrameEncoder(header), FrameWriter(store, folder, header)
    for frame in range(req.shot.frame_start, req.shot.frame_end + 1):
        rgba = encode_rgba(np.full((32, 32, 3), 0.5, np.float32), None, header.colorspace)
        writer.write(encoder.encode(frame, rgba, keyframe=True))


class Crashed:
    """A data folder with three jobs (one succeeded with frames, one cancelled, one queued), copied while
    the store was still open: what a kill -9 or a power cut leaves, write-ahead log included."""

    def __init__(self, tmp: Path, shot: Shot) -> None:
        live = tmp / "live"
        records = JobRecords(live / "jobs")
        store, _ = open_store(live / "jobs.sqlite", records)
        self.done = store.create(_request(shot, 2, "done"), 2)
        assert store.claim_next() == self.done
        _write_frames(store, records.folder(self.done), self.done, store.request(self.done))
        store.finish(self.done, pb.JOB_STATE_SUCCEEDED)
        self.cancelled = store.create(_request(shot, 1, "cancelled"), 1)
        store.request_cancel(self.cancelled)
        self.queued = store.create(_request(shot, 3, "queued"), 3)
        self.frames = store.frames(self.done)
        self.root = tmp / "crashed"
        shutil.copytree(live, self.root, ignore=shutil.ignore_patterns("*-shm"))  # shm is rebuilt
        store.close()
        self.db = self.root / "jobs.sqlite"
        self.records = JobRecords(self.root / "jobs")

    def reopen(self) -> tuple[JobStore, RecoveryReport]:
        """What a server start does: the data folder's record files, then the store."""
        self.records = JobRecords(self.root / "jobs")
        return open_store(self.db, self.records)

    def check_all_there(self, store: JobStore) -> None:
        assert store.state(self.done) == pb.JOB_STATE_SUCCEEDED
        assert store.frames(self.done) == self.frames
        assert store.state(self.cancelled) == pb.JOB_STATE_CANCELLED
        assert store.state(self.queued) == pb.JOB_STATE_QUEUED
        assert store.request(self.queued).prompt == "queued"
        events = store.events_since(self.done, 1)
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert events[-1].state.state == pb.JOB_STATE_SUCCEEDED


@pytest.mark.parametrize("keep", [0.7, 0.0])
def test_a_truncated_write_ahead_log_loses_no_job(tmp_path: Path, shot: Shot, keep: float) -> None:
    """70% of the log lost the newest job (frames orphaned); 0% lost all three, without a warning."""
    crashed = Crashed(tmp_path, shot)
    wal = Path(f"{crashed.db}-wal")
    wal.write_bytes(wal.read_bytes()[: int(wal.stat().st_size * keep)])
    store, report = crashed.reopen()
    crashed.check_all_there(store)
    assert report.rebuilt, "the jobs the log lost are rebuilt and reported"


def test_junk_over_the_database_header_is_set_aside(tmp_path: Path, shot: Shot) -> None:
    crashed = Crashed(tmp_path, shot)
    with sqlite3.connect(crashed.db) as db:  # checkpoint: the jobs are in the main file now
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with crashed.db.open("r+b") as f:
        f.write(b"\xde\xad\xbe\xef" * 32)
    store, report = crashed.reopen()
    assert report.damaged_database.startswith("jobs.sqlite.damaged-")
    assert (crashed.root / report.damaged_database).exists()  # kept for a person to look at
    crashed.check_all_there(store)
    assert set(report.rebuilt) == {crashed.done, crashed.cancelled, crashed.queued}


def test_an_end_the_log_lost_is_taken_from_the_record(tmp_path: Path, shot: Shot) -> None:
    crashed = Crashed(tmp_path, shot)
    store, _ = crashed.reopen()
    assert store.claim_next() == crashed.queued
    store.close()  # RUNNING in the database ...
    record = crashed.records.read(crashed.queued)
    assert record is not None
    record.state, record.message = pb.JOB_STATE_CANCELLED, "cancelled by CancelJob at frame 1002"
    crashed.records.write(record)  # ... CANCELLED in its record (written after a commit the log lost)
    store, report = crashed.reopen()
    assert report.ended_from_record == [crashed.queued]
    assert store.state(crashed.queued) == pb.JOB_STATE_CANCELLED  # not requeued, not re-run


def test_a_deletion_cut_off_by_a_crash_is_finished(tmp_path: Path, shot: Shot) -> None:
    crashed = Crashed(tmp_path, shot)
    assert crashed.records.mark_deleted(crashed.done)  # the commit point, then the crash
    store, report = crashed.reopen()
    assert report.deletions_finished == [crashed.done]
    assert crashed.done not in store.job_ids()
    assert not crashed.records.tombstone(crashed.done).exists()
    assert crashed.done not in report.rebuilt  # never brought back


def test_a_folder_without_a_record_is_reported_and_kept(tmp_path: Path, shot: Shot) -> None:
    crashed = Crashed(tmp_path, shot)
    stray = crashed.records.folder("f" * 32)
    stray.mkdir()
    (stray / "genfx.1001.exr").write_bytes(b"frame")
    _, report = crashed.reopen()
    assert report.unrecoverable == ["f" * 32]
    assert (stray / "genfx.1001.exr").exists()


def test_a_job_whose_record_cannot_be_written_leaves_nothing(
    tmp_path: Path, shot: Shot, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = JobRecords(tmp_path / "jobs")
    store = JobStore(tmp_path / "jobs.sqlite", records)
    real_write = records.write

    def full_disk(job: pb.Job) -> None:  # write_atomic on a full disk: the temp file, then ENOSPC
        real_write(job)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(records, "write", full_disk)
    with pytest.raises(OSError):
        store.create(_request(shot, 1, "x"), 1)
    assert store.job_ids() == set()
    assert records.job_ids() == []


def test_a_job_the_database_refuses_leaves_no_record(tmp_path: Path, shot: Shot) -> None:
    records = JobRecords(tmp_path / "jobs")
    store = JobStore(tmp_path / "jobs.sqlite", records)
    store.create(_request(shot, 1, "first"), 1)
    with pytest.raises(Exception, match="queue full"):
        store.create(_request(shot, 1, "second"), 1, max_active=1)
    assert len(records.job_ids()) == 1 and len(store.job_ids()) == 1


@pytest.mark.parametrize(
    ("exc", "code", "words"),
    [
        (sqlite3.OperationalError("database or disk is full"), grpc.StatusCode.RESOURCE_EXHAUSTED, "full"),
        (
            OSError(errno.ENOSPC, "No space left", "/srv/genfx/jobs/x.tmp"),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "full",
        ),
        (
            sqlite3.DatabaseError("database disk image is malformed"),
            grpc.StatusCode.UNAVAILABLE,
            "retry later",
        ),
        (
            OSError(errno.EIO, "I/O error", "/srv/genfx/jobs.sqlite"),
            grpc.StatusCode.UNAVAILABLE,
            "retry later",
        ),
        (ZeroDivisionError("float division by zero"), grpc.StatusCode.INTERNAL, "reference"),
    ],
)
def test_failures_map_to_the_contracts_statuses(exc: Exception, code: grpc.StatusCode, words: str) -> None:
    got, message = status_for(exc)
    assert got == code and words in message
    assert "/srv" not in message  # never a server path


def test_a_record_write_cut_off_by_a_crash_leaves_no_file(tmp_path: Path, shot: Shot) -> None:
    crashed = Crashed(tmp_path, shot)
    leftover = crashed.records.jobs_dir / ".record-abc123.tmp"  # where JobRecords.write puts its temp
    leftover.write_bytes(b'{"id": "')
    crashed.reopen()
    assert not leftover.exists()


def test_jobs_from_before_job_json_get_their_record_at_start(tmp_path: Path, shot: Shot) -> None:
    """A data folder from an older version has rows but no job.json: the first start writes them, so a
    later loss of the database can rebuild those jobs too."""
    old = JobStore(tmp_path / "jobs.sqlite")  # no records, as before
    job_id = old.create(_request(shot, 1, "old"), 1)
    old.close()
    records = JobRecords(tmp_path / "jobs")
    _, report = open_store(tmp_path / "jobs.sqlite", records)
    assert report.records_written == 1
    record = records.read(job_id)
    assert record is not None and record.request.prompt == "old"
