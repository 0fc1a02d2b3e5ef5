"""Training samples from dataset shards, in an order that is a pure function of (seed, step).

Random access by tar member offsets (an index read once from the tar headers), so any step's batch
can be built directly: a resumed run sees exactly the samples the uninterrupted one would have, and N
processes with batch b see exactly what one process with batch N*b sees.

Per epoch, each bucket's samples are permuted and cut into GLOBAL micro-batches of ``batch * world``
samples (a last partial one is dropped), and the list of micro-batches is permuted. Optimizer step s
uses micro-batches s*accum ... s*accum+accum-1; process r takes slice [r*batch, (r+1)*batch).
"""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from training.etl.manifest import read_manifest


@dataclass(frozen=True)
class Sample:
    key: str
    caption: str
    bucket: tuple[int, int]
    members: dict[str, tuple[Path, int, int]]  # ext -> (tar, offset, size)

    def read(self, ext: str) -> bytes:
        path, offset, size = self.members[ext]
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(size)


def _index_shard(path: Path) -> dict[str, dict[str, tuple[Path, int, int]]]:
    out: dict[str, dict[str, tuple[Path, int, int]]] = {}
    with tarfile.open(path, "r") as tar:
        for info in tar:
            key, _, ext = info.name.partition(".")
            out.setdefault(key, {})[ext] = (path, info.offset_data, info.size)
    return out


class ShardDataset:
    """Every usable sample of a dataset folder (sorted by key) and the deterministic batch schedule."""

    def __init__(self, dataset: Path, *, need: tuple[str, ...]) -> None:
        self.manifest = read_manifest(dataset)
        index: dict[str, dict[str, tuple[Path, int, int]]] = {}
        for shard in self.manifest["shards"]:
            index.update(_index_shard(Path(dataset) / shard["name"]))
        samples = []
        for rec in sorted(self.manifest["samples"], key=lambda s: s["key"]):
            members = index.get(rec["key"], {})
            if all(ext in members for ext in need):
                samples.append(Sample(rec["key"], rec["caption"], tuple(rec["bucket"]), members))
        if not samples:
            raise ValueError(
                f"dataset {dataset}: no sample has {', '.join(need)} "
                "(ControlNet needs renders with depth, motion and mask)"
            )
        self.samples = samples
        self.has_latents = all("latent.npy" in s.members and "text.npy" in s.members for s in samples)
        self._epoch_cache: tuple[tuple[int, int, int], list[list[int]]] | None = None

    def micro_batches(self, epoch: int, global_batch: int, seed: int) -> list[list[int]]:
        key = (epoch, global_batch, seed)
        if self._epoch_cache is None or self._epoch_cache[0] != key:
            self._epoch_cache = (key, self._plan_epoch(epoch, global_batch, seed))
        return self._epoch_cache[1]

    def _plan_epoch(self, epoch: int, global_batch: int, seed: int) -> list[list[int]]:
        rng = np.random.default_rng([seed, epoch])
        groups: list[list[int]] = []
        buckets = sorted({s.bucket for s in self.samples})
        for bucket in buckets:
            idx = [i for i, s in enumerate(self.samples) if s.bucket == bucket]
            perm = [idx[j] for j in rng.permutation(len(idx))]
            groups += [
                perm[k : k + global_batch] for k in range(0, len(perm) - global_batch + 1, global_batch)
            ]
        order = rng.permutation(len(groups))
        return [groups[j] for j in order]

    def micro_batch(self, m: int, global_batch: int, seed: int) -> list[int]:
        """Sample indices of global micro-batch ``m`` (epochs roll over as needed)."""
        # Every epoch has the same number of micro-batches (bucket sizes do not change).
        per_epoch = len(self.micro_batches(0, global_batch, seed))
        if per_epoch == 0:
            raise ValueError(
                f"dataset has fewer samples per bucket than one global batch ({global_batch}); "
                "lower --batch-size or the number of processes"
            )
        return self.micro_batches(m // per_epoch, global_batch, seed)[m % per_epoch]


def load_batch(samples: list[Sample], *, latents: bool, condition: bool) -> dict[str, Any]:
    """Tensors for a list of samples of one bucket."""
    batch: dict[str, Any] = {"captions": [s.caption for s in samples], "keys": [s.key for s in samples]}
    if latents:
        batch["latents"] = torch.stack(
            [torch.from_numpy(np.load(io.BytesIO(s.read("latent.npy"))).astype(np.float32)) for s in samples]
        )
        batch["text_embeds"] = torch.stack(
            [torch.from_numpy(np.load(io.BytesIO(s.read("text.npy"))).astype(np.float32)) for s in samples]
        )
    else:
        pixels = [
            np.asarray(Image.open(io.BytesIO(s.read("png"))).convert("RGB"), dtype=np.float32) / 127.5 - 1.0
            for s in samples
        ]
        batch["pixels"] = torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2).contiguous()
    if condition:
        conds = [np.load(io.BytesIO(s.read("cond.npy"))).astype(np.float32) for s in samples]
        batch["condition"] = torch.from_numpy(np.stack(conds)).permute(0, 3, 1, 2).contiguous()
    return batch


def sample_metadata(sample: Sample) -> dict[str, Any]:
    return dict(json.loads(sample.read("json")))
