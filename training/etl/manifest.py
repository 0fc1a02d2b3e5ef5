"""The dataset manifest: every sample's source, licence, input sha256s and caption; the dataset hash.

``manifest.json`` in the dataset folder (written last, atomically: a dataset without it is unfinished)::

    {"format": "genfx-dataset/1", "dataset_sha256": "...", "settings": {...},
     "sources": [{"id", "path", "owner", "licence", "consent", "description", "kind", "caption",
                  "source_json_sha256", "samples"}],
     "refused": [{"path", "reason"}],
     "shards": [{"name", "tar_sha256", "samples"}],
     "samples": [{"key", "shard", "source", "licence", "owner", "shot", "sequence", "frame", "caption",
                  "files": {"beauty": {"path", "sha256"}, ...}, "members": {"png": sha256, ...},
                  "size", "bucket", "crop"}],
     "errors": [{"key", "file", "error"}]}

``dataset_sha256`` is the sha256 of the canonical JSON (sorted keys, no spaces) of
``{"settings": ..., "samples": [...sorted by key]}``: it changes when any input file, caption, crop or
setting changes, and not with shard packing, paths of the dataset folder or the time of the run.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from genfx.exr import write_atomic
from training.etl.plan import Plan
from training.etl.shards import read_sidecar, shard_name

MANIFEST_FILE = "manifest.json"
FORMAT = "genfx-dataset/1"


def dataset_hash(settings: dict[str, Any], samples: list[dict[str, Any]]) -> str:
    body = {"settings": settings, "samples": sorted(samples, key=lambda s: s["key"])}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def write_manifest(out: Path, plan: Plan) -> dict[str, Any]:
    shards, samples, errors = [], [], []
    for i in range(len(plan.shards)):
        side = read_sidecar(out, i)
        if side is None:
            raise RuntimeError(f"{out / shard_name(i)}.json: shard {i} is not finished")
        name = f"{shard_name(i)}.tar"
        shards.append({"name": name, "tar_sha256": side["tar_sha256"], "samples": len(side["samples"])})
        samples += [{**s, "shard": name} for s in side["samples"]]
        errors += side["errors"]
    hashed = [{k: v for k, v in s.items() if k != "shard"} for s in samples]
    manifest = {
        "format": FORMAT,
        "dataset_sha256": dataset_hash(plan.settings, hashed),
        "settings": plan.settings,
        "sources": plan.records,
        "refused": plan.refused,
        "shards": shards,
        "samples": samples,
        "errors": errors,
    }
    write_atomic(out / MANIFEST_FILE, json.dumps(manifest, indent=1, sort_keys=True).encode())
    return manifest


def read_manifest(dataset: Path) -> dict[str, Any]:
    path = Path(dataset) / MANIFEST_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (not a finished GenFX dataset; run genfx-train ingest)")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if data.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} manifest")
    return data
