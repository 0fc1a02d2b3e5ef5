"""LoRAs on a pipeline for one job, then the pipeline exactly as it was.

Pipelines are cached and shared by every job of a worker (and a mode's pipeline shares the UNet and text
encoder with the model's other pipelines, ``from_pipe``), so a job's LoRAs must not outlive it:
``applied_loras`` loads each as a named diffusers adapter (``load_lora_weights(adapter_name=...)``),
weights them (``set_adapters``), and on the way out — finished, failed or cancelled —
``unload_lora_weights`` takes every LoRA layer out again, restoring the original modules. A job without
LoRAs then makes the frames a fresh server would, bit for bit (tests/test_loras_sim_e2e.py).

A UNet with fused QKV projections (acceleration.py, the CUDA default) runs ``to_qkv``, which LoRA layers
on ``to_q``/``to_k``/``to_v`` never reach: it is unfused for the block and fused again, from the
original weights, afterwards.

A worker that keeps adapters loaded between jobs (a cache keyed by model, mode and LoRAs) can use the
same function around each job and skip the unload while the key stays the same.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class LoraUse:
    """One LoRA of a job: its folder (holding pytorch_lora_weights.safetensors), hash and weight."""

    name: str
    path: Path
    hash: str
    weight: float

    @property
    def adapter_name(self) -> str:
        # Unique per weights, not per display name: two configs of one name never alias.
        return f"genfx_{self.hash[:16]}"


@contextmanager
def applied_loras(pipeline: Any, loras: Sequence[LoraUse]) -> Iterator[None]:
    """Within the block, ``pipeline`` (and every pipeline sharing its UNet and text encoder) runs with
    ``loras`` at their weights; afterwards it is the pipeline it was before."""
    if not loras:
        yield
        return
    unet: Any = getattr(pipeline, "unet", None)
    fused = unet is not None and _fused(unet)
    loaded = False
    try:
        if fused:
            unet.unfuse_qkv_projections()
        for lora in loras:
            loaded = True  # a half-done load must be unloaded too
            pipeline.load_lora_weights(str(lora.path), adapter_name=lora.adapter_name)
        pipeline.set_adapters(
            [lora.adapter_name for lora in loras], adapter_weights=[lora.weight for lora in loras]
        )
        yield
    finally:
        if loaded:
            pipeline.unload_lora_weights()
        if fused:
            unet.fuse_qkv_projections()


def _fused(unet: Any) -> bool:
    # diffusers marks fusion only by the processors it sets (FusedAttnProcessor2_0 and kin).
    return any(type(p).__name__.startswith("Fused") for p in unet.attn_processors.values())
