"""Optional cache of VAE latents and text embeddings, computed in the ETL so training skips both encoders.

Stored per sample as ``KEY.latent.npy`` (float16, 4 x h/8 x w/8: the VAE posterior's mean, unscaled)
and ``KEY.text.npy`` (float16, 77 x hidden). The manifest records the model's hash; the trainer uses the
cache only for that model and when the text encoder is not being trained.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np


@lru_cache(maxsize=2)
def _encoders(model_dir: str) -> tuple[Any, Any, Any]:
    import diffusers
    import torch
    import transformers

    d: Any = diffusers
    t: Any = transformers
    torch.set_num_threads(1)  # one Ray task per core
    vae = d.AutoencoderKL.from_pretrained(model_dir, subfolder="vae", local_files_only=True).eval()
    tok = t.CLIPTokenizer.from_pretrained(model_dir, subfolder="tokenizer", local_files_only=True)
    te = t.CLIPTextModel.from_pretrained(model_dir, subfolder="text_encoder", local_files_only=True).eval()
    return vae, tok, te


def encode(model_dir: Path, image: np.ndarray, text: str) -> tuple[np.ndarray, np.ndarray]:
    """(latent mean (4, h, w), text embedding (77, hidden)) as float16 for one display-sRGB image."""
    import torch

    vae, tok, te = _encoders(str(model_dir))
    with torch.no_grad():
        pixels = torch.from_numpy(image).permute(2, 0, 1)[None].float() * 2.0 - 1.0
        latent = vae.encode(pixels).latent_dist.mean[0]
        ids = tok(
            text, padding="max_length", max_length=tok.model_max_length, truncation=True, return_tensors="pt"
        )
        emb = te(ids.input_ids)[0][0]
    return latent.numpy().astype(np.float16), emb.numpy().astype(np.float16)
