"""genfx.provenance: what a frame header records of LoRAs and the sim ControlNet, in words."""

from __future__ import annotations

import json

import pytest

from genfx.proto import genfx_pb2 as pb
from genfx.provenance import describe, describe_loras, recorded


def test_a_header_with_loras_and_a_controlnet_is_read_and_phrased() -> None:
    header = {
        "genfx/loras": json.dumps([{"name": "dust", "weight": 0.8, "sha256": "1a2b" * 16}]).encode(),
        "genfx/controlnet": json.dumps({"sha256": "9f" * 32, "scale": 1.25}),
    }
    rec = recorded(header)
    assert [(lora.name, lora.weight) for lora in rec.loras] == [("dust", 0.8)]
    assert rec.controlnet is not None and rec.controlnet.scale == 1.25
    assert (
        describe(rec)
        == f"LoRAs: dust \u00d70.8 (sha256 {'1a2b' * 3}) \u00b7 sim ControlNet \u00d71.25 (sha256 {'9f' * 6})"
    )


def test_a_header_without_them_records_nothing_and_says_so() -> None:
    for header in ({}, {"genfx/loras": "[]", "genfx/controlnet": ""}):
        assert describe(recorded(header)) == "no LoRAs \u00b7 no ControlNet"
    with pytest.raises(ValueError):
        recorded({"genfx/loras": "not json"})


def test_a_requests_loras_read_the_same_way() -> None:
    refs = [pb.LoraRef(name="dust", weight=0.5), pb.LoraRef(name="grit", weight=0)]
    assert (
        describe_loras(refs)
        == describe_loras([("dust", 0.5), ("grit", 0.0)])
        == "dust \u00d70.5, grit \u00d71"
    )
