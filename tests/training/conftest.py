"""Shared training fixtures: a small procedural source, the tiny model, and a dataset ingested from them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from training.synth.generate import SynthSettings, synthesize

ROOT = Path(__file__).resolve().parents[2]
SMALL = SynthSettings(shots=2, frames=4, width=64, height=48, seed=1)


def run_train(
    *args: str, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``genfx-train ARGS`` as a subprocess (what a user runs); output captured."""
    cmd = [sys.executable, "-m", "training", *args]
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=full_env)


@pytest.fixture(scope="session")
def collapse_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sources") / "collapse"
    synthesize(out, SMALL)
    return out


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from inference_server.tiny_model import ensure_tiny_model

    return ensure_tiny_model(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory, collapse_source: Path, ray_cluster: object) -> Path:
    from training.etl.ingest import IngestSettings, ingest

    out = tmp_path_factory.mktemp("datasets") / "collapse"
    ingest([collapse_source], out, IngestSettings(buckets=("32x32",), shard_size=3))
    return out
