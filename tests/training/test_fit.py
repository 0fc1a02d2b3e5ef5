"""fit: outputs in diffusers' formats that load as the server loads them; the loss falls; bad input named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from genfx.sim_condition import sim_condition, to_chw
from inference_server.models import model_hash
from tests.training.conftest import run_train
from training.cli import main

FAST = ["--steps", "4", "--batch-size", "2", "--checkpoint-every", "2", "--validation-steps", "2"]
LORA_CN = ["--train", "lora,controlnet", "--snr-gamma", "5", "--noise-offset", "0.05", *FAST]


@pytest.fixture(scope="module")
def lora_controlnet_run(tmp_path_factory: pytest.TempPathFactory, dataset: Path, tiny_model: Path) -> Path:
    out = tmp_path_factory.mktemp("runs") / "lora_cn"
    result = run_train(
        "fit", "--dataset", str(dataset), "--base-model", str(tiny_model), "--out", str(out), *LORA_CN
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_outputs_card_and_checkpoint_pictures(
    lora_controlnet_run: Path, dataset: Path, tiny_model: Path
) -> None:
    out = lora_controlnet_run
    card = json.loads((out / "model_card.json").read_text())
    manifest = json.loads((dataset / "manifest.json").read_text())
    assert card["dataset"]["sha256"] == manifest["dataset_sha256"]
    assert card["dataset"]["licences"] == ["CC0-1.0"]
    assert card["base_model"]["sha256"] == model_hash(tiny_model)
    assert card["hyperparameters"]["train"] == ["controlnet", "lora"] and card["steps"] == 4
    assert card["conditioning"]["channels"] == ["inverse_depth", "motion_x", "motion_y", "mask"]
    assert "git" in card["code_version"]
    assert set(card["outputs"]) >= {"lora/pytorch_lora_weights.safetensors", "controlnet/config.json"}
    for step in ("step-000002", "step-000004"):
        for name in ("validation.png", "loss.png", "trainable.safetensors", "optimizer.pt"):
            assert (out / "checkpoints" / step / name).stat().st_size > 0


def test_lora_and_controlnet_load_with_diffusers(lora_controlnet_run: Path, tiny_model: Path) -> None:
    import diffusers

    d: Any = diffusers  # untyped for mypy --strict
    pipe = d.StableDiffusionPipeline.from_pretrained(tiny_model, local_files_only=True, safety_checker=None)
    kw = {"num_inference_steps": 2, "height": 32, "width": 32, "output_type": "np"}
    before = pipe("a building collapses", generator=torch.Generator().manual_seed(0), **kw).images
    pipe.load_lora_weights(lora_controlnet_run / "lora", adapter_name="collapse")  # what the server will call
    after = pipe("a building collapses", generator=torch.Generator().manual_seed(0), **kw).images
    assert np.abs(after - before).max() > 1e-4, "the LoRA changed nothing"

    controlnet = d.ControlNetModel.from_pretrained(lora_controlnet_run / "controlnet", local_files_only=True)
    assert controlnet.config.conditioning_channels == 4
    cn_pipe = d.StableDiffusionControlNetPipeline(**{**pipe.components, "controlnet": controlnet})
    depth = np.full((32, 32), 10.0, np.float32)
    zeros = np.zeros((32, 32), np.float32)
    cond = sim_condition(depth, np.zeros((32, 32, 2), np.float32), zeros, near_far=(5.0, 20.0))
    image = cn_pipe(
        "a building collapses",
        image=torch.from_numpy(to_chw(cond))[None],
        generator=torch.Generator().manual_seed(0),
        **kw,
    ).images
    assert image.shape == (1, 32, 32, 3) and np.isfinite(image).all()


def _in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """genfx-train's main() in this process: the same exit code and messages, without a new interpreter."""
    code = main(list(args))
    return code, capsys.readouterr().err


