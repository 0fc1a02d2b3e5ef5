"""The server's data folder, worked out once: the jobs database, each job's frame folder, the uploaded
assets (content-addressed) and the built-in models' cache. Built at start-up and handed to the service,
the workers and validation.

    <data>/jobs.sqlite       the job store (jobs.py)
    <data>/jobs/<job id>/    a job's frames, manifest.json and job.json (its record: job_records.py)
    <data>/assets/<sha256>   uploaded plates and passes, named by the sha256 of their bytes
    <data>/models/           built-in models, built on first use

Also the one rule for telling storage failures (a full disk, a damaged or unreadable database) from
other errors: ``storage_failure``.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import sqlite3
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from inference_server.job_records import JobRecords

ASSET_ID = re.compile(r"^[0-9a-f]{64}$")
_UPLOAD_PREFIX, _UPLOAD_SUFFIX = ".upload-", ".tmp"
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_STORAGE_ERRNOS = _FULL_ERRNOS | {errno.EIO, errno.EROFS}
PROBE_BYTES = 1 << 20  # a probe write the size of a small frame


def storage_failure(exc: BaseException) -> Literal["full", "unavailable"] | None:
    """'full' for a full disk or quota (SQLite's SQLITE_FULL included), 'unavailable' for a damaged,
    read-only or failing store, None for anything else."""
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if code == sqlite3.SQLITE_FULL or "full" in str(exc).lower():
            return "full"
        return "unavailable"
    if isinstance(exc, OSError) and exc.errno in _STORAGE_ERRNOS:
        return "full" if exc.errno in _FULL_ERRNOS else "unavailable"
    return None


def describe_failure(exc: BaseException, data: DataDir | None = None) -> str:
    """``exc`` in words a client may see: an OS error by its description (its file name is a server
    path), anything else with the data folder's path replaced by ``<data-dir>``."""
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno)
    text = str(exc) or type(exc).__name__
    return text.replace(str(data.root), "<data-dir>") if data is not None else text


class AssetError(ValueError):
    """Bytes that cannot become an asset; the message names the request field at fault."""


@dataclass(frozen=True)
class StoredAsset:
    id: str  # sha256 of the bytes, hex
    size: int
    deduplicated: bool  # the store already had these bytes
    head: bytes  # the first bytes, to tell the format


class AssetUpload:
    """One upload in progress: bytes go to a temp file as they arrive; ``finish`` checks and stores them,
    ``abort`` (always safe to call) removes what was not stored."""

    def __init__(self, folder: Path, size: int, sha256: str) -> None:
        self.folder = folder
        self.size = size
        self.sha256 = sha256
        self.received = 0
        self.head = b""
        self._digest = hashlib.sha256()
        fd, tmp_name = tempfile.mkstemp(prefix=_UPLOAD_PREFIX, suffix=_UPLOAD_SUFFIX, dir=folder)
        self.tmp = Path(tmp_name)
        self._file: IO[bytes] = os.fdopen(fd, "wb")

    def write(self, block: bytes) -> None:
        self.received += len(block)
        if self.received > self.size:
            raise AssetError(f"data: more bytes than header.size ({self.size})")
        if len(self.head) < 8:
            self.head += block[:8]
        self._digest.update(block)
        self._file.write(block)

    def finish(self, check: Callable[[Path], None] | None = None) -> StoredAsset:
        """Stores the bytes under their sha256 once they are all there and match; ``check`` sees the
        complete file first and may refuse it (raising)."""
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        if self.received != self.size:
            raise AssetError(f"data: received {self.received} bytes, header.size says {self.size}")
        asset_id = self._digest.hexdigest()
        if self.sha256 and self.sha256 != asset_id:
            raise AssetError(f"header.sha256: does not match the bytes received (got {asset_id})")
        if check is not None:
            check(self.tmp)
        final = self.folder / asset_id
        deduplicated = final.exists()
        if not deduplicated:
            os.replace(self.tmp, final)
        return StoredAsset(asset_id, self.received, deduplicated, self.head)

    def abort(self) -> None:
        self._file.close()
        self.tmp.unlink(missing_ok=True)


class AssetStore:
    """Uploaded files under their sha256: written to a temp name, fsynced, renamed; stored once."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        for leftover in folder.glob(f"{_UPLOAD_PREFIX}*{_UPLOAD_SUFFIX}"):  # uploads cut off by a crash
            leftover.unlink(missing_ok=True)

    def path(self, asset_id: str) -> Path:
        if not ASSET_ID.match(asset_id):
            raise AssetError(f"asset id: must be 64 lowercase hex characters (got {asset_id[:70]!r})")
        return self.folder / asset_id

    def begin(self, size: int, sha256: str = "") -> AssetUpload:
        """Starts storing an upload of ``size`` bytes; ``sha256`` (hex), when given, must match them."""
        return AssetUpload(self.folder, size, sha256)

    def put(self, blocks: Iterable[bytes], size: int, sha256: str = "") -> StoredAsset:
        """Stores exactly ``size`` bytes from ``blocks`` (see ``begin``). Nothing is left behind when the
        bytes are refused or the stream breaks."""
        upload = self.begin(size, sha256)
        try:
            for block in blocks:
                upload.write(block)
            return upload.finish()
        finally:
            upload.abort()


class DataDir:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.jobs_db = self.root / "jobs.sqlite"
        self.jobs = self.root / "jobs"
        self.models = self.root / "models"
        self.assets = AssetStore(self.root / "assets")
        self.records = JobRecords(self.jobs)
        for leftover in self.root.glob(f".probe-*{_UPLOAD_SUFFIX}"):  # probes cut off by a crash
            leftover.unlink(missing_ok=True)

    def job_dir(self, job_id: str) -> Path:
        return self.records.folder(job_id)

    def probe_writable(self) -> None:
        """Writes, fsyncs and removes a small file: raises what a frame write would raise now."""
        fd, name = tempfile.mkstemp(prefix=".probe-", suffix=_UPLOAD_SUFFIX, dir=self.root)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(bytes(PROBE_BYTES))
                f.flush()
                os.fsync(f.fileno())
        finally:
            Path(name).unlink(missing_ok=True)
