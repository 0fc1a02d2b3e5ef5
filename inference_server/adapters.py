"""Trained weights the server serves beside its models: LoRAs (by name, per job) and sim-pass
ControlNets (one per model). Folders are checked when the server starts; no torch here.

A LoRA folder holds ``pytorch_lora_weights.safetensors`` (what ``genfx-train fit`` and diffusers'
training scripts write); a ControlNet folder is a diffusers ``ControlNetModel`` (``config.json`` +
weights). The registry (models.py) identifies each by its hash (model_hash: every file's path, size
and bytes); the GenFX model card beside it (genfx/model_card.py) ties it to the base model hash and the
dataset hash it was trained on. A card whose listed outputs do not match the folder's files is refused:
it would prove the wrong thing. A LoRA without a card must name its base model in the configuration;
a sim ControlNet must have its card (its input layout is checked against genfx.sim_condition).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genfx.hashing import sha256_of
from genfx.model_card import ModelCardError, card_outputs_for, find_card, read_card
from genfx.sim_condition import CONDITION_CHANNELS, DEPTH_NORMALISATION, MOTION_FULL_SCALE

LORA_WEIGHTS = "pytorch_lora_weights.safetensors"


class AdapterError(ValueError):
    """A LoRA or ControlNet folder the server cannot serve; the message names it and what is wrong."""


@dataclass(frozen=True)
class LoraSpec:
    """A LoRA as configured: its folder, and the model it is for when it has no model card."""

    path: Path
    base_model: str = ""


@dataclass(frozen=True)
class CardFacts:
    """What the model card says about a weights folder (empty without a card)."""

    base_model_hash: str = ""  # "" = declared by name in the configuration instead
    dataset_hash: str = ""
    card: Path | None = None


def _card(kind: str, name: str, folder: Path) -> tuple[dict[str, Any], Path] | None:
    path = find_card(folder)
    if path is None:
        return None
    try:
        card = read_card(path)
        listed = card_outputs_for(card, path, folder)
    except ModelCardError as exc:
        raise AdapterError(f"{kind} {name!r}: {exc}") from exc
    for rel, digest in listed.items():
        file = folder / rel
        actual = sha256_of(file).hexdigest() if file.is_file() else "(missing)"
        if actual != digest:
            raise AdapterError(
                f"{kind} {name!r}: {path} does not describe {folder}: {rel} is {actual[:12]}, the card says"
                f" {digest[:12]} (weights replaced after training?)"
            )
    return card, path


def _facts(found: tuple[dict[str, Any], Path] | None) -> CardFacts:
    if found is None:
        return CardFacts()
    card, path = found
    return CardFacts(str(card["base_model"].get("sha256", "")), str(card["dataset"].get("sha256", "")), path)


def check_lora(name: str, spec: LoraSpec) -> CardFacts:
    folder = Path(spec.path).expanduser()
    if not (folder / LORA_WEIGHTS).is_file():
        raise AdapterError(f"LoRA {name!r}: {folder} has no {LORA_WEIGHTS} (a genfx-train RUN/lora folder)")
    found = _card("LoRA", name, folder)
    if found is None and not spec.base_model:
        raise AdapterError(
            f"LoRA {name!r}: {folder} has no model card; name the model it was trained for:"
            f' {{"loras": {{"{name}": {{"path": "...", "base_model": "MODEL"}}}}}}'
        )
    return _facts(found)


def check_sim_controlnet(model: str, folder: Path) -> CardFacts:
    folder = Path(folder).expanduser()
    config = folder / "config.json"
    try:
        channels = json.loads(config.read_text(encoding="utf-8")).get("conditioning_channels")
    except (OSError, ValueError) as exc:
        raise AdapterError(
            f"model {model!r}: sim ControlNet {folder}: no readable config.json ({exc})"
        ) from exc
    if channels != len(CONDITION_CHANNELS):
        raise AdapterError(
            f"model {model!r}: sim ControlNet {folder} takes {channels} conditioning channels; the sim"
            f" conditioning has {len(CONDITION_CHANNELS)} ({', '.join(CONDITION_CHANNELS)})"
        )
    found = _card("sim ControlNet of model", model, folder)
    if found is None:
        raise AdapterError(
            f"model {model!r}: sim ControlNet {folder} has no model card (genfx-train writes one)"
        )
    layout = found[0].get("conditioning") or {}
    expected = {
        "channels": list(CONDITION_CHANNELS),
        "motion_full_scale": MOTION_FULL_SCALE,
        "depth_normalisation": DEPTH_NORMALISATION,
    }
    differs = [k for k, v in expected.items() if layout.get(k) != v]
    if differs:
        raise AdapterError(
            f"model {model!r}: sim ControlNet {folder} was trained on another conditioning layout"
            f" ({', '.join(f'{k}: {layout.get(k)!r}, server: {expected[k]!r}' for k in differs)});"
            " retrain it with this version of genfx-train"
        )
    return _facts(found)
