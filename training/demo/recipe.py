"""The demo model's architecture: a small SD2-architecture pipeline built from config with seeded weights.

Sized for what learns in an hour on two CPU cores (docs/demo_model.md): 128 px images, a VAE with ONE
downsampling (f2: 64x64 latents, easy to learn in minutes), a 3-level UNet with cross-attention in the
two lower levels, and a small CLIP text encoder that stays FROZEN at its seeded init (captions are
templates; a frozen random encoder still maps each template to its own embedding). The tokenizer is
char-level (no merges), like the tiny model's: no vocabulary is downloaded.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

NATIVE_SIZE = 128  # pixels, square
VAE_CHANNELS = (32, 64)  # two levels = f2: 64x64 latents at 128 px
UNET_CHANNELS = (32, 64, 128)
TEXT_HIDDEN = 64


def _vae() -> Any:
    import diffusers

    d: Any = diffusers
    torch.manual_seed(1)
    return d.AutoencoderKL(
        block_out_channels=list(VAE_CHANNELS),
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * len(VAE_CHANNELS),
        up_block_types=["UpDecoderBlock2D"] * len(VAE_CHANNELS),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=16,
        mid_block_add_attention=False,
        # diffusers tiles a decode once a side exceeds sample_size (the server enables tiling for 4K):
        # the demo's frames are a few hundred pixels, decoded whole.
        sample_size=1024,
        scaling_factor=1.0,  # set from the trained VAE's latents (vae stage of genfx-train fit)
    )


def _unet() -> Any:
    import diffusers

    d: Any = diffusers
    torch.manual_seed(2)
    return d.UNet2DConditionModel(
        sample_size=NATIVE_SIZE // 2 ** (len(VAE_CHANNELS) - 1),
        in_channels=4,
        out_channels=4,
        block_out_channels=UNET_CHANNELS,
        layers_per_block=1,
        down_block_types=("DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        cross_attention_dim=TEXT_HIDDEN,
        attention_head_dim=(4, 4, 8),
        norm_num_groups=32,
        use_linear_projection=True,  # as SD 2.x
    )


def _text() -> tuple[Any, Any]:
    import transformers

    from inference_server.tiny_model import char_tokenizer_vocab

    t: Any = transformers
    vocab, bos, eos = char_tokenizer_vocab()
    tokenizer = t.CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)
    torch.manual_seed(3)
    encoder = t.CLIPTextModel(
        t.CLIPTextConfig(
            bos_token_id=vocab[bos],
            eos_token_id=vocab[eos],
            pad_token_id=vocab[eos],
            hidden_size=TEXT_HIDDEN,
            intermediate_size=4 * TEXT_HIDDEN,
            layer_norm_eps=1e-5,
            num_attention_heads=4,
            num_hidden_layers=2,
            vocab_size=len(vocab),
            max_position_embeddings=77,
            hidden_act="gelu",
            projection_dim=TEXT_HIDDEN,
        )
    )
    return tokenizer, encoder


def _scheduler() -> Any:
    import diffusers

    d: Any = diffusers
    # SD 2.x's schedule and v-prediction; DDIM at generation (few steps are enough at this size).
    return d.DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
        prediction_type="v_prediction",
        timestep_spacing="trailing",
    )


def build_demo_base(out_dir: Path) -> Path:
    """Write the untrained demo pipeline (seeded, so every build is byte-identical) to ``out_dir``."""
    import diffusers

    d: Any = diffusers
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir}: not empty; pick an empty folder for the base model")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        with torch.random.fork_rng(devices=[]):
            tokenizer, text_encoder = _text()
            pipe = d.StableDiffusionPipeline(
                vae=_vae(),
                text_encoder=text_encoder,
                tokenizer=tokenizer,
                unet=_unet(),
                scheduler=_scheduler(),
                safety_checker=None,
                feature_extractor=None,
                image_encoder=None,
                requires_safety_checker=False,
            )
        pipe.save_pretrained(tmp, safe_serialization=True)
        if out_dir.exists():
            out_dir.rmdir()
        os.rename(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir
