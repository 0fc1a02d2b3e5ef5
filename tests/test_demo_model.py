"""The committed demo model (models/demo): its card describes exactly these weights, the server serves
it with its sim ControlNet, and on held-out procedural frames it beats its own random-weight start by a
margin (a lower bar than bench.bench_demo_quality's target; seconds, not a benchmark)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from genfx.hashing import sha256_of
from genfx.model_card import CARD_FILE
from inference_server.models import ModelRegistry, load_model_config, model_hash

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "models" / "demo"
MAX_WEIGHT_BYTES = 40 * 2**20
# The bench measures >= 0.5 on 12 frames; two frames and this bar catch a broken or swapped model.
SSIM_FLOOR = 0.4
MARGIN_OVER_RANDOM = 0.1


def _card() -> dict[str, object]:
    return dict(json.loads((DEMO / CARD_FILE).read_text()))


def test_card_lists_every_committed_weight_file_with_its_hash() -> None:
    card = _card()
    outputs = card["outputs"]
    assert isinstance(outputs, dict)
    on_disk = {
        f.relative_to(DEMO).as_posix()
        for folder in ("pipeline", "controlnet")
        for f in (DEMO / folder).rglob("*")
        if f.is_file() and not f.name.startswith(".genfx_hash")
    }
    assert set(outputs) == on_disk
    for rel, digest in outputs.items():
        assert sha256_of(DEMO / rel).hexdigest() == digest, rel
    weights = [DEMO / rel for rel in outputs if rel.endswith(".safetensors")]
    assert {w.parent.name for w in weights} == {"unet", "vae", "text_encoder", "controlnet"}
    assert not [rel for rel in outputs if rel.endswith((".bin", ".pt", ".ckpt"))]
    assert sum(w.stat().st_size for w in weights) <= MAX_WEIGHT_BYTES


def test_card_ties_the_controlnet_to_the_pipeline_and_the_data() -> None:
    card = _card()
    assert card["base_model"] == {"path": "pipeline", "sha256": model_hash(DEMO / "pipeline")}
    dataset = card["dataset"]
    assert isinstance(dataset, dict) and dataset["licences"] == ["CC0-1.0"]
    runs = card["runs"]
    assert isinstance(runs, list)
    assert [r["trained"] for r in runs] == [["vae"], ["controlnet", "unet"]]
    assert runs[1]["dataset_sha256"] == dataset["sha256"]
    assert str(card["code_version"]).startswith("genfx ")


def test_server_serves_it_with_its_sim_controlnet(tmp_path: Path) -> None:
    config = load_model_config(DEMO / "models.json")
    registry = ModelRegistry(
        config.models, tmp_path, include_tiny=True, sim_controlnets=config.sim_controlnets
    )
    registry.check_adapters()  # the ControlNet's card names this pipeline's hash
    info = registry.info("demo")
    assert "sim" in info.capabilities
    assert (info.native_width, info.native_height) == (128, 128)
    assert "tiny" in registry.names()  # the random test model stays


@pytest.fixture(scope="module")
def held_out(tmp_path_factory: pytest.TempPathFactory) -> list[object]:
    from training.demo import evaluate

    return list(evaluate.held_out_frames(tmp_path_factory.mktemp("held_out"), shots=1, frames=2))


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """One thread is fastest for 128 px on a busy machine; restored after, since later tests compare the
    test process's pixels with a server's that runs torch's default thread count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.usefixtures("one_torch_thread")
def test_held_out_frames_look_like_the_ground_truth(held_out: list[object], tmp_path: Path) -> None:
    from training.demo import evaluate

    frames = [f for f in held_out if isinstance(f, evaluate.HeldOutFrame)]
    sim, _ = evaluate.load_demo(DEMO)
    demo, _ = evaluate.score(evaluate.sim_generator(sim), frames)
    random, _ = evaluate.score(evaluate.sim_generator(evaluate.load_untrained(tmp_path)), frames)
    assert demo >= SSIM_FLOOR, (demo, random)
    assert demo >= random + MARGIN_OVER_RANDOM, (demo, random)
