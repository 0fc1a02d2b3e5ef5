"""The model card genfx-train writes beside its outputs and the server reads: one definition of where it
is and what the server relies on in it (json only).

``RUN/model_card.json`` (written last: a run without it is unfinished) describes ``RUN/lora/``,
``RUN/controlnet/`` and ``RUN/unet/``: ``base_model.sha256`` (the model hash the weights were trained
on), ``dataset.sha256`` (the dataset manifest's hash), ``conditioning`` (the sim ControlNet's input
layout) and ``outputs`` ({file relative to RUN: sha256}), among the training settings.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CARD_FILE = "model_card.json"
CARD_FORMAT = "genfx-model-card/1"


class ModelCardError(ValueError):
    """A model card that is missing a field, unreadable, or not about the given weights."""


def find_card(weights: Path) -> Path | None:
    """The card describing a weights folder: in the folder, or in its run folder (the parent)."""
    for folder in (weights, weights.parent):
        if (folder / CARD_FILE).is_file():
            return folder / CARD_FILE
    return None


def read_card(path: Path) -> dict[str, Any]:
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelCardError(f"{path}: unreadable model card ({exc})") from exc
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT:
        raise ModelCardError(f"{path}: not a GenFX model card (format {CARD_FORMAT!r} expected)")
    for key in ("base_model", "dataset", "outputs"):
        if not isinstance(card.get(key), dict):
            raise ModelCardError(f"{path}: model card has no {key!r} object")
    return card


def card_outputs_for(card: dict[str, Any], card_path: Path, weights: Path) -> dict[str, str]:
    """{file name inside ``weights``: sha256} the card lists for that folder; ModelCardError when it lists
    none (the card is about other weights)."""
    prefix = "" if weights == card_path.parent else weights.name + "/"
    listed = {
        rel[len(prefix) :]: str(digest)
        for rel, digest in card["outputs"].items()
        if isinstance(rel, str) and rel.startswith(prefix) and "/" not in rel[len(prefix) :]
    }
    if not listed:
        raise ModelCardError(f"{card_path}: lists no outputs in {weights.name}/ (a card for other weights?)")
    return listed
