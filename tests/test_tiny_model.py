"""The built-in tiny model: deterministic, small, offline, cached."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest
import torch

from inference_server import tiny_model
from inference_server.tiny_model import TINY_MODEL_VERSION, build_tiny_model, ensure_tiny_model


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_two_builds_are_byte_identical_and_small(tmp_path: Path) -> None:
    a = _files(build_tiny_model(tmp_path / "a"))
    b = _files(build_tiny_model(tmp_path / "b"))
    assert "model_index.json" in a
    assert any(name.endswith(".safetensors") for name in a)
    assert a.keys() == b.keys()
    for name in a:
        assert a[name] == b[name], name
    assert (
        "genfx.json" in a
        and "variants/depth/unet/config.json" in a
        and "variants/upscale_x4/unet/config.json" in a
    )
    # Main pipeline + depth2img + x4 upscaler variants, each with its own small text encoder and VAE.
    assert sum(len(data) for data in a.values()) < 32 * 1024 * 1024
    # Only the finished folders remain: no temp build dirs left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


def test_build_leaves_global_rng_alone(tmp_path: Path) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_tiny_model(tmp_path / "m")
    assert torch.equal(torch.rand(3), expected)


def test_build_and_load_never_touch_the_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import diffusers

    pipeline_cls: Any = diffusers.StableDiffusionPipeline  # untyped for mypy

    def no_network(self: socket.socket, *args: Any) -> None:
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket.socket, "connect_ex", no_network)

    path = build_tiny_model(tmp_path / "m")
    pipe = pipeline_cls.from_pretrained(path, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)

    assert pipe.tokenizer.model_max_length == 77
    assert pipe.scheduler.config.prediction_type == "v_prediction"
    assert pipe.scheduler.config.steps_offset == 1
    assert pipe.safety_checker is None
    image = pipe(
        "a building collapses",
        num_inference_steps=1,
        height=64,
        width=64,
        generator=torch.Generator("cpu").manual_seed(0),
        output_type="np",
    ).images
    assert image.shape == (1, 64, 64, 3)


def test_build_refuses_to_overwrite(tmp_path: Path) -> None:
    target = build_tiny_model(tmp_path / "m")
    before = (target / "model_index.json").stat().st_mtime_ns
    with pytest.raises(FileExistsError):
        build_tiny_model(target)
    assert (target / "model_index.json").stat().st_mtime_ns == before
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def test_ensure_builds_once_then_uses_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = ensure_tiny_model(tmp_path)
    assert path == tmp_path / f"tiny-v{TINY_MODEL_VERSION}"
    mtime = (path / "model_index.json").stat().st_mtime_ns

    def no_rebuild(out_dir: Path) -> Path:
        raise AssertionError("rebuilt a cached model")

    monkeypatch.setattr(tiny_model, "build_tiny_model", no_rebuild)
    assert ensure_tiny_model(tmp_path) == path
    assert (path / "model_index.json").stat().st_mtime_ns == mtime


def test_ensure_loses_a_race_gracefully(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_build = tiny_model.build_tiny_model

    def racing_build(out_dir: Path) -> Path:
        real_build(out_dir)  # another process finishes first...
        return real_build(out_dir)  # ...so our own rename finds the target taken

    monkeypatch.setattr(tiny_model, "build_tiny_model", racing_build)
    path = ensure_tiny_model(tmp_path)
    assert (path / "model_index.json").is_file()
    assert os.listdir(tmp_path) == [path.name]
