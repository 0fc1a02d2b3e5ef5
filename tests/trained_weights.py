"""Tiny trained weights for tests, built from config: a LoRA and a sim ControlNet for the tiny model,
laid out as `genfx-train fit` lays out a run (RUN/lora/, RUN/controlnet/, RUN/model_card.json).

Fresh LoRA and ControlNet weights change nothing (peft's LoRA B and the ControlNet's zero convolutions
start at 0), so every weight is drawn at random here: the frames must visibly change.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from genfx.hashing import sha256_of
from genfx.model_card import CARD_FILE, CARD_FORMAT
from genfx.sim_condition import CONDITION_CHANNELS, DEPTH_NORMALISATION, MOTION_FULL_SCALE

DATASET_HASH = "d5" * 32


def _randomise(module: Any, seed: int, scale: float, only: str = "") -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if only in name:
                p.copy_(torch.randn(p.shape, generator=generator) * scale)


def write_card(run: Path, base_hash: str, dataset_hash: str = DATASET_HASH, **conditioning: Any) -> Path:
    """RUN/model_card.json describing every file under RUN's weight folders (as genfx-train writes it)."""
    outputs = {
        f.relative_to(run).as_posix(): sha256_of(f).hexdigest()
        for folder in ("lora", "controlnet")
        if (run / folder).is_dir()
        for f in sorted((run / folder).rglob("*"))
        if f.is_file() and not f.name.startswith(".")
    }
    card = {
        "format": CARD_FORMAT,
        "base_model": {"path": "tiny", "sha256": base_hash},
        "dataset": {"path": "datasets/test", "sha256": dataset_hash, "samples": 1, "licences": ["CC0-1.0"]},
        "conditioning": {
            "module": "genfx.sim_condition",
            "channels": list(CONDITION_CHANNELS),
            "motion_full_scale": MOTION_FULL_SCALE,
            "depth_normalisation": DEPTH_NORMALISATION,
            "range": [0.0, 1.0],
            **conditioning,
        },
        "outputs": outputs,
    }
    (run / CARD_FILE).write_text(json.dumps(card, indent=1, sort_keys=True))
    return run / CARD_FILE


def make_lora(run: Path, base_model: Path, seed: int = 1, scale: float = 0.3) -> Path:
    """RUN/lora/pytorch_lora_weights.safetensors: a rank-4 LoRA on the UNet's attention, random weights."""
    import diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    d: Any = diffusers  # untyped for mypy --strict
    unet = d.UNet2DConditionModel.from_pretrained(base_model / "unet", local_files_only=True)
    unet.add_adapter(
        LoraConfig(
            r=4,
            lora_alpha=4,
            init_lora_weights="gaussian",
            target_modules=["to_k", "to_q", "to_v", "to_out.0"],
        )
    )
    _randomise(unet, seed, scale, only="lora_")
    d.StableDiffusionPipeline.save_lora_weights(
        run / "lora",
        unet_lora_layers=d.utils.convert_state_dict_to_diffusers(get_peft_model_state_dict(unet)),
        safe_serialization=True,
    )
    return run / "lora"


def make_controlnet(run: Path, base_model: Path, seed: int = 2, scale: float = 0.1) -> Path:
    """RUN/controlnet/: a 4-channel sim ControlNet from the tiny UNet; its zero convolutions and
    conditioning embedding (all "controlnet_*" weights) random."""
    import diffusers

    d: Any = diffusers  # untyped for mypy --strict
    unet = d.UNet2DConditionModel.from_pretrained(base_model / "unet", local_files_only=True)
    controlnet = d.ControlNetModel.from_unet(
        unet, conditioning_channels=len(CONDITION_CHANNELS), conditioning_embedding_out_channels=(16, 32)
    )
    _randomise(controlnet, seed, scale, only="controlnet_")
    controlnet.save_pretrained(run / "controlnet", safe_serialization=True)
    return run / "controlnet"


def make_run(run: Path, base_model: Path, base_hash: str, *, controlnet: bool = True) -> Path:
    """A run folder with a LoRA (and a ControlNet) and its model card."""
    run.mkdir(parents=True, exist_ok=True)
    make_lora(run, base_model)
    if controlnet:
        make_controlnet(run, base_model)
    write_card(run, base_hash)
    return run
