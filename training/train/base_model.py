"""Load a local diffusers SD 2.x model for training and add what is trained: LoRA, ControlNet or the UNet.

Nothing is fetched: every component comes from the folder (``local_files_only``). A folder that is
not a loadable SD model is refused with a message naming the folder and what is missing or broken.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from genfx.sim_condition import CONDITION_CHANNELS

UNET_LORA_TARGETS = ["to_k", "to_q", "to_v", "to_out.0"]
TEXT_LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]
COMPONENTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
CONTROLNET_EMBEDDING = (16, 32, 96, 256)  # diffusers' default, for an 8x VAE


class BaseModelError(ValueError):
    """The base model folder cannot be used for training."""


@dataclass
class Components:
    unet: Any
    vae: Any
    text_encoder: Any
    tokenizer: Any
    noise_scheduler: Any
    controlnet: Any | None


def _check_folder(path: Path) -> None:
    if not path.is_dir():
        raise BaseModelError(f"base model {path}: not a directory")
    if not (path / "model_index.json").is_file():
        raise BaseModelError(f"base model {path}: no model_index.json (not a diffusers model folder)")
    missing = [c for c in COMPONENTS if not (path / c).is_dir()]
    if missing:
        raise BaseModelError(f"base model {path}: missing component folder(s) {', '.join(missing)}")


def load_components(path: Path, *, controlnet: bool) -> Components:
    """The frozen model parts, plus a new ControlNet initialised from the UNet when asked."""
    import diffusers
    import transformers

    d: Any = diffusers
    t: Any = transformers
    path = Path(path)
    _check_folder(path)
    try:
        unet = d.UNet2DConditionModel.from_pretrained(path, subfolder="unet", local_files_only=True)
        vae = d.AutoencoderKL.from_pretrained(path, subfolder="vae", local_files_only=True)
        text_encoder = t.CLIPTextModel.from_pretrained(path, subfolder="text_encoder", local_files_only=True)
        tokenizer = t.CLIPTokenizer.from_pretrained(path, subfolder="tokenizer", local_files_only=True)
        scheduler_config = d.DDPMScheduler.load_config(path, subfolder="scheduler", local_files_only=True)
        noise_scheduler = d.DDPMScheduler.from_config(scheduler_config)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise BaseModelError(f"base model {path}: cannot load ({type(exc).__name__}: {exc})") from None
    if unet.config.in_channels != 4:
        raise BaseModelError(
            f"base model {path}: needs a 4-channel (text-to-image) UNet, not {unet.config.in_channels}"
        )
    for module in (unet, vae, text_encoder):
        module.requires_grad_(False)
    cn = None
    if controlnet:
        # One conditioning downsample per VAE level, so the condition image (pixels) meets the latents.
        levels = len(vae.config.block_out_channels)
        cn = d.ControlNetModel.from_unet(
            unet,
            conditioning_channels=len(CONDITION_CHANNELS),
            conditioning_embedding_out_channels=CONTROLNET_EMBEDDING[:levels],
        )
        cn.requires_grad_(True)
    return Components(unet, vae, text_encoder, tokenizer, noise_scheduler, cn)


def unzero_controlnet(controlnet: Any) -> None:
    """Give the ControlNet's zero convolutions an ordinary (seeded) init.

    ControlNet zero-initialises its output convolutions so a PRETRAINED UNet starts unchanged. When the
    UNet is trained from scratch together with it there is nothing to protect, and the zero init only
    delays the conditioning (in a 150-step test the images ignored the passes entirely)."""
    convs = [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block]
    convs.append(controlnet.controlnet_cond_embedding.conv_out)
    for conv in convs:
        conv.reset_parameters()


def add_lora(components: Components, rank: int, text_encoder: bool) -> None:
    from peft import LoraConfig

    config = LoraConfig(
        r=rank, lora_alpha=rank, init_lora_weights="gaussian", target_modules=UNET_LORA_TARGETS
    )
    components.unet.add_adapter(config)
    if text_encoder:
        te_config = LoraConfig(
            r=rank, lora_alpha=rank, init_lora_weights="gaussian", target_modules=TEXT_LORA_TARGETS
        )
        components.text_encoder.add_adapter(te_config)


class Trainee(torch.nn.Module):
    """UNet (+ ControlNet) (+ text encoder) as ONE module, so DDP wraps and syncs them together."""

    def __init__(self, unet: Any, text_encoder: Any, controlnet: Any | None) -> None:
        super().__init__()
        self.unet = unet
        self.text_encoder = text_encoder
        self.controlnet = controlnet

    def forward(
        self,
        noisy: torch.Tensor,
        timesteps: torch.Tensor,
        input_ids: torch.Tensor | None,
        text_embeds: torch.Tensor | None,
        condition: torch.Tensor | None,
    ) -> torch.Tensor:
        if text_embeds is None:
            text_embeds = self.text_encoder(input_ids)[0]
        down, mid = None, None
        if self.controlnet is not None:
            down, mid = self.controlnet(
                noisy,
                timesteps,
                encoder_hidden_states=text_embeds,
                controlnet_cond=condition,
                return_dict=False,
            )
        out: torch.Tensor = self.unet(
            noisy,
            timesteps,
            encoder_hidden_states=text_embeds,
            down_block_additional_residuals=down,
            mid_block_additional_residual=mid,
        ).sample
        return out


def trainable_parameters(module: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    return {name: p for name, p in module.named_parameters() if p.requires_grad}
