"""The run folder: run.json (what the run is), checkpoints (atomic, newest two kept), outputs.

A checkpoint is a folder ``checkpoints/step-NNNNNN`` written under a temp name and renamed, then named
in ``checkpoints/latest``: a kill -9 at any moment leaves the previous checkpoint as the latest.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from genfx.exr import write_atomic

RUN_FILE = "run.json"
KEEP_CHECKPOINTS = 2


class RunFolderError(ValueError):
    """The output folder holds something else, or a run that does not match."""


def claim(out: Path, identity: dict[str, Any], resume: bool, *, write: bool) -> None:
    """Check that ``out`` is empty, or (with --resume) holds this same run; with ``write``, start it."""
    out = Path(out)
    identity = json.loads(json.dumps(identity))  # compare as stored (tuples are lists in JSON)
    run_file = out / RUN_FILE
    if run_file.is_file():
        saved = json.loads(run_file.read_text(encoding="utf-8"))
        if not resume:
            raise RunFolderError(
                f"{out}: holds another run ({RUN_FILE}); pass --resume to continue it or pick an empty folder"
            )
        diff = sorted(k for k in set(saved) | set(identity) if saved.get(k) != identity.get(k))
        if diff:
            raise RunFolderError(
                f"{out}: holds a different run (differs in {', '.join(diff)}); cannot --resume it"
            )
        return
    if out.exists() and any(out.iterdir()):
        raise RunFolderError(f"{out}: not empty and not a GenFX run (no {RUN_FILE}); pick an empty folder")
    if not write:
        return
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(run_file, json.dumps(identity, indent=1, sort_keys=True).encode())


def latest_checkpoint(out: Path) -> Path | None:
    pointer = Path(out) / "checkpoints" / "latest"
    if not pointer.is_file():
        return None
    path = Path(out) / "checkpoints" / pointer.read_text(encoding="utf-8").strip()
    return path if (path / "state.json").is_file() else None


def save_checkpoint(
    out: Path,
    step: int,
    trainable: dict[str, torch.Tensor],
    optimizer: dict[str, Any],
    state: dict[str, Any],
    extras: dict[str, bytes],
) -> Path:
    root = Path(out) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:06d}"
    tmp = root / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(
        {k: v.detach().cpu().contiguous() for k, v in trainable.items()}, str(tmp / "trainable.safetensors")
    )
    torch.save(optimizer, tmp / "optimizer.pt")
    for fname, data in extras.items():
        (tmp / fname).write_bytes(data)
    (tmp / "state.json").write_text(json.dumps({**state, "step": step}, indent=1), encoding="utf-8")
    for f in tmp.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    final = root / name
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    write_atomic(root / "latest", name.encode())
    done = sorted(p for p in root.glob("step-*") if p.is_dir())
    for old in done[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
    trainable = load_file(str(path / "trainable.safetensors"))
    optimizer = torch.load(path / "optimizer.pt", weights_only=False)
    state = json.loads((path / "state.json").read_text(encoding="utf-8"))
    return trainable, optimizer, state
