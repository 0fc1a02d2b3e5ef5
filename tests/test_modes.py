"""The mode registry: one name per mode, the proto's closed set, shot-mode selection, capabilities."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from inference_server.engine import modes
from inference_server.engine.mode import ModelFacts

PROTO = Path(__file__).resolve().parent.parent / "protos" / "genfx" / "v1" / "genfx.proto"


def test_the_proto_lists_exactly_the_registry_as_the_closed_set_of_capabilities() -> None:
    text = PROTO.read_text()
    block = text[text.index("message ModelInfo") : text.index("repeated string capabilities")]
    listed = re.findall(r'^\s*// "(\w+)"', block, flags=re.M)
    assert listed == list(modes.NAMES)


def test_each_mode_has_one_name_and_each_variant_one_mode() -> None:
    assert len(set(modes.NAMES)) == len(modes.MODES)
    variants = [m.pipeline.variant for m in modes.MODES if m.pipeline and m.pipeline.variant]
    assert len(set(variants)) == len(variants) and set(variants) == set(modes.VARIANT_CHANNELS)
    assert all(m.render is not None for m in modes.MODES if m.precedence is not None)


@pytest.mark.parametrize(
    ("passes", "mode"),
    [
        ((), "txt2img"),
        (("plate",), "img2img"),
        (("mask",), "inpaint"),
        (("plate", "mask"), "inpaint"),
        (("depth",), "depth"),
        (("plate", "mask", "depth"), "depth"),
    ],
)
def test_the_shot_mode_follows_the_passes(passes: tuple[str, ...], mode: str) -> None:
    assert modes.shot_mode(passes, modes.NAMES).name == mode


def test_motion_asks_for_sim_only_on_a_model_that_has_it() -> None:
    """Depth + motion is the sim mode where a sim ControlNet is configured; elsewhere motion vectors only
    steer reprojection and depth still asks for depth mode (refused on a model without it)."""
    sim = modes.capabilities(ModelFacts(4, frozenset({"depth"}), sim_controlnet=True))
    plain = modes.capabilities(ModelFacts(4, frozenset({"depth"})))
    assert "sim" in sim and "sim" not in plain
    assert modes.shot_mode(("depth", "motion"), sim).name == "sim"
    assert modes.shot_mode(("depth", "motion", "mask", "plate"), sim).name == "sim"
    assert modes.shot_mode(("depth", "motion"), plain).name == "depth"
    assert modes.shot_mode(("depth",), sim).name == "depth"
    assert modes.shot_mode(("depth", "motion"), ("txt2img",)).name == "depth"


@pytest.mark.parametrize(
    ("facts", "capabilities"),
    [
        (ModelFacts(4, frozenset()), ("txt2img", "img2img", "inpaint", "temporal")),
        (ModelFacts(4, frozenset({"depth", "upscale_x4"}), sim_controlnet=True), modes.NAMES),
        (ModelFacts(4, frozenset({"depth", "upscale_x4"})), tuple(n for n in modes.NAMES if n != "sim")),
        (ModelFacts(9, frozenset({"inpaint"})), ("inpaint",)),
        (ModelFacts(5, frozenset({"depth"})), ("depth", "temporal")),
    ],
)
def test_capabilities_follow_the_model(facts: ModelFacts, capabilities: tuple[str, ...]) -> None:
    assert modes.capabilities(facts) == capabilities
