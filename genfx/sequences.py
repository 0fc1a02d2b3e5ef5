"""Per-frame pass sequences (plate / mask / depth / motion) on disk -> uploaded assets -> request
conditioning.

Patterns name one file per frame: ``plate.####.exr`` (one ``#`` per digit, zero padded), ``plate.%04d.exr``
(printf style) or Houdini's ``plate.$F4.exr``. Uploads are deduplicated by the server (sha256), so
re-sending a shot costs only the hashing.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Protocol

from genfx.proto import genfx_pb2 as pb
from genfx.request import PASS_FIELDS, frame_assets

PASSES = tuple(PASS_FIELDS)
_HASHES = re.compile(r"#+")
_PRINTF = re.compile(r"%0?(\d*)d")
_HOUDINI = re.compile(r"\$F(\d*)")


class Uploader(Protocol):
    def upload(self, path: str | os.PathLike[str]) -> pb.Asset: ...


def expand_pattern(pattern: str, frame: int) -> Path:
    """The file of ``frame`` in a sequence pattern; ValueError when the pattern has no frame field."""
    if _HASHES.search(pattern):
        return Path(_HASHES.sub(lambda m: f"{frame:0{len(m.group())}d}", pattern, count=1))
    if _PRINTF.search(pattern):
        return Path(_PRINTF.sub(lambda m: f"{frame:0{int(m.group(1) or 0)}d}", pattern, count=1))
    if _HOUDINI.search(pattern):
        return Path(_HOUDINI.sub(lambda m: f"{frame:0{int(m.group(1) or 0)}d}", pattern, count=1))
    raise ValueError(f"{pattern!r}: no frame number field (use ####, %04d or $F4)")


def sequence_files(patterns: Mapping[str, str], frames: Iterable[int]) -> dict[int, dict[str, Path]]:
    """frame -> pass -> existing file; ValueError naming the frame and pass of the first missing file."""
    out: dict[int, dict[str, Path]] = {}
    for frame in frames:
        for kind, pattern in patterns.items():
            if kind not in PASSES:
                raise ValueError(f"unknown pass {kind!r} (known: {', '.join(PASSES)})")
            path = expand_pattern(pattern, frame)
            if not path.is_file():
                raise ValueError(f"frame {frame}, {kind} pass: {path} does not exist")
            out.setdefault(frame, {})[kind] = path
    return out


def upload_passes(
    client: Uploader, patterns: Mapping[str, str], frames: Iterable[int]
) -> tuple[dict[int, dict[str, str]], list[pb.Asset]]:
    """Uploads every frame's passes: ({frame: {pass: asset id}} for genfx.request.build_request's
    ``passes``, the assets in upload order). Patterns that are empty are skipped."""
    files = sequence_files({k: v for k, v in patterns.items() if v}, frames)
    passes: dict[int, dict[str, str]] = {}
    assets: list[pb.Asset] = []
    for frame, kinds in sorted(files.items()):
        for kind, path in kinds.items():
            asset = client.upload(path)
            assets.append(asset)
            passes.setdefault(frame, {})[kind] = asset.id
    return passes, assets


def attach_passes(
    request: pb.GenerateRequest, client: Uploader, patterns: Mapping[str, str]
) -> list[pb.Asset]:
    """Uploads every frame's passes for the request's frame range and fills request.conditioning."""
    frames = range(request.shot.frame_start, request.shot.frame_end + 1)
    passes, assets = upload_passes(client, patterns, frames)
    del request.conditioning.frames[:]
    request.conditioning.frames.extend(frame_assets(passes))
    return assets
