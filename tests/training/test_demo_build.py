"""The pieces `make model` chains beyond synth/ingest/fit: the VAE stage, the seeded architecture,
the ControlNet init for a from-scratch UNet, and assemble (a servable folder and its card)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from genfx.hashing import sha256_of
from inference_server.models import ModelRegistry, load_model_config, model_hash
from tests.training.conftest import run_train
from training.cli import main

VAE_FIT = [
    "--train",
    "vae",
    "--steps",
    "4",
    "--batch-size",
    "2",
    "--checkpoint-every",
    "2",
    "--vae-crop",
    "16",
]


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory: pytest.TempPathFactory, dataset: Path, tiny_model: Path) -> Path:
    out = tmp_path_factory.mktemp("runs") / "vae"
    args = ["fit", "--dataset", str(dataset), "--base-model", str(tiny_model), "--out", str(out), *VAE_FIT]
    result = run_train(*args, "--threads", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_vae_stage_writes_a_vae_with_unit_variance_latents(vae_run: Path, dataset: Path) -> None:
    import diffusers

    from training.train.data import ShardDataset
    from training.train.vae_loop import latent_scale

    d: Any = diffusers  # untyped for mypy --strict
    card = json.loads((vae_run / "model_card.json").read_text())
    assert card["hyperparameters"]["train"] == ["vae"] and card["steps"] == 4
    assert [step for step, _ in card["eval_loss"]["all"]] == [0, 2, 4]
    assert set(card["outputs"]) == {"vae/config.json", "vae/diffusion_pytorch_model.safetensors"}
    vae = d.AutoencoderKL.from_pretrained(vae_run / "vae")
    samples = ShardDataset(dataset, need=("png",))
    # The scale is 1/std of the trained VAE's latents (unit variance for the diffusion model).
    assert vae.config.scaling_factor == pytest.approx(latent_scale(vae, samples), rel=1e-5)
    assert vae.config.scaling_factor != 0.18215  # the tiny model's, replaced


def test_vae_stage_resumes_bit_identical(
    vae_run: Path, dataset: Path, tiny_model: Path, tmp_path: Path
) -> None:
    from safetensors.torch import load_file

    resumed = tmp_path / "resumed"
    shutil.copytree(vae_run, resumed)
    for name in ("vae", "model_card.json", "loss.png", "validation.png", "checkpoints/step-000004"):
        shutil.rmtree(resumed / name, ignore_errors=True)
        (resumed / name).unlink(missing_ok=True)
    (resumed / "checkpoints" / "latest").write_text("step-000002")
    args = ["fit", "--dataset", str(dataset), "--base-model", str(tiny_model), "--out", str(resumed)]
    result = run_train(*args, *VAE_FIT, "--threads", "1", "--resume")
    assert result.returncode == 0, result.stderr[-3000:]
    a = load_file(str(vae_run / "vae" / "diffusion_pytorch_model.safetensors"))
    b = load_file(str(resumed / "vae" / "diffusion_pytorch_model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_vae_trains_alone(
    dataset: Path, tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["fit", "--dataset", str(dataset), "--base-model", str(tiny_model), "--out", str(tmp_path / "r")]
    assert main([*args, "--train", "vae,unet"]) == 2
    assert "--train: vae trains alone" in capsys.readouterr().err


def test_init_model_is_the_same_bytes_every_time(tmp_path: Path) -> None:
    assert main(["init-model", "--out", str(tmp_path / "a")]) == 0
    assert main(["init-model", "--out", str(tmp_path / "b")]) == 0
    assert model_hash(tmp_path / "a") == model_hash(tmp_path / "b")


def test_a_controlnet_trained_with_a_fresh_unet_starts_without_zero_convolutions(tiny_model: Path) -> None:
    from training.train.base_model import load_components, unzero_controlnet

    cn = load_components(tiny_model, controlnet=True).controlnet
    assert cn is not None  # asked for
    convs = [*cn.controlnet_down_blocks, cn.controlnet_mid_block, cn.controlnet_cond_embedding.conv_out]
    assert all(float(c.weight.detach().abs().sum()) == 0.0 for c in convs)  # ControlNet's own init
    unzero_controlnet(cn)
    assert all(float(c.weight.detach().abs().sum()) > 0.0 for c in convs)


def test_assemble_makes_a_servable_half_precision_model(
    vae_run: Path, tiny_model: Path, tmp_path: Path
) -> None:
    import diffusers

    d: Any = diffusers  # untyped for mypy --strict
    out = tmp_path / "model"
    assert (
        main(
            ["assemble", "--base-model", str(tiny_model), "--part", str(vae_run), "--out", str(out), "--fp16"]
        )
        == 0
    )
    card = json.loads((out / "model_card.json").read_text())
    assert card["base_model"]["sha256"] == model_hash(out / "pipeline")
    assert card["runs"][0]["trained"] == ["vae"] and card["dtype"] == "float16"
    for rel, digest in card["outputs"].items():
        assert sha256_of(out / rel).hexdigest() == digest
    from safetensors.torch import load_file

    for part in ("unet", "vae", "text_encoder"):
        (weights,) = (out / "pipeline" / part).glob("*.safetensors")
        assert {t.dtype for t in load_file(str(weights)).values()} == {torch.float16}, part
    pipe = d.StableDiffusionPipeline.from_pretrained(out / "pipeline", local_files_only=True)
    trained = d.AutoencoderKL.from_pretrained(vae_run / "vae")
    assert pipe.vae.config.scaling_factor == trained.config.scaling_factor
    config = load_model_config(out / "models.json")
    registry = ModelRegistry(config.models, tmp_path / "cache", include_tiny=False)
    assert registry.names() == ["demo"] and "txt2img" in registry.info("demo").capabilities


def test_assemble_refuses_an_unfinished_run(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    args = ["assemble", "--base-model", str(tiny_model), "--part", str(run), "--out", str(tmp_path / "m")]
    assert main(args) == 2
    assert f"--part {run}: no model_card.json (not a finished genfx-train fit run)" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
