"""The trained weights a job asks for and a frame records, in words for the DCC clients and the monitor.

A frame's header says what made it (written by the server's frame writer, docs/exr.md): `genfx/loras`
is JSON text, a list of {name, weight, sha256, base_model_sha256, dataset_sha256}; `genfx/controlnet`
is JSON text {sha256, scale, base_model_sha256, dataset_sha256}, or "" when the frame was not made in
the sim mode. This module reads those two attributes and phrases them (and a request's LoRAs) the same
way for the Houdini node (Recorded) and the monitor (a job's details); the After Effects panel's ES3
port of `lora_label` is `loraLabel` in ae_bridge/shared/request.js (its layer comment).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from genfx.proto import genfx_pb2 as pb

HASH_CHARS = 12  # how much of a sha256 the summaries show


@dataclass(frozen=True)
class RecordedLora:
    name: str
    weight: float
    sha256: str


@dataclass(frozen=True)
class RecordedControlNet:
    sha256: str
    scale: float


@dataclass(frozen=True)
class Recorded:
    """What one frame's header records of the trained weights that made it."""

    loras: tuple[RecordedLora, ...]
    controlnet: RecordedControlNet | None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")


def recorded(header: Mapping[str, Any]) -> Recorded:
    """The `genfx/loras` and `genfx/controlnet` attributes of a frame header (genfx.exr.read_header).
    A header without them (a foreign file, or a frame from before issue 12) records nothing."""
    loras_text = _text(header.get("genfx/loras", "")).strip() or "[]"
    loras = tuple(
        RecordedLora(str(entry["name"]), float(entry["weight"]), str(entry.get("sha256", "")))
        for entry in json.loads(loras_text)
    )
    controlnet_text = _text(header.get("genfx/controlnet", "")).strip()
    controlnet = None
    if controlnet_text:
        facts = json.loads(controlnet_text)
        controlnet = RecordedControlNet(str(facts.get("sha256", "")), float(facts.get("scale", 0.0)))
    return Recorded(loras, controlnet)


def lora_label(name: str, weight: float) -> str:
    """'dust ×0.8'; weight 0 means 1.0 on the wire (LoraRef.weight)."""
    return f"{name} \u00d7{weight or 1.0:g}"


def describe_loras(loras: Iterable[pb.LoraRef] | Iterable[tuple[str, float]]) -> str:
    """A request's LoRAs: 'dust ×0.8, grit ×1', or '' when it has none."""
    pairs = [(ref.name, ref.weight) if isinstance(ref, pb.LoraRef) else ref for ref in loras]
    return ", ".join(lora_label(name, weight) for name, weight in pairs)


def describe(rec: Recorded) -> str:
    """'LoRAs: dust ×0.8 (sha256 1a2b3c4d5e6f) · sim ControlNet ×1 (sha256 …)'; says so when a frame
    records no LoRA or no ControlNet."""
    if rec.loras:
        loras = "LoRAs: " + ", ".join(
            f"{lora_label(lora.name, lora.weight)} (sha256 {lora.sha256[:HASH_CHARS]})" for lora in rec.loras
        )
    else:
        loras = "no LoRAs"
    if rec.controlnet is None:
        controlnet = "no ControlNet"
    else:
        cn = rec.controlnet
        controlnet = f"sim ControlNet \u00d7{cn.scale:g} (sha256 {cn.sha256[:HASH_CHARS]})"
    return f"{loras} \u00b7 {controlnet}"
