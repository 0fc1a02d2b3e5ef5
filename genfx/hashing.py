"""sha256 of a file, streamed: frames and assets are identified and checked by it everywhere."""

from __future__ import annotations

import hashlib
from pathlib import Path

BLOCK = 1 << 20


def sha256_of(path: Path) -> hashlib._Hash:
    """The running digest (callers that go on appending bytes keep updating it)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(BLOCK), b""):
            digest.update(block)
    return digest
