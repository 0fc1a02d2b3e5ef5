"""Each shot's depth range, computed before its samples are built (a Ray Data stage).

The sim ControlNet's conditioning normalises depth with the SHOT's nearest and farthest surface
(genfx.passes.shot_depth_range, the rule the server uses at generation), so every sample of a shot
needs a pass over all of the shot's depth frames first — and shards cut shots apart, so this runs as its
own stage, one task per shot. A depth frame that cannot be read is skipped here; its sample reports it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from genfx.passes import shot_depth_range
from training.etl.decode import DecodeError, read_depth
from training.etl.plan import Plan

DepthRange = tuple[float, float] | None


def shot_key(source: int, shot: str) -> str:
    return f"{source}/{shot}"


def depth_files(plan: Plan, shards: list[int]) -> dict[str, list[str]]:
    """{shot key: every depth file of that shot} for the shots with depth in the given shards."""
    wanted = {
        shot_key(s.source, s.frame.shot) for i in shards for s in plan.shards[i] if "depth" in s.frame.passes
    }
    files: dict[str, list[str]] = {key: [] for key in sorted(wanted)}
    for shard in plan.shards:
        for s in shard:
            key = shot_key(s.source, s.frame.shot)
            if key in files and "depth" in s.frame.passes:
                files[key].append(str(Path(plan.sources[s.source].path) / s.frame.passes["depth"]))
    return files


def range_of_files(paths: list[str]) -> DepthRange:
    def readable() -> Any:
        for path in paths:
            try:
                yield read_depth(Path(path))
            except (DecodeError, OSError):
                continue

    return shot_depth_range(readable())


def range_task(row: dict[str, Any]) -> dict[str, Any]:
    """Ray Data map function: one shot's depth range (as JSON, None when the shot sees no surface)."""
    task = json.loads(row["task"])
    return {"key": task["key"], "range": json.dumps(range_of_files(task["files"]))}


def compute_ranges(files: dict[str, list[str]]) -> dict[str, DepthRange]:
    """Every shot's range, one Ray task per shot (Ray must be initialised)."""
    if not files:
        return {}
    import ray.data

    rows = [{"task": json.dumps({"key": key, "files": paths})} for key, paths in files.items()]
    ds = ray.data.from_items(rows, override_num_blocks=len(rows)).map(range_task, num_cpus=1)
    out: dict[str, DepthRange] = {}
    for result in ds.iter_rows():
        value = json.loads(result["range"])
        out[str(result["key"])] = (float(value[0]), float(value[1])) if value else None
    return out
