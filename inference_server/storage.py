"""The server's data folder, worked out once: the jobs database, each job's frame folder, the uploaded
assets (content-addressed) and the built-in models' cache. Built at start-up and handed to the service,
the workers and validation.

    <data>/jobs.sqlite       the job store (jobs.py)
    <data>/jobs/<job id>/    a job's frames and manifest.json
    <data>/assets/<sha256>   uploaded plates and passes, named by the sha256 of their bytes
    <data>/models/           built-in models, built on first use
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ASSET_ID = re.compile(r"^[0-9a-f]{64}$")
_UPLOAD_PREFIX, _UPLOAD_SUFFIX = ".upload-", ".tmp"


class AssetError(ValueError):
    """Bytes that cannot become an asset; the message names the request field at fault."""


@dataclass(frozen=True)
class StoredAsset:
    id: str  # sha256 of the bytes, hex
    size: int
    deduplicated: bool  # the store already had these bytes
    head: bytes  # the first bytes, to tell the format


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

    def put(self, blocks: Iterable[bytes], size: int, sha256: str = "") -> StoredAsset:
        """Stores exactly ``size`` bytes from ``blocks``; ``sha256`` (hex), when given, must match them.
        Nothing is left behind when the bytes are refused or the stream breaks."""
        digest = hashlib.sha256()
        received = 0
        head = b""
        fd, tmp_name = tempfile.mkstemp(prefix=_UPLOAD_PREFIX, suffix=_UPLOAD_SUFFIX, dir=self.folder)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as f:
                for block in blocks:
                    received += len(block)
                    if received > size:
                        raise AssetError(f"data: more bytes than header.size ({size})")
                    if len(head) < 8:
                        head += block[:8]
                    digest.update(block)
                    f.write(block)
                f.flush()
                os.fsync(f.fileno())
            if received != size:
                raise AssetError(f"data: received {received} bytes, header.size says {size}")
            asset_id = digest.hexdigest()
            if sha256 and sha256 != asset_id:
                raise AssetError(f"header.sha256: does not match the bytes received (got {asset_id})")
            final = self.folder / asset_id
            deduplicated = final.exists()
            if not deduplicated:
                os.replace(tmp, final)
            return StoredAsset(asset_id, received, deduplicated, head)
        finally:
            tmp.unlink(missing_ok=True)


class DataDir:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.jobs_db = self.root / "jobs.sqlite"
        self.jobs = self.root / "jobs"
        self.models = self.root / "models"
        self.assets = AssetStore(self.root / "assets")

    def job_dir(self, job_id: str) -> Path:
        return self.jobs / job_id
