"""webdataset tar shards: written deterministically and atomically, read back sample by sample.

A shard is ``shard-NNNNNN.tar`` holding ``KEY.EXT`` members in sample order, plus a sidecar
``shard-NNNNNN.json`` (its samples, errors and the tar's sha256) written after the tar is in place:
a shard is finished exactly when its sidecar exists, which is what makes ``ingest`` resumable.
Member headers carry no time or owner, so the same samples always make the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from genfx.exr import write_atomic


def shard_name(index: int) -> str:
    return f"shard-{index:06d}"


def tar_bytes(samples: list[tuple[str, dict[str, bytes]]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for key, members in samples:
            for ext in sorted(members):
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(members[ext])
                info.mtime = 0
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(members[ext]))
    return buf.getvalue()


def write_shard(
    out: Path, index: int, samples: list[tuple[str, dict[str, bytes]]], sidecar: dict[str, Any]
) -> str:
    """Write the tar then its sidecar (both atomically); returns the tar's sha256."""
    data = tar_bytes(samples)
    digest = hashlib.sha256(data).hexdigest()
    write_atomic(out / f"{shard_name(index)}.tar", data)
    record = {**sidecar, "tar_sha256": digest}
    write_atomic(out / f"{shard_name(index)}.json", json.dumps(record, indent=1, sort_keys=True).encode())
    return digest


def read_sidecar(out: Path, index: int) -> dict[str, Any] | None:
    path = out / f"{shard_name(index)}.json"
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def iter_samples(path: Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {ext: bytes}) for each sample of a shard, in order (members of a key are contiguous)."""
    key, members = "", {}  # type: tuple[str, dict[str, bytes]]
    with tarfile.open(path, mode="r") as tar:
        for info in tar:
            if not info.isfile():
                continue
            k, _, ext = info.name.partition(".")
            if k != key and members:
                yield key, members
                members = {}
            key = k
            f = tar.extractfile(info)
            assert f is not None
            members[ext] = f.read()
    if members:
        yield key, members
