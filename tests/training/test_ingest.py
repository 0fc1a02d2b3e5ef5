"""ingest: licensed sources only, every sample traceable, resumable, bad input named and the run goes on."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from genfx.hashing import sha256_of
from genfx.passes import shot_depth_range
from tests.training.conftest import SMALL, run_train
from training.etl.ingest import IngestSettings, NothingToIngest, ingest
from training.etl.pipeline import run_plan_here
from training.etl.plan import check_or_save_plan, make_plan
from training.exr_passes import read_channels, write_channels
from training.source_record import ACCEPTED_LICENCES

SETTINGS = IngestSettings(buckets=("32x32",), shard_size=3)


def _copy(src: Path, dst: Path, **record_changes: object) -> Path:
    shutil.copytree(src, dst)
    record = json.loads((dst / "source.json").read_text())
    record.update(record_changes)
    (dst / "source.json").write_text(json.dumps(record))
    return dst


def test_unlicensed_sources_are_refused_and_listed(
    tmp_path: Path, collapse_source: Path, ray_cluster: object
) -> None:
    nc = _copy(collapse_source, tmp_path / "noncommercial", licence="CC-BY-NC-4.0")
    no_consent = _copy(collapse_source, tmp_path / "no_consent", consent=False)
    missing = _copy(collapse_source, tmp_path / "no_record")
    (missing / "source.json").unlink()
    broken = _copy(collapse_source, tmp_path / "broken_record")
    (broken / "source.json").write_text("{not json")
    manifest = ingest([collapse_source, nc, no_consent, missing, broken], tmp_path / "ds", SETTINGS)

    assert [s["licence"] for s in manifest["sources"]] == ["CC0-1.0"]
    refused = {Path(r["path"]).name: r["reason"] for r in manifest["refused"]}
    assert set(refused) == {"noncommercial", "no_consent", "no_record", "broken_record"}
    assert "licence 'CC-BY-NC-4.0' is not accepted" in refused["noncommercial"]
    assert all(lic in refused["noncommercial"] for lic in ACCEPTED_LICENCES)
    assert "'consent' must be true" in refused["no_consent"]
    assert "source.json: missing" in refused["no_record"]
    assert "source.json: not valid JSON" in refused["broken_record"]
    # Nothing from a refused source is in the dataset.
    accepted_id = manifest["sources"][0]["id"]
    assert {s["source"] for s in manifest["samples"]} == {accepted_id}
    assert len(manifest["samples"]) == SMALL.shots * SMALL.frames


def test_all_refused_is_an_error_naming_the_file(tmp_path: Path, collapse_source: Path) -> None:
    nc = _copy(collapse_source, tmp_path / "nc", licence="unknown")
    with pytest.raises(NothingToIngest, match="nc/source.json: licence 'unknown'"):
        ingest([nc], tmp_path / "ds", SETTINGS)
    result = run_train("ingest", str(nc), "--out", str(tmp_path / "ds2"), "--bucket", "32x32")
    assert result.returncode == 2 and "licence 'unknown' is not accepted" in result.stderr
    assert not (tmp_path / "ds2" / "manifest.json").exists()


def test_every_sample_is_traceable_and_the_hash_is_reproducible(
    tmp_path: Path, dataset: Path, collapse_source: Path
) -> None:
    manifest = json.loads((dataset / "manifest.json").read_text())
    for sample in manifest["samples"]:
        assert sample["licence"] == "CC0-1.0" and sample["caption"].startswith(
            "a concrete building collapsing"
        )
        for kind, entry in sample["files"].items():
            assert sha256_of(collapse_source / entry["path"]).hexdigest() == entry["sha256"], kind
        assert set(sample["files"]) == {"beauty", "depth", "motion", "mask"}
    # The condition's depth is normalised with the SHOT's range, computed over all its depth frames.
    for shot in {s["shot"] for s in manifest["samples"]}:
        depths = [read_channels(p)[0]["Z"] for p in sorted((collapse_source / shot).glob("depth.*.exr"))]
        ranges = {tuple(s["depth_range"]) for s in manifest["samples"] if s["shot"] == shot}
        expected = shot_depth_range(depths)
        assert expected is not None and len(ranges) == 1, (shot, ranges)
        assert list(ranges.pop()) == pytest.approx(list(expected), rel=1e-6)
    again = ingest([collapse_source], tmp_path / "again", SETTINGS)
    assert again["dataset_sha256"] == manifest["dataset_sha256"]
    # The shards are plain webdataset: the webdataset library reads them.
    import webdataset as wds

    first = next(iter(wds.WebDataset(str(dataset / manifest["shards"][0]["name"]), shardshuffle=False)))
    assert {"png", "txt", "json", "cond.npy"} <= set(first)
    cond = np.load(__import__("io").BytesIO(first["cond.npy"]))
    assert cond.shape == (32, 32, 4) and float(cond.min()) >= 0.0 and float(cond.max()) <= 1.0


def test_resume_skips_finished_shards_and_refuses_another_dataset(
    tmp_path: Path, collapse_source: Path, ray_cluster: object
) -> None:
    out = tmp_path / "ds"
    first = ingest([collapse_source], out, SETTINGS)
    (out / "shard-000001.json").unlink()  # as if killed before that shard finished
    (out / "manifest.json").unlink()
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*.tar") if p.name != "shard-000001.tar"}
    second = ingest([collapse_source], out, SETTINGS)
    assert second["dataset_sha256"] == first["dataset_sha256"]
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*.tar") if p.name in stamps} == stamps
    with pytest.raises(FileExistsError, match="holds another dataset"):
        ingest([collapse_source], out, IngestSettings(buckets=("64x64",), shard_size=3))


def test_gaps_mismatched_sizes_and_unreadable_files_are_named(
    tmp_path: Path, collapse_source: Path, ray_cluster: object
) -> None:
    gap = _copy(collapse_source, tmp_path / "gap")
    for kind in ("beauty", "depth", "motion", "mask"):
        (gap / "shot_000" / f"{kind}.1002.exr").unlink()
    bad = _copy(collapse_source, tmp_path / "bad")
    (bad / "shot_001" / "beauty.1003.exr").write_bytes(b"not an exr at all")
    _, header = read_channels(bad / "shot_000" / "depth.1004.exr")
    small = {k: v for k, v in header.items() if k not in ("dataWindow", "displayWindow")}
    write_channels(bad / "shot_000" / "depth.1004.exr", {"Z": np.ones((24, 32), np.float32)}, small)
    manifest = ingest([gap, bad], tmp_path / "ds", SETTINGS)

    assert len(manifest["refused"]) == 1
    assert (
        "gap/shot_000/beauty.#.exr: sequence has gaps (missing frame(s) 1002"
        in manifest["refused"][0]["reason"]
    )
    errors = {Path(e["file"]).name: e["error"] for e in manifest["errors"]}
    assert len(errors) == 2 and "unreadable image" in errors["beauty.1003.exr"]
    assert "depth.1004.exr: mismatched pass size 32x24; its beauty" in errors["beauty.1004.exr"]
    # The run went on: every other frame of the accepted source is in.
    assert len(manifest["samples"]) == SMALL.shots * SMALL.frames - 2


def test_shard_tasks_run_in_process_make_the_dataset_ray_makes(
    tmp_path: Path, dataset: Path, collapse_source: Path
) -> None:
    """The shard task has one builder (pipeline.shard_task): run without Ray (run_plan_here, as
    bench_training_fit does) it must give the dataset the Ray pipeline gave, depth ranges included."""
    plan = make_plan([collapse_source], {"buckets": [[32, 32]], "shard_size": 3}, 3)
    out = tmp_path / "in-process"
    check_or_save_plan(out, plan)
    made = run_plan_here(plan, out)
    assert made["dataset_sha256"] == json.loads((dataset / "manifest.json").read_text())["dataset_sha256"]
