"""Model registry, model hashing and the model config file."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from inference_server import models
from inference_server.models import (
    HASH_CACHE_NAME,
    ModelInfo,
    ModelRegistry,
    UnknownModelError,
    load_model_config,
    model_hash,
)
from inference_server.tiny_model import build_tiny_model


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("built") / "tiny")


@pytest.fixture
def model_copy(tiny_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_dir, tmp_path / "copy"))


def _fake_model(root: Path, sample_size: object, vae_blocks: int, linear: bool) -> Path:
    """A model folder with configs only: enough for info(), which never loads weights."""
    (root / "unet").mkdir(parents=True)
    (root / "vae").mkdir()
    (root / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    unet = {"sample_size": sample_size, "use_linear_projection": linear}
    (root / "unet" / "config.json").write_text(json.dumps(unet))
    (root / "vae" / "config.json").write_text(json.dumps({"block_out_channels": [128] * vae_blocks}))
    return root


def test_tiny_only_registry(tmp_path: Path) -> None:
    reg = ModelRegistry({}, tmp_path / "cache")
    assert reg.names() == ["tiny"]
    assert reg.default_name() == "tiny"
    assert not (tmp_path / "cache").exists()  # lazy: nothing built until first use
    info = reg.info("tiny")
    assert isinstance(info, ModelInfo)
    assert (info.name, info.family, info.native_width, info.native_height) == ("tiny", "sd2", 64, 64)
    assert info.capabilities == ("txt2img", "img2img", "inpaint", "depth", "temporal", "upscale_x4")
    assert set(info.variants) == {"depth", "upscale_x4"}
    assert info.hash == model_hash(info.path)
    assert len(info.hash) == 64 and int(info.hash, 16) >= 0


def test_configured_models_come_first(model_copy: Path, tmp_path: Path) -> None:
    reg = ModelRegistry({"shot": model_copy}, tmp_path / "cache")
    assert reg.default_name() == "shot"
    assert reg.names() == ["shot", "tiny"]
    info = reg.info("shot")
    assert info.path == model_copy and (info.native_width, info.native_height) == (64, 64)
    assert not (tmp_path / "cache").exists()
    assert ModelRegistry({"shot": model_copy}, tmp_path, include_tiny=False).names() == ["shot"]


def test_native_size_and_family_from_configs(tmp_path: Path) -> None:
    sd1 = _fake_model(tmp_path / "sd1", 64, 4, linear=False)
    wide = _fake_model(tmp_path / "wide", [96, 64], 4, linear=True)
    reg = ModelRegistry({"sd1": sd1, "wide": wide}, tmp_path / "cache", include_tiny=False)
    a, b = reg.info("sd1"), reg.info("wide")
    assert (a.family, a.native_width, a.native_height) == ("sd1", 512, 512)
    assert (b.family, b.native_width, b.native_height) == ("sd2", 512, 768)  # sample_size is (h, w)


def test_unknown_model_lists_known_names(model_copy: Path, tmp_path: Path) -> None:
    reg = ModelRegistry({"shot": model_copy}, tmp_path / "cache")
    with pytest.raises(UnknownModelError) as exc:
        reg.info("nope")
    assert isinstance(exc.value, KeyError)
    assert "nope" in str(exc.value) and "shot" in str(exc.value) and "tiny" in str(exc.value)
    with pytest.raises(UnknownModelError):
        reg.load("nope", "cpu")
    with pytest.raises(UnknownModelError):
        ModelRegistry({"shot": model_copy}, tmp_path, include_tiny=False).info("tiny")


def test_bad_model_dirs_are_rejected_at_construction(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"'sd21'.*missing"):
        ModelRegistry({"sd21": tmp_path / "missing"}, tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"'sd21'.*model_index\.json"):
        ModelRegistry({"sd21": tmp_path / "empty"}, tmp_path)
    with pytest.raises(ValueError, match="reserved"):
        ModelRegistry({"tiny": _fake_model(tmp_path / "m", 64, 4, True)}, tmp_path)
    with pytest.raises(ValueError, match="no models"):
        ModelRegistry({}, tmp_path, include_tiny=False)


def test_load_is_cached_per_device(tmp_path: Path) -> None:
    import torch

    reg = ModelRegistry({}, tmp_path / "cache")
    pipe = reg.load("tiny", "cpu")
    assert reg.load("tiny", "cpu") is pipe
    assert pipe.unet.dtype == torch.float32
    assert pipe.device.type == "cpu"


def test_modes_sharing_the_main_pipeline_keep_its_precision(model_copy: Path, tmp_path: Path) -> None:
    """from_pipe casts shared components to fp32 unless told otherwise: on a GPU that would silently
    turn the fp16 model into fp32 the first time a job used img2img (half the speed, twice the memory).
    bf16 stands in for a GPU's half precision here."""
    import torch

    from inference_server.acceleration import Acceleration

    reg = ModelRegistry({"m": model_copy}, tmp_path / "cache", acceleration=Acceleration(dtype="bf16"))
    txt2img = reg.load("m", "cpu")
    img2img = reg.load("m", "cpu", "img2img")
    assert img2img.unet is txt2img.unet
    assert txt2img.unet.dtype == txt2img.vae.dtype == txt2img.text_encoder.dtype == torch.bfloat16


