"""``genfx-train assemble``: a servable model folder from a base model and finished fit runs.

A model trained from scratch comes out of several runs (the VAE first, then the UNet with its sim-pass
ControlNet in that VAE's latent space); this puts the parts together::

    OUT/pipeline/        the diffusers SD pipeline: the base model with each run's vae/ or unet/ swapped in
    OUT/controlnet/      the sim-pass ControlNet, when a run trained one
    OUT/model_card.json  the GenFX model card: base_model = the hash of OUT/pipeline (the model the
                         ControlNet belongs to: they were trained together), the last run's dataset,
                         every run's card under "runs", every file's sha256 under "outputs"
    OUT/models.json      a server models config serving it ("--models-config OUT/models.json")

With ``half`` the weights are stored as float16 (the server computes in float32 on a CPU either way).
Written under a temp name and renamed: an interrupted assemble never looks finished.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from genfx.exr import write_atomic
from genfx.hashing import sha256_of
from genfx.model_card import CARD_FILE, CARD_FORMAT, read_card
from training.train.export import code_version

PARTS = ("vae", "unet", "controlnet")
PIPELINE, CONTROLNET, MODELS_CONFIG = "pipeline", "controlnet", "models.json"


def _load_part(kind: str, folder: Path) -> Any:
    import diffusers

    d: Any = diffusers
    cls = {"vae": d.AutoencoderKL, "unet": d.UNet2DConditionModel, "controlnet": d.ControlNetModel}[kind]
    return cls.from_pretrained(folder, local_files_only=True)


def _save(module: Any, folder: Path, half: bool) -> None:
    import torch

    if half:
        module = module.to(torch.float16)
    module.save_pretrained(folder, safe_serialization=True)


def _half_text_encoder(pipeline: Path) -> None:
    import torch
    import transformers

    t: Any = transformers
    encoder = t.CLIPTextModel.from_pretrained(pipeline / "text_encoder", local_files_only=True)
    shutil.rmtree(pipeline / "text_encoder")
    encoder.to(torch.float16).save_pretrained(pipeline / "text_encoder", safe_serialization=True)


def _run_card(run: Path) -> dict[str, Any]:
    card_path = run / CARD_FILE
    if not card_path.is_file():
        raise ValueError(f"--part {run}: no {CARD_FILE} (not a finished genfx-train fit run)")
    return read_card(card_path)


def assemble(
    out: Path, *, base: Path, parts: list[Path], half: bool, build_info: dict[str, Any] | None = None
) -> Path:
    from inference_server.models import model_hash

    out, base = Path(out), Path(base)
    if not (base / "model_index.json").is_file():
        raise ValueError(f"--base-model {base}: no model_index.json (not a diffusers model folder)")
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out}: not empty; pick an empty folder")
    cards = [(Path(run), _run_card(Path(run))) for run in parts]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        pipeline = tmp / PIPELINE
        shutil.copytree(base, pipeline, ignore=shutil.ignore_patterns(".genfx_hash.json*"))
        found: dict[str, Path] = {}
        for run, _ in cards:
            for kind in PARTS:
                if (run / kind / "config.json").is_file():
                    found[kind] = run / kind
        for kind in ("vae", "unet"):
            source = found.get(kind)
            if source is not None or half:
                shutil.rmtree(pipeline / kind)
                _save(_load_part(kind, source or base / kind), pipeline / kind, half)
        if half:
            _half_text_encoder(pipeline)
        if "controlnet" in found:
            _save(_load_part("controlnet", found["controlnet"]), tmp / CONTROLNET, half)
        config: dict[str, Any] = {"path": PIPELINE}
        if "controlnet" in found:
            config["sim_controlnet"] = CONTROLNET
        (tmp / MODELS_CONFIG).write_text(json.dumps({"models": {"demo": config}}, indent=1) + "\n")
        _write_card(tmp, base, cards, half, model_hash(pipeline), build_info or {})
        if out.exists():
            out.rmdir()
        os.rename(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _write_card(
    out: Path,
    base: Path,
    cards: list[tuple[Path, dict[str, Any]]],
    half: bool,
    pipeline_hash: str,
    build_info: dict[str, Any],
) -> None:
    from inference_server.models import model_hash

    outputs = {
        f.relative_to(out).as_posix(): sha256_of(f).hexdigest()
        for folder in (out / PIPELINE, out / CONTROLNET)
        if folder.is_dir()
        for f in sorted(folder.rglob("*"))
        if f.is_file() and not f.name.startswith(".genfx_hash")
    }
    last = cards[-1][1] if cards else {}
    card = {
        "format": CARD_FORMAT,
        # The model the ControlNet belongs to (trained together with its UNet): the pipeline beside it.
        "base_model": {"path": PIPELINE, "sha256": pipeline_hash},
        "initial_model": {"path": str(base), "sha256": model_hash(base)},
        "dataset": last.get("dataset", {}),
        "conditioning": last.get("conditioning", {}),
        "runs": [
            {
                "path": str(run),
                "trained": card.get("hyperparameters", {}).get("train"),
                "base_model_sha256": card["base_model"].get("sha256"),
                "dataset_sha256": card["dataset"].get("sha256"),
                "steps": card.get("steps"),
                "final_loss": card.get("final_loss"),
                "eval_loss": card.get("eval_loss"),
                "hyperparameters": card.get("hyperparameters"),
            }
            for run, card in cards
        ],
        "dtype": "float16" if half else "float32",
        "build": build_info,
        "outputs": outputs,
        "code_version": code_version(),
    }
    write_atomic(out / CARD_FILE, json.dumps(card, indent=1, sort_keys=True).encode())
