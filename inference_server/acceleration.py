"""How pipelines are set up to run fast on a device: the server's half of the GPU recipe.

On CUDA the defaults are the recipe's low-risk candidates (half precision, PyTorch SDPA attention, which
diffusers uses by default on torch 2, channels_last UNet and VAE, fused QKV projections); each has an
opt-out flag. ``torch.compile`` (whole UNet, or ``compile_repeated_blocks``) is opt-in: its first call
takes minutes and it recompiles for every new generation size. None of this has been measured on a GPU
yet: ``bench/bench_gpu_sd2.py`` measures every setting against plain diffusers and should decide the
defaults. On the CPU everything stays off (fp32, eager): CPUs have no fast fp16 kernels.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

log = logging.getLogger("genfx.models")

DTYPES = ("auto", "fp16", "bf16", "fp32")
COMPILE_MODES = ("off", "blocks", "unet")


@dataclass(frozen=True)
class Acceleration:
    """Server-wide settings (``genfx-server serve --dtype/--no-channels-last/--no-fuse-qkv/--compile``)."""

    dtype: str = "auto"  # auto: fp16 on CUDA, fp32 elsewhere
    channels_last: bool = True  # CUDA only
    fuse_qkv: bool = True  # CUDA only; a job's LoRAs unfuse it while they are on (engine/loras.py)
    compile: str = "off"  # CUDA only: "blocks" = unet.compile_repeated_blocks, "unet" = the whole UNet

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"--dtype: must be one of {', '.join(DTYPES)} (got {self.dtype!r})")
        if self.compile not in COMPILE_MODES:
            raise ValueError(f"--compile: must be one of {', '.join(COMPILE_MODES)} (got {self.compile!r})")

    def on(self, device: str) -> Acceleration:
        """What applies on ``device``: ``auto`` resolved; on a CPU everything but the dtype off."""
        if not device.startswith("cuda"):
            dtype = "fp32" if self.dtype == "auto" else self.dtype
            return replace(self, dtype=dtype, channels_last=False, fuse_qkv=False, compile="off")
        return replace(self, dtype="fp16" if self.dtype == "auto" else self.dtype)

    def torch_dtype(self) -> Any:
        """The torch dtype of a resolved setting (``on``)."""
        import torch

        return {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[self.dtype]

    def describe(self) -> str:
        parts = [self.dtype, "SDPA"]
        parts += ["channels_last"] if self.channels_last else []
        parts += ["fused QKV"] if self.fuse_qkv else []
        parts += [f"torch.compile({self.compile})"] if self.compile != "off" else []
        return " + ".join(parts)


def apply(pipe: Any, settings: Acceleration) -> Any:
    """Sets up a loaded pipeline (already on its device, in ``settings.torch_dtype()``) as ``settings``
    say; ``settings`` must be resolved for the device (``Acceleration.on``). Returns the pipeline."""
    import torch

    if settings.fuse_qkv and hasattr(pipe, "fuse_qkv_projections"):
        pipe.fuse_qkv_projections()
    if settings.channels_last:
        for name in ("unet", "vae"):
            module = getattr(pipe, name, None)
            if module is not None:
                apply_to_module(module, settings)
    if settings.compile == "blocks":
        pipe.unet.compile_repeated_blocks(fullgraph=True)
    elif settings.compile == "unet":
        pipe.unet = torch.compile(pipe.unet, fullgraph=True)
    return pipe


def apply_to_module(module: Any, settings: Acceleration) -> Any:
    """One conv model loaded on its own (the sim ControlNet, which joins a pipeline later): its memory
    layout as ``settings`` say. Returns the module."""
    import torch

    if settings.channels_last:
        module.to(memory_format=torch.channels_last)
    return module