def test_gpu_recipe_settings_stay_off_the_cpu() -> None:
    from inference_server.acceleration import Acceleration

    default = Acceleration()
    assert default.on("cpu") == Acceleration("fp32", channels_last=False, fuse_qkv=False, compile="off")
    assert default.on("cuda:0") == Acceleration("fp16", channels_last=True, fuse_qkv=True, compile="off")
    opted_out = Acceleration("bf16", channels_last=False, fuse_qkv=False, compile="blocks")
    assert opted_out.on("cuda:1") == opted_out
    assert opted_out.on("cpu").compile == "off"
    with pytest.raises(ValueError, match="--compile: must be one of off, blocks, unet"):
        Acceleration(compile="max")


def test_model_hash_format(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "b.txt").write_bytes(b"abc")
    (tmp_path / "sub" / "a.bin").write_bytes(b"\x00\x01")
    expected = hashlib.sha256(b"b.txt\x003\x00abc" + b"sub/a.bin\x002\x00\x00\x01").hexdigest()
    assert model_hash(tmp_path) == expected
    assert (tmp_path / HASH_CACHE_NAME).is_file()
    assert model_hash(tmp_path) == expected  # the cache file itself is not hashed


def test_model_hash_is_stable_and_tracks_content(model_copy: Path, tiny_dir: Path, tmp_path: Path) -> None:
    first = model_hash(model_copy)
    assert model_hash(shutil.copytree(tiny_dir, tmp_path / "other")) == first  # independent of location
    (model_copy / "unet" / "config.json").write_text("{}")
    assert model_hash(model_copy) != first


def test_model_hash_cache_is_used_and_invalidated(model_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = models._hash_files

    def counting(files: list[tuple[str, Path]]) -> str:
        calls.append(len(files))
        return real(files)

    monkeypatch.setattr(models, "_hash_files", counting)
    first = model_hash(model_copy)
    assert model_hash(model_copy) == first
    assert len(calls) == 1  # second call answered from the cache

    cfg = model_copy / "vae" / "config.json"
    st = cfg.stat()
    os.utime(cfg, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert model_hash(model_copy) == first  # same bytes, re-read because the mtime changed
    assert len(calls) == 2

    cfg.write_text(cfg.read_text() + " ")
    assert model_hash(model_copy) != first
    assert len(calls) == 3


def test_model_hash_on_a_read_only_folder(model_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def read_only(*args: object, **kwargs: object) -> tuple[int, str]:
        raise PermissionError("read-only file system")

    expected = model_hash(model_copy)
    (model_copy / HASH_CACHE_NAME).unlink()
    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    assert model_hash(model_copy) == expected
    assert not (model_copy / HASH_CACHE_NAME).exists()


def test_load_model_config(tmp_path: Path) -> None:
    cfg = tmp_path / "conf" / "models.json"
    cfg.parent.mkdir()
    cfg.write_text(json.dumps({"models": {"sd21": "/models/sd21", "local": "weights/sd2"}}))
    assert load_model_config(cfg).models == {
        "sd21": Path("/models/sd21"),
        "local": tmp_path / "conf" / "weights/sd2",
    }


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[]",
        "{}",
        '{"models": []}',
        '{"models": {"a": 3}}',
        '{"models": {"a": ""}}',
        '{"models": {}, "loras": []}',
        '{"models": {}, "lora": {}}',
        '{"models": {}, "loras": {"x": {"path": "p", "weight": 1}}}',
    ],
)
def test_load_model_config_rejects_bad_content(tmp_path: Path, content: str) -> None:
    cfg = tmp_path / "models.json"
    cfg.write_text(content)
    with pytest.raises(ValueError, match="models.json"):
        load_model_config(cfg)


def test_load_model_config_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="nope.json"):
        load_model_config(tmp_path / "nope.json")
