"""Each job's record, mirrored beside its frames: ``<data>/jobs/<job id>/job.json``.

The database (jobs.py) is the source of truth; this file is what survives when the database does not (a
damaged file, a truncated write-ahead log, a power cut): start-up rebuilds lost rows from it
(recovery.py). It is written, fsynced, when a job is accepted (before its row) and again when the job
ends, so it always holds the request as accepted and the latest final state.

Deleting a job renames its folder to ``.deleted-<job id>`` first: the rename is the commit point, so a
crash half way through a deletion is finished at the next start and never brings the job back.

A record is written to a temp file in the jobs folder itself (``.record-*.tmp``), fsynced and renamed
into place, so what a crash cuts off is found (and removed) with one look at one folder.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from google.protobuf import json_format

from genfx.proto import genfx_pb2 as pb

log = logging.getLogger("genfx.jobs")

RECORD_NAME = "job.json"
TOMBSTONE_PREFIX = ".deleted-"
_TEMP_PREFIX, _TEMP_SUFFIX = ".record-", ".tmp"
# What the record keeps: enough to put the row back (frames and events are rebuilt from the frames).
_FIELDS = ("id", "state", "request", "message", "model_hash", "created_at", "finished_at")


class JobRecords:
    def __init__(self, jobs_dir: Path) -> None:
        self.jobs_dir = jobs_dir
        jobs_dir.mkdir(parents=True, exist_ok=True)
        for leftover in jobs_dir.glob(f"{_TEMP_PREFIX}*{_TEMP_SUFFIX}"):  # writes cut off by a crash
            leftover.unlink(missing_ok=True)

    def folder(self, job_id: str) -> Path:
        return self.jobs_dir / job_id

    def write(self, job: pb.Job) -> None:
        """Atomically (temp name, fsync, rename) writes the record of ``job`` (its id, state, request,
        message, model hash and times)."""
        record = pb.Job()
        for name in _FIELDS:
            value = getattr(job, name)
            if name == "request":
                record.request.CopyFrom(value)
            else:
                setattr(record, name, value)
        folder = self.folder(job.id)
        folder.mkdir(parents=True, exist_ok=True)
        text = json_format.MessageToJson(record, preserving_proto_field_name=True, indent=1)
        fd, tmp = tempfile.mkstemp(prefix=_TEMP_PREFIX, suffix=_TEMP_SUFFIX, dir=self.jobs_dir)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(text.encode())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, folder / RECORD_NAME)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(folder)

    def read(self, job_id: str) -> pb.Job | None:
        """The record, or None when there is none or it cannot be parsed (logged)."""
        path = self.folder(job_id) / RECORD_NAME
        try:
            text = path.read_text(encoding="utf-8")
            return json_format.Parse(text, pb.Job(), ignore_unknown_fields=True)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, json.JSONDecodeError, json_format.ParseError) as exc:
            log.warning("job %s: unreadable %s (%s); not used", job_id, RECORD_NAME, exc)
            return None

    def has(self, job_id: str) -> bool:
        return (self.folder(job_id) / RECORD_NAME).is_file()

    def job_ids(self) -> list[str]:
        """Jobs with a folder (not being deleted), in no particular order."""
        with os.scandir(self.jobs_dir) as entries:
            return [e.name for e in entries if e.is_dir() and not e.name.startswith(".")]

    # ---- deletion ---------------------------------------------------------------------------------

    def tombstone(self, job_id: str) -> Path:
        return self.jobs_dir / f"{TOMBSTONE_PREFIX}{job_id}"

    def mark_deleted(self, job_id: str) -> bool:
        """Renames the job's folder to its tombstone (atomic); False when the job has no folder."""
        try:
            os.replace(self.folder(job_id), self.tombstone(job_id))
        except FileNotFoundError:
            return False
        return True

    def unmark_deleted(self, job_id: str) -> None:
        """Undoes mark_deleted (the database refused the deletion)."""
        with contextlib.suppress(FileNotFoundError):
            os.replace(self.tombstone(job_id), self.folder(job_id))

    def purge(self, job_id: str) -> None:
        shutil.rmtree(self.tombstone(job_id), ignore_errors=True)

    def pending_deletions(self) -> list[str]:
        """Jobs whose deletion a crash interrupted after the commit point."""
        with os.scandir(self.jobs_dir) as entries:
            return [e.name[len(TOMBSTONE_PREFIX) :] for e in entries if e.name.startswith(TOMBSTONE_PREFIX)]


def _fsync_dir(folder: Path) -> None:
    """Makes a rename into ``folder`` durable (best effort: not every platform can open a folder)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
