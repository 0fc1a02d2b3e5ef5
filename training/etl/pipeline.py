"""Run an ingest plan on Ray Data: one task per unfinished shard, then the dataset manifest.

Each shard task decodes its frames, writes its tar and sidecar, and reports back; a frame that cannot
be read is named in the sidecar's ``errors`` and skipped, and the run goes on. Finished shards (those
with a sidecar) are skipped, so an interrupted ingest resumes where it stopped.
"""

from __future__ import annotations

import io
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from training.etl.decode import DecodeError
from training.etl.discover import FrameFiles
from training.etl.manifest import write_manifest
from training.etl.plan import Plan
from training.etl.sample import SourceInfo, build_sample
from training.etl.shards import read_sidecar, write_shard
from training.etl.shot_ranges import DepthRange, compute_ranges, depth_files, range_of_files, shot_key


def shard_task(
    plan: Plan, out: Path, index: int, ranges: dict[str, DepthRange], latent_model: Path | None
) -> dict[str, Any]:
    """The row ``process_shard`` takes for one shard: its samples, the sources, and the depth range of
    each shot it holds (``ranges``: every shot's, from shot_ranges)."""
    shard = plan.shards[index]
    shots = {shot_key(s.source, s.frame.shot) for s in shard}
    task = {
        "index": index,
        "out": str(out),
        "buckets": plan.settings["buckets"],
        "latent_model": str(latent_model) if latent_model else "",
        "sources": [asdict(s) for s in plan.sources],
        "depth_ranges": {k: v for k, v in ranges.items() if k in shots},
        "samples": [{"key": s.key, "source": s.source, "frame": asdict(s.frame)} for s in shard],
    }
    return {"task": json.dumps(task)}


def run_plan_here(plan: Plan, out: Path) -> dict[str, Any]:
    """Every shard of ``plan`` written in this process, without Ray (benches, small runs); returns the
    manifest ``run_plan`` would write for the same plan."""
    shards = list(range(len(plan.shards)))
    ranges = {key: range_of_files(files) for key, files in depth_files(plan, shards).items()}
    for i in shards:
        process_shard(shard_task(plan, out, i, ranges, None))
    return write_manifest(out, plan)


def process_shard(row: dict[str, Any]) -> dict[str, Any]:
    """Ray Data map function: build and write one shard (arguments travel as one JSON string)."""
    task = json.loads(row["task"])
    out = Path(task["out"])
    buckets = [tuple(b) for b in task["buckets"]]
    sources = [SourceInfo(**s) for s in task["sources"]]
    ranges = {k: (float(v[0]), float(v[1])) if v else None for k, v in task["depth_ranges"].items()}
    samples: list[tuple[str, dict[str, bytes]]] = []
    records: list[dict[str, Any]] = []
    errors: list[dict[str, str]] = []
    for item in task["samples"]:
        src = sources[item["source"]]
        frame = FrameFiles(**item["frame"])
        try:
            members = build_sample(src, frame, buckets, ranges.get(shot_key(item["source"], frame.shot)))
            if task["latent_model"]:
                members.update(_latent_members(Path(task["latent_model"]), members))
        except (DecodeError, OSError, ValueError) as exc:
            errors.append({"key": item["key"], "file": str(Path(src.path) / frame.beauty), "error": str(exc)})
            continue
        samples.append((item["key"], members))
        records.append({"key": item["key"], **json.loads(members["json"])})
    write_shard(out, task["index"], samples, {"samples": records, "errors": errors})
    return {"index": task["index"], "samples": len(samples), "errors": len(errors)}


def _latent_members(model_dir: Path, members: dict[str, bytes]) -> dict[str, bytes]:
    from training.etl.latent_cache import encode
    from training.etl.sample import _npy

    image = np.asarray(Image.open(io.BytesIO(members["png"])).convert("RGB"), dtype=np.float32) / 255.0
    latent, text = encode(model_dir, image, members["txt"].decode("utf-8"))
    return {"latent.npy": _npy(latent), "text.npy": _npy(text)}


def _init_ray(address: str | None, workers: int | None) -> None:
    import ray

    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        # address="local": always a new local instance; a plain init() would join whatever cluster
        # /tmp/ray/ray_current_cluster names (another user's, or a dead one) and refuse num_cpus.
        ray.init(address="local", num_cpus=workers, log_to_driver=False, include_dashboard=False)


def run_plan(
    plan: Plan, out: Path, *, ray_address: str | None, workers: int | None, latent_model: Path | None
) -> dict[str, Any]:
    """Write every unfinished shard, then manifest.json; returns the manifest."""
    pending = [i for i in range(len(plan.shards)) if read_sidecar(out, i) is None]
    done = sum(len(plan.shards[i]) for i in range(len(plan.shards)) if i not in pending)
    total = sum(len(s) for s in plan.shards)
    bar = tqdm(total=total, initial=done, unit="frame", desc="ingest", file=sys.stderr, dynamic_ncols=True)
    if pending:
        import ray
        import ray.data

        _init_ray(ray_address, workers)
        ray.data.DataContext.get_current().enable_progress_bars = False  # ours counts frames
        # First every shot's depth range (the conditioning's normalisation), then the shards.
        ranges = compute_ranges(depth_files(plan, pending))
        tasks = [shard_task(plan, out, i, ranges, latent_model) for i in pending]
        ds = ray.data.from_items(tasks, override_num_blocks=len(tasks)).map(process_shard, num_cpus=1)
        for result in ds.iter_rows():
            bar.update(int(result["samples"]) + int(result["errors"]))
    bar.close()
    return write_manifest(out, plan)
