"""One frame -> one training sample: decode, colour, crop/resize to its bucket, condition, caption, hashes.

The webdataset members of a sample ``KEY``: ``KEY.png`` (8-bit display sRGB), ``KEY.txt`` (caption),
``KEY.json`` (metadata: source, licence, files and their sha256, bucket, crop), and for renders with
depth + motion + mask ``KEY.cond.npy`` (float16, H x W x 4, genfx/sim_condition.py, depth normalised with
the shot's range: training/etl/shot_ranges.py).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from genfx.hashing import sha256_of
from genfx.resample import area_resize, crop
from genfx.sim_condition import sim_condition
from training.etl.buckets import choose_bucket, crop_for
from training.etl.captions import caption, view_words
from training.etl.decode import DecodeError, read_beauty, read_depth, read_mask, read_motion
from training.etl.discover import FrameFiles

CONDITION_PASSES = ("depth", "motion", "mask")


@dataclass(frozen=True)
class SourceInfo:
    """What a shard task needs to know about a source (plain data, shipped to Ray workers)."""

    source_id: str
    path: str
    licence: str
    owner: str
    kind: str
    description: str
    caption_template: str


def sample_key(source_id: str, frame: FrameFiles) -> str:
    # webdataset splits keys at the first dot of a member name: keep keys dot-free.
    stem = f"{source_id}__{frame.shot}__{frame.sequence}__{frame.frame:06d}"
    return re.sub(r"[^A-Za-z0-9_-]+", "-", stem)


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def _png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    # No timestamps or metadata chunks: the same pixels always give the same bytes (and sha256).
    Image.fromarray(np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8), "RGB").save(buf, "PNG")
    return buf.getvalue()


def build_sample(
    src: SourceInfo,
    frame: FrameFiles,
    buckets: list[tuple[int, int]],
    depth_range: tuple[float, float] | None = None,
) -> dict[str, bytes]:
    """The members of one sample; DecodeError naming the file on unreadable or mismatched input.
    ``depth_range`` is the frame's SHOT's (shot_ranges.py): the condition's depth normalisation."""
    root = Path(src.path)
    files = {"beauty": frame.beauty, **frame.passes}
    hashes = {kind: sha256_of(root / rel).hexdigest() for kind, rel in files.items()}
    rgb = read_beauty(root / frame.beauty)
    h, w = rgb.shape[:2]
    passes: dict[str, np.ndarray] = {}
    readers = {"depth": read_depth, "motion": read_motion, "mask": read_mask}
    for kind, rel in frame.passes.items():
        passes[kind] = readers[kind](root / rel)
        if passes[kind].shape[:2] != (h, w):
            ph, pw = passes[kind].shape[:2]
            raise DecodeError(
                f"{root / rel}: mismatched pass size {pw}x{ph}; its beauty {root / frame.beauty} is {w}x{h}"
            )
    bucket = choose_bucket(w, h, buckets)
    box = crop_for(w, h, bucket)
    image = area_resize(crop(rgb, box), *bucket)
    members: dict[str, bytes] = {"png": _png(image)}
    mask = passes.get("mask")
    conditioned = all(k in passes for k in CONDITION_PASSES)
    if conditioned:
        cond = sim_condition(
            passes["depth"], passes["motion"], passes["mask"], near_far=depth_range, size=bucket, crop_box=box
        )
        members["cond.npy"] = _npy(cond.astype(np.float16))
    camera = root / frame.camera if frame.camera else None
    text = caption(
        src.caption_template,
        description=src.description,
        kind=src.kind,
        view=view_words(camera, frame.frame),
        dust_fraction=float(mask.mean()) if mask is not None else 0.0,
    )
    members["txt"] = text.encode("utf-8")
    meta: dict[str, Any] = {
        "source": src.source_id,
        "licence": src.licence,
        "owner": src.owner,
        "shot": frame.shot,
        "sequence": frame.sequence,
        "frame": frame.frame,
        "files": {kind: {"path": rel, "sha256": hashes[kind]} for kind, rel in files.items()},
        "size": [w, h],
        "bucket": list(bucket),
        "crop": list(box),
        "caption": text,
        **({"depth_range": list(depth_range) if depth_range else None} if conditioned else {}),
        "members": {ext: hashlib.sha256(data).hexdigest() for ext, data in sorted(members.items())},
    }
    members["json"] = json.dumps(meta, sort_keys=True).encode("utf-8")
    return members
