"""The ingest plan: which sources are accepted (and why others are refused), which sample goes in which shard.

Built on the driver from source.json files and directory listings only. Its hash pins the dataset's
inputs and settings; a dataset folder remembers the plan it was started with (plan.json), so a re-run
resumes the same dataset and a different one is refused instead of mixing two datasets.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from training.etl.discover import FrameFiles, discover
from training.etl.sample import SourceInfo, sample_key
from training.source_record import SourceError, read_source

PLAN_FILE = "plan.json"


@dataclass(frozen=True)
class PlannedSample:
    key: str
    source: int  # index into Plan.sources
    frame: FrameFiles


@dataclass(frozen=True)
class Plan:
    sources: list[SourceInfo]
    records: list[dict[str, Any]]  # each accepted source's licence record, for the manifest
    refused: list[dict[str, str]]  # {"path", "reason"}
    shards: list[list[PlannedSample]]
    settings: dict[str, Any]

    def digest(self) -> str:
        body = {
            "records": self.records,
            "settings": self.settings,
            "shards": [[(s.key, asdict(s.frame)) for s in shard] for shard in self.shards],
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _source_id(folder: Path, sha256: str) -> str:
    return f"{folder.name}-{sha256[:8]}"


def make_plan(sources: list[Path], settings: dict[str, Any], shard_size: int) -> Plan:
    infos: list[SourceInfo] = []
    records: list[dict[str, Any]] = []
    refused: list[dict[str, str]] = []
    samples: list[PlannedSample] = []
    for folder in sources:
        folder = Path(folder).resolve()
        try:
            record = read_source(folder)
            frames = discover(folder)
        except SourceError as exc:
            refused.append({"path": str(folder), "reason": str(exc)})
            continue
        sid = _source_id(folder, record.sha256)
        infos.append(
            SourceInfo(
                sid,
                str(folder),
                record.licence,
                record.owner,
                record.kind,
                record.description,
                record.caption,
            )
        )
        records.append({"id": sid, "path": str(folder), **record.as_json(), "samples": len(frames)})
        samples += [PlannedSample(sample_key(sid, f), len(infos) - 1, f) for f in frames]
    shards = [samples[i : i + shard_size] for i in range(0, len(samples), shard_size)]
    return Plan(infos, records, refused, shards, settings)


def check_or_save_plan(out: Path, plan: Plan) -> None:
    """Save plan.json in a new dataset folder; refuse a folder that holds another dataset's plan."""
    path = out / PLAN_FILE
    digest = plan.digest()
    if path.is_file():
        saved = json.loads(path.read_text(encoding="utf-8")).get("plan_sha256")
        if saved != digest:
            raise FileExistsError(
                f"{out}: holds another dataset (its {PLAN_FILE} has different sources or settings); "
                "use an empty folder, or the same sources and settings to resume"
            )
        return
    if out.exists() and any(p for p in out.iterdir() if not p.name.startswith(".")):
        raise FileExistsError(
            f"{out}: not empty and not a GenFX dataset (no {PLAN_FILE}); use an empty folder"
        )
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps({"plan_sha256": digest, "settings": plan.settings}, indent=1), encoding="utf-8"
    )
