"""The sim mode, LoRAs per job and the trained-weights checks, in process on the tiny model.

- diffusers hands our 4-channel conditioning to the ControlNet exactly as built (no RGB conversion, no
  resize, no [0, 1] -> [-1, 1]), in the txt2img and the img2img ControlNet pipelines;
- the registry loads the sim pipeline over the model's own modules plus the ControlNet;
- ``applied_loras`` changes the frames and, afterwards, the pipeline makes the frames it made before,
  bit for bit — also when the job fails inside;
- LoRA / ControlNet folders whose model card does not fit are refused, naming them.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inference_server.adapters import AdapterError, LoraSpec
from inference_server.engine import sim
from inference_server.engine.loras import LoraUse, applied_loras
from inference_server.engine.mode import Keyframe
from inference_server.models import ModelRegistry, load_model_config, model_hash
from inference_server.tiny_model import ensure_tiny_model

from .trained_weights import make_run, write_card

SIZE = 64


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny tensors: one torch thread is fastest, and immune to a busy machine's thread contention."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_tiny_model(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def run(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("runs") / "collapse", tiny, model_hash(tiny))


@pytest.fixture(scope="module")
def registry(tiny: Path, run: Path, tmp_path_factory: pytest.TempPathFactory) -> ModelRegistry:
    reg = ModelRegistry(
        {"collapse": tiny},
        tiny.parent,  # the built-in tiny is this same folder: built once
        sim_controlnets={"collapse": run / "controlnet"},
        loras={"dust": LoraSpec(run / "lora")},
    )
    reg.check_adapters()
    return reg


def keyframe(control: np.ndarray, *, strength: float = 1.0, scale: float = 1.0, seed: int = 3) -> Keyframe:
    grey = np.full((SIZE, SIZE, 3), 0.5, np.float32)
    return Keyframe(
        base=grey,
        init=grey,
        strength=strength,
        carried=strength < 1.0,
        mask=None,
        depth=None,
        control=control,
        control_scale=scale,
        prompt="a building collapses",
        negative_prompt="",
        seed=seed,
        steps=2,
        guidance=7.5,
    )


def condition() -> np.ndarray:
    """Distinct values per channel and pixel, some beyond what a [-1, 1] rescale would keep equal."""
    rng = np.random.default_rng(4)
    return rng.random((SIZE, SIZE, 4), dtype=np.float32)


@pytest.mark.parametrize("strength", [1.0, 0.6])
def test_the_controlnet_gets_the_4_channel_conditioning_as_built(
    registry: ModelRegistry, strength: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipe = registry.load("collapse", "cpu", "sim")
    seen: list[Any] = []
    original = type(pipe.controlnet).forward

    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs["controlnet_cond"].detach().clone())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(type(pipe.controlnet), "forward", spy)
    cond = condition()
    image = sim.render(pipe, keyframe(cond, strength=strength))
    assert image.shape == (SIZE, SIZE, 3) and np.isfinite(image).all()
    assert seen, "the ControlNet never ran"
    expected = np.moveaxis(cond, -1, 0)
    for batch in seen:  # classifier-free guidance: the same conditioning for both halves
        assert tuple(batch.shape) == (2, 4, SIZE, SIZE)
        np.testing.assert_array_equal(batch[0].numpy(), expected)
        np.testing.assert_array_equal(batch[1].numpy(), expected)


def test_the_sim_pipeline_shares_the_models_modules_and_the_controlnet_steers(
    registry: ModelRegistry,
) -> None:
    info = registry.info("collapse")
    assert "sim" in info.capabilities and info.sim_controlnet is not None
    assert info.sim_controlnet.base_model_hash == info.hash and "sim" in info.lora_modes
    main, pipe = registry.load("collapse", "cpu", "txt2img"), registry.load("collapse", "cpu", "sim")
    assert pipe.unet is main.unet and pipe.text_encoder is main.text_encoder
    cond = condition()
    steered = sim.render(pipe, keyframe(cond, scale=1.0))
    off = sim.render(pipe, keyframe(cond, scale=0.0))
    again = sim.render(pipe, keyframe(cond, scale=1.0))
    np.testing.assert_array_equal(steered, again)
    assert np.abs(steered - off).mean() > 1e-3, "the ControlNet changed nothing"


def test_loras_apply_for_the_block_only(registry: ModelRegistry) -> None:
    pipe = registry.load("collapse", "cpu", "sim")
    lora = registry.lora("dust")
    assert lora.models == ("collapse", "tiny") and lora.base_model_hash == registry.info("collapse").hash
    cond = condition()
    before = sim.render(pipe, keyframe(cond))
    use = [LoraUse("dust", lora.path, lora.hash, 1.0)]
    with applied_loras(pipe, use):
        with_lora = sim.render(pipe, keyframe(cond))
    after = sim.render(pipe, keyframe(cond))
    assert np.abs(with_lora - before).mean() > 1e-3, "the LoRA changed nothing"
    np.testing.assert_array_equal(after, before)  # nothing leaks into the next job

    class Boom(Exception):
        pass

    with pytest.raises(Boom), applied_loras(pipe, use):
        raise Boom  # a failed or cancelled job
    np.testing.assert_array_equal(sim.render(pipe, keyframe(cond)), before)


def test_weights_whose_card_does_not_fit_are_refused(tiny: Path, run: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(run, tmp_path / "run")
    (copy / "lora" / "pytorch_lora_weights.safetensors").write_bytes(b"retrained later")
    with pytest.raises(AdapterError, match=r"LoRA 'dust': .*model_card.json does not describe"):
        ModelRegistry({"m": tiny}, tmp_path / "c", loras={"dust": LoraSpec(copy / "lora")})

    bare = shutil.copytree(run / "lora", tmp_path / "bare")
    with pytest.raises(AdapterError, match=r"LoRA 'bare': .* has no model card; name the model"):
        ModelRegistry({"m": tiny}, tmp_path / "c", loras={"bare": LoraSpec(bare)})
    declared = ModelRegistry({"m": tiny}, tmp_path / "c", loras={"bare": LoraSpec(bare, base_model="m")})
    assert declared.lora("bare").models == ("m", "tiny") and declared.lora("bare").dataset_hash == ""

    old = shutil.copytree(run, tmp_path / "old")
    write_card(old, model_hash(tiny), depth_normalisation="frame")
    with pytest.raises(AdapterError, match=r"another conditioning layout \(depth_normalisation: 'frame'"):
        ModelRegistry({"m": tiny}, tmp_path / "c", sim_controlnets={"m": old / "controlnet"})

    other = shutil.copytree(run, tmp_path / "other")
    write_card(other, "0" * 64)
    reg = ModelRegistry({"m": tiny}, tmp_path / "c", sim_controlnets={"m": other / "controlnet"})
    with pytest.raises(
        AdapterError, match=r"model 'm': its sim ControlNet .* was trained on base model 000000"
    ):
        reg.check_adapters()


def test_models_config_lists_controlnets_and_loras(tmp_path: Path) -> None:
    config = tmp_path / "models.json"
    config.write_text(
        json.dumps(
            {
                "models": {
                    "sd21": "/models/sd21",
                    "collapse": {"path": "m", "sim_controlnet": "run/controlnet"},
                },
                "loras": {"dust": "run/lora", "old": {"path": "loras/old", "base_model": "sd21"}},
            }
        )
    )
    loaded = load_model_config(config)
    assert loaded.models == {"sd21": Path("/models/sd21"), "collapse": tmp_path / "m"}
    assert loaded.sim_controlnets == {"collapse": tmp_path / "run" / "controlnet"}
    assert loaded.loras == {
        "dust": LoraSpec(tmp_path / "run" / "lora"),
        "old": LoraSpec(tmp_path / "loras" / "old", "sd21"),
    }
    config.write_text(json.dumps({"models": {"m": {"path": "m", "controlnet": "x"}}}))
    with pytest.raises(ValueError, match=r"model 'm' must be a folder path or \{\"path\""):
        load_model_config(config)


def test_pipelines_sharing_the_models_modules_keep_its_dtype(tiny: Path, run: Path) -> None:
    """On GPUs models load in fp16; diffusers' from_pipe casts the shared modules to float32 unless told
    otherwise, which would turn the model's own pipeline to fp32 as a side effect. (``--dtype fp16``
    loads fp16 on a CPU too: loading is all this checks.)"""
    import torch

    from inference_server.acceleration import Acceleration

    reg = ModelRegistry(
        {"collapse": tiny},
        tiny.parent,
        sim_controlnets={"collapse": run / "controlnet"},
        acceleration=Acceleration(dtype="fp16"),
    )
    main = reg.load("collapse", "cpu", "txt2img")
    for mode in ("img2img", "inpaint", "sim"):
        assert reg.load("collapse", "cpu", mode).unet is main.unet
    sim_pipe = reg.load("collapse", "cpu", "sim")
    assert sim._img2img(sim_pipe).unet is main.unet
    assert main.unet.dtype == main.text_encoder.dtype == main.vae.dtype == torch.float16
    assert sim_pipe.controlnet.dtype == torch.float16  # the ControlNet loads in the model's precision


def test_loras_reach_a_unet_with_fused_qkv(registry: ModelRegistry, tiny: Path, run: Path) -> None:
    """The CUDA default fuses QKV projections (acceleration.py); a LoRA on to_q/to_k/to_v must still
    steer it, and the fused UNet comes back as it was."""
    from inference_server.acceleration import Acceleration, apply

    fused_reg = ModelRegistry(
        {"collapse": tiny}, tiny.parent, sim_controlnets={"collapse": run / "controlnet"}
    )
    apply(fused_reg.load("collapse", "cpu", "txt2img"), Acceleration("fp32", False, True, "off"))
    fused = fused_reg.load("collapse", "cpu", "sim")
    plain = registry.load("collapse", "cpu", "sim")
    lora = registry.lora("dust")
    use = [LoraUse("dust", lora.path, lora.hash, 1.0)]
    cond = condition()
    before = sim.render(fused, keyframe(cond))
    with applied_loras(plain, use):
        want = sim.render(plain, keyframe(cond))
    with applied_loras(fused, use):
        got = sim.render(fused, keyframe(cond))
    assert np.abs(got - before).mean() > 1e-3, "the LoRA changed nothing on the fused UNet"
    np.testing.assert_allclose(got, want, atol=1e-4)  # fused or not: the same LoRA, the same frame
    np.testing.assert_array_equal(sim.render(fused, keyframe(cond)), before)
    assert any(type(p).__name__.startswith("Fused") for p in fused.unet.attn_processors.values())
