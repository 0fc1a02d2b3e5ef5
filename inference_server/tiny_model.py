"""The built-in "tiny" model: a random-weight SD2-architecture pipeline built offline from config.

It serves the demo and the tests through exactly the same loading code as a real model
(``StableDiffusionPipeline.from_pretrained`` on a local folder). Weights come from fixed torch seeds, so
every build is byte-identical and the model hash is stable across machines.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

# Bump when the recipe changes: it is part of the cache folder name, so old builds are never reused.
TINY_MODEL_VERSION = "1"

_BOS = "<|startoftext|>"
_EOS = "<|endoftext|>"


def _bytes_to_unicode() -> list[str]:
    """The 256 printable characters CLIP's byte-level BPE uses for the 256 byte values (as in CLIP)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def _char_vocab() -> dict[str, int]:
    """A char-level vocab (no merges): tokenizes any text without downloading a real CLIP vocab."""
    chars = _bytes_to_unicode()
    vocab: dict[str, int] = {}
    for c in chars:
        vocab[c] = len(vocab)
    for c in chars:
        vocab[c + "</w>"] = len(vocab)
    vocab[_BOS] = len(vocab)
    vocab[_EOS] = len(vocab)
    return vocab


def _build_pipeline() -> Any:
    import diffusers
    import transformers

    # diffusers/transformers are untyped for mypy --strict: use them through Any.
    d: Any = diffusers
    t: Any = transformers
    AutoencoderKL, DDIMScheduler = d.AutoencoderKL, d.DDIMScheduler
    StableDiffusionPipeline, UNet2DConditionModel = d.StableDiffusionPipeline, d.UNet2DConditionModel
    CLIPTextConfig, CLIPTextModel, CLIPTokenizer = t.CLIPTextConfig, t.CLIPTextModel, t.CLIPTokenizer

    vocab = _char_vocab()
    # model_max_length must be set: the pipeline pads prompts to it (default would be 1e30).
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)

    # Same component configs as diffusers' own SD2 pipeline tests (get_dummy_components).
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=2,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=(2, 4),
        use_linear_projection=True,
    )
    torch.manual_seed(0)
    vae = AutoencoderKL(
        block_out_channels=[32, 64],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2,
        latent_channels=4,
        sample_size=128,
    )
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=vocab[_BOS],
            eos_token_id=vocab[_EOS],
            pad_token_id=vocab[_EOS],
            hidden_size=32,
            intermediate_size=37,
            layer_norm_eps=1e-5,
            num_attention_heads=4,
            num_hidden_layers=5,
            vocab_size=1000,
            max_position_embeddings=77,
            hidden_act="gelu",
            projection_dim=512,
        )
    )
    # SD2 (768) uses v-prediction; steps_offset=1 avoids DDIM's FutureWarning.
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
        prediction_type="v_prediction",
    )
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )


def build_tiny_model(out_dir: Path) -> Path:
    """Build the tiny pipeline and save it (safetensors) to ``out_dir``; returns ``out_dir``.

    The model is written to a temporary sibling folder and renamed into place, so a crash never leaves a
    half-written model. Raises FileExistsError (and discards the build) if ``out_dir`` already holds
    files: a finished model is never overwritten.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        # fork_rng: seeding for the build must not disturb the caller's global RNG state.
        with torch.random.fork_rng(devices=[]):
            pipe = _build_pipeline()
        pipe.save_pretrained(tmp, safe_serialization=True)
        try:
            os.rename(tmp, out_dir)
        except OSError as exc:
            if out_dir.exists():
                raise FileExistsError(f"{out_dir} already exists") from exc
            raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def ensure_tiny_model(cache_dir: Path) -> Path:
    """Return ``cache_dir/tiny-v<N>``, building it on first use.

    Safe when several processes race: each builds into its own temp folder, the first rename wins and
    the others discard their (identical) build.
    """
    target = Path(cache_dir) / f"tiny-v{TINY_MODEL_VERSION}"
    if (target / "model_index.json").is_file():
        return target
    try:
        build_tiny_model(target)
    except FileExistsError:
        if not (target / "model_index.json").is_file():
            raise
    return target
