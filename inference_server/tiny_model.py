"""The built-in "tiny" model: a random-weight SD2-architecture pipeline built offline from config.

It serves the demo and the tests through exactly the same loading code as a real model
(``StableDiffusionPipeline.from_pretrained`` on a local folder). Weights come from fixed torch seeds, so
every build is byte-identical and the model hash is stable across machines.

Besides the main 4-channel pipeline (txt2img, img2img, legacy inpaint) the folder carries the variants
a real deployment configures next to its base model (see ``genfx.json`` and models.py): a depth2img
pipeline (5-channel UNet, no depth estimator: depth always comes from the shot) and an x4 upscaler.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from . import third_party

# Bump when the recipe changes: it is part of the cache folder name, so old builds are never reused.
TINY_MODEL_VERSION = "3"
VARIANTS_FILE = "genfx.json"

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


def char_tokenizer_vocab() -> tuple[dict[str, int], str, str]:
    """(vocab, BOS token, EOS token) of the char-level CLIP tokenizer (also the demo model's)."""
    return _char_vocab(), _BOS, _EOS


def _seed() -> None:
    # torch loads on first build: the server imports this module at start, long before a model loads.
    import torch

    torch.manual_seed(0)


def _tiny_unet(in_channels: int, layers_per_block: int = 2) -> Any:
    import diffusers

    d: Any = diffusers  # untyped for mypy --strict
    # Same component configs as diffusers' own SD2 pipeline tests (get_dummy_components).
    _seed()
    return d.UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=layers_per_block,
        sample_size=32,
        in_channels=in_channels,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=(2, 4),
        use_linear_projection=True,
    )


def _tiny_text() -> tuple[Any, Any]:
    import transformers

    t: Any = transformers  # untyped for mypy --strict
    vocab = _char_vocab()
    # model_max_length must be set: the pipeline pads prompts to it (default would be 1e30).
    tokenizer = t.CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)
    CLIPTextConfig, CLIPTextModel = t.CLIPTextConfig, t.CLIPTextModel
    _seed()
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
    return tokenizer, text_encoder


def _tiny_vae(levels: int, scaling_factor: float = 0.18215) -> Any:
    import diffusers

    d: Any = diffusers
    _seed()
    return d.AutoencoderKL(
        block_out_channels=[32, 64, 64][:levels],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * levels,
        up_block_types=["UpDecoderBlock2D"] * levels,
        latent_channels=4,
        sample_size=128,
        scaling_factor=scaling_factor,
    )


def _ddim() -> Any:
    import diffusers

    d: Any = diffusers
    # SD2 (768) uses v-prediction; steps_offset=1 avoids DDIM's FutureWarning.
    return d.DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
        prediction_type="v_prediction",
    )


def _build_pipeline() -> Any:
    import diffusers

    d: Any = diffusers
    tokenizer, text_encoder = _tiny_text()
    return d.StableDiffusionPipeline(
        vae=_tiny_vae(2),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=_tiny_unet(4),
        scheduler=_ddim(),
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )


def _build_depth_pipeline() -> Any:
    """depth2img: 4 latent + 1 depth input channels; depth comes from the shot, so no estimator."""
    import diffusers

    d: Any = diffusers
    tokenizer, text_encoder = _tiny_text()
    return d.StableDiffusionDepth2ImgPipeline(
        vae=_tiny_vae(2),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=_tiny_unet(5, layers_per_block=1),  # variants stay small: the folder is a test fixture
        scheduler=_ddim(),
        depth_estimator=None,
        feature_extractor=None,
    )


def _build_upscaler() -> Any:
    """x4 upscaler as in diffusers' upscale tests: 4 latent + 3 low-res RGB channels, f4 VAE."""
    import diffusers

    d: Any = diffusers
    tokenizer, text_encoder = _tiny_text()
    _seed()
    unet = d.UNet2DConditionModel(
        block_out_channels=(32, 32, 64),
        layers_per_block=1,
        sample_size=32,
        in_channels=7,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        use_linear_projection=True,
        only_cross_attention=(True, True, False),
        num_class_embeds=100,
    )
    # The real x4 VAE uses 0.08333; 0.18215 would log a warning.
    return d.StableDiffusionUpscalePipeline(
        vae=_tiny_vae(3, scaling_factor=0.08333),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        low_res_scheduler=d.DDPMScheduler(),
        scheduler=_ddim(),
        max_noise_level=350,
    )


TINY_VARIANTS = {"depth": "variants/depth", "upscale_x4": "variants/upscale_x4"}


def build_tiny_model(out_dir: Path) -> Path:
    """Build the tiny pipeline and save it (safetensors) to ``out_dir``; returns ``out_dir``.

    The model is written to a temporary sibling folder and renamed into place, so a crash never leaves a
    half-written model. Raises FileExistsError (and discards the build) if ``out_dir`` already holds
    files: a finished model is never overwritten.
    """
    third_party.quiet()
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        # fork_rng: seeding for the build must not disturb the caller's global RNG state.
        import torch

        with torch.random.fork_rng(devices=[]):
            pipe = _build_pipeline()
            variants = {"depth": _build_depth_pipeline(), "upscale_x4": _build_upscaler()}
        pipe.save_pretrained(tmp, safe_serialization=True)
        for kind, variant in variants.items():
            variant.save_pretrained(tmp / TINY_VARIANTS[kind], safe_serialization=True)
        (tmp / VARIANTS_FILE).write_text(json.dumps({"variants": TINY_VARIANTS}, indent=2, sort_keys=True))
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
