"""Long-ish trainer checks (marked slow): resume after kill -9, and DDP on 2 CPU processes (gloo).

Tolerances: a resumed run redoes the same float operations in the same order, so its weights must be
bit-identical (0.0). DDP averages two per-process gradients where one process averages the whole
batch, which changes float summation order only: LoRA weights must agree within 1e-5 absolute.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from tests.training.conftest import ROOT, run_train
from training.cli import main

pytestmark = pytest.mark.slow
LORA = "lora/pytorch_lora_weights.safetensors"
DDP_TOLERANCE = 1e-5


def _fit_args(dataset: Path, model: Path, out: Path, *extra: str) -> list[str]:
    return [
        "fit",
        "--dataset",
        str(dataset),
        "--base-model",
        str(model),
        "--out",
        str(out),
        "--train",
        "lora",
        "--lr",
        "1e-3",
        "--validation-steps",
        "2",
        *extra,
    ]


def _max_diff(a: Path, b: Path) -> float:
    wa, wb = load_file(str(a)), load_file(str(b))
    assert set(wa) == set(wb) and wa
    return max(float((wa[k] - wb[k]).abs().max()) for k in wa)


def test_resume_after_kill_9_matches_an_uninterrupted_run(
    tmp_path: Path, dataset: Path, tiny_model: Path
) -> None:
    steps = ["--steps", "4", "--batch-size", "2", "--checkpoint-every", "2"]
    assert main(_fit_args(dataset, tiny_model, tmp_path / "straight", *steps)) == 0  # in this process

    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "training", *_fit_args(dataset, tiny_model, out, *steps)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    latest = out / "checkpoints" / "latest"
    deadline = time.monotonic() + 240
    while not (latest.is_file() and latest.read_text() >= "step-000002"):
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "no checkpoint in time"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not (out / "model_card.json").exists(), "a killed run must not look finished"

    resumed = run_train(*_fit_args(dataset, tiny_model, out, *steps, "--resume"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming" in resumed.stderr
    assert _max_diff(out / LORA, tmp_path / "straight" / LORA) == 0.0


def test_sigterm_stops_after_a_step_with_a_checkpoint(
    tmp_path: Path, dataset: Path, tiny_model: Path
) -> None:
    out = tmp_path / "term"
    cmd = [
        sys.executable,
        "-m",
        "training",
        *_fit_args(dataset, tiny_model, out, "--steps", "400", "--checkpoint-every", "1000"),
    ]
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 240
    while not (out / "run.json").is_file():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(3)  # into the training steps
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "stopped by SIGTERM" in err
    state = json.loads(
        (out / "checkpoints" / (out / "checkpoints" / "latest").read_text() / "state.json").read_text()
    )
    assert 0 < state["step"] < 400
    assert not (out / "model_card.json").exists()


def test_ddp_two_cpu_processes_equal_one_process_with_the_same_global_batch(
    tmp_path: Path, dataset: Path, tiny_model: Path
) -> None:
    every = ["--steps", "2", "--checkpoint-every", "2"]
    assert main(_fit_args(dataset, tiny_model, tmp_path / "one", *every, "--batch-size", "2")) == 0
    accelerate = [
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
    ]
    accelerate += ["--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29571"]
    launch = [sys.executable, *accelerate, "-m", "training"]
    launch += _fit_args(dataset, tiny_model, tmp_path / "two", *every, "--batch-size", "1")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    ddp = subprocess.run(launch, cwd=ROOT, capture_output=True, text=True, timeout=400, env=env)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    card = json.loads((tmp_path / "two" / "model_card.json").read_text())
    assert card["world_size"] == 2 and card["hyperparameters"]["global_batch"] == 2
    state = json.loads((tmp_path / "two" / "checkpoints" / "step-000002" / "state.json").read_text())
    assert len(state["rank_param_sha256"]) == 2 and len(set(state["rank_param_sha256"])) == 1, "ranks differ"
    assert _max_diff(tmp_path / "two" / LORA, tmp_path / "one" / LORA) <= DDP_TOLERANCE