def test_the_loss_falls_on_the_procedural_set(
    tmp_path: Path, dataset: Path, tiny_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "unet"
    code, err = _in_process(
        capsys,
        "fit",
        "--dataset",
        str(dataset),
        "--base-model",
        str(tiny_model),
        "--out",
        str(out),
        "--train",
        "unet",
        "--steps",
        "10",
        "--batch-size",
        "2",
        "--lr",
        "1e-3",
        "--checkpoint-every",
        "10",
        "--validation-steps",
        "1",
    )
    assert code == 0, err[-3000:]
    card = json.loads((out / "model_card.json").read_text())
    (_, first), (_, last) = card["eval_loss"]["first"], card["eval_loss"]["last"]
    assert last < 0.7 * first, card["eval_loss"]
    assert (out / "unet" / "config.json").is_file()


def test_bad_input_is_named_and_leaves_no_finished_run(
    tmp_path: Path,
    dataset: Path,
    tiny_model: Path,
    lora_controlnet_run: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    model, data = str(tiny_model), str(dataset)
    not_a_model = tmp_path / "not_a_model"
    not_a_model.mkdir()
    code, err = _in_process(
        capsys, "fit", "--dataset", data, "--base-model", str(not_a_model), "--out", str(tmp_path / "a")
    )
    assert code == 2 and f"base model {not_a_model}: no model_index.json" in err
    assert not (tmp_path / "a" / "model_card.json").exists()

    run = str(lora_controlnet_run)
    code, err = _in_process(capsys, "fit", "--dataset", data, "--base-model", model, "--out", run, *FAST)
    assert code == 2 and "holds another run" in err
    code, err = _in_process(
        capsys,
        "fit",
        "--dataset",
        data,
        "--base-model",
        model,
        "--out",
        run,
        "--resume",
        *LORA_CN,
        "--lr",
        "0.5",
    )
    assert code == 2 and "holds a different run (differs in lr)" in err
    code, err = _in_process(
        capsys, "fit", "--dataset", str(tmp_path), "--base-model", model, "--out", str(tmp_path / "b")
    )
    assert code == 2 and "manifest.json: missing" in err


def test_the_server_serves_the_run_by_name(
    lora_controlnet_run: Path, tiny_model: Path, collapse_source: Path
) -> None:
    """What fit wrote, served: the LoRA and the sim ControlNet listed with their card's hashes, chosen by
    name, and recorded in every frame's header."""
    from genfx.client import Client, build_request
    from genfx.exr import read_header
    from genfx.local_server import LocalServer
    from genfx.proto import genfx_pb2 as pb
    from genfx.sequences import attach_passes
    from genfx.shot import load_shot

    run = lora_controlnet_run
    card = json.loads((run / "model_card.json").read_text())
    data = tiny_model.parent.parent  # the server's built-in tiny is this same folder: built once
    config = data / "models.json"
    models = {"collapse": {"path": str(tiny_model), "sim_controlnet": str(run / "controlnet")}}
    config.write_text(json.dumps({"models": models, "loras": {"collapse": str(run / "lora")}}))
    shot_dir = collapse_source / "shot_000"
    shot = load_shot(shot_dir / "camera.json")
    with (
        LocalServer(data, extra_args=("--models-config", str(config))) as server,
        Client(server.address, timeout=120) as client,
    ):
        info = client.info()
        lora = info.loras[0]
        assert (lora.name, lora.hash) == ("collapse", model_hash(run / "lora"))
        assert (lora.base_model_hash, lora.dataset_hash) == (
            card["base_model"]["sha256"],
            card["dataset"]["sha256"],
        )
        assert list(lora.models) == ["collapse", "tiny"]
        cn = next(m for m in info.models if m.name == "collapse").sim_controlnet
        assert (cn.hash, cn.dataset_hash) == (model_hash(run / "controlnet"), card["dataset"]["sha256"])
        req = build_request(
            prompt="a concrete building collapsing",
            camera=shot.camera,
            frame_start=shot.frame_start,
            frame_end=shot.frame_start + 1,
            seed=1,
            steps=2,
            model="collapse",
            loras=[("collapse", 0.9)],
        )
        attach_passes(req, client, {k: str(shot_dir / f"{k}.####.exr") for k in ("depth", "motion", "mask")})
        job = client.get_job(list(client.generate(req))[0].job_id)
    assert job.state == pb.JOB_STATE_SUCCEEDED, job.message
    folder = data / "jobs" / job.id
    assert json.loads((folder / "manifest.json").read_text())["mode"] == "sim"
    for frame in job.frame_infos:
        header = read_header(folder / frame.file_name)
        assert [(r["name"], r["weight"], r["sha256"]) for r in json.loads(header["genfx/loras"])] == [
            ("collapse", 0.9, lora.hash)
        ]
        assert json.loads(header["genfx/controlnet"])["dataset_sha256"] == card["dataset"]["sha256"]
