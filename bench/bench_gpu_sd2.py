"""GPU: a full-size SD 2.x-architecture pipeline with random weights (the same FLOPs as the real model),
denoising it/s at 768x768 with fp16/bf16 + SDPA (+ channels_last, optional torch.compile) against plain
diffusers defaults (fp32), measured in one run.

    python -m bench.bench_gpu_sd2 [--dtype fp16|bf16] [--steps 20] [--compile]
    python -m bench.bench_gpu_sd2 --smoke     # tiny configs on the CPU: checks the script itself

Random weights: no checkpoint is downloaded; speed does not depend on the weights' values.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import torch
from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
from diffusers.models.attention_processor import AttnProcessor2_0
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

# The offline tokenizer and the SD2 scheduler of the built-in tiny model.
from inference_server.tiny_model import _char_vocab, _ddim

# stabilityai/stable-diffusion-2-1 (768-v) component configs.
SD21_UNET = dict(
    sample_size=96,
    in_channels=4,
    out_channels=4,
    layers_per_block=2,
    block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    attention_head_dim=(5, 10, 20, 20),
    cross_attention_dim=1024,
    use_linear_projection=True,
)
SD21_VAE = dict(
    block_out_channels=(128, 256, 512, 512),
    layers_per_block=2,
    latent_channels=4,
    sample_size=768,
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
)
SD21_TEXT = dict(
    hidden_size=1024,
    intermediate_size=4096,
    num_attention_heads=16,
    num_hidden_layers=23,
    projection_dim=512,
    hidden_act="gelu",
    vocab_size=49408,
    max_position_embeddings=77,
)
SMOKE_UNET = dict(
    SD21_UNET,
    sample_size=16,
    block_out_channels=(32, 64, 64, 64),
    attention_head_dim=(2, 4, 4, 4),
    cross_attention_dim=32,
)
SMOKE_VAE = dict(SD21_VAE, block_out_channels=(32, 32, 32, 32), sample_size=128)
SMOKE_TEXT = dict(SD21_TEXT, hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2)


def build_pipeline(smoke: bool) -> Any:
    torch.manual_seed(0)
    vocab = _char_vocab()
    text_cfg = CLIPTextConfig(
        **(SMOKE_TEXT if smoke else SD21_TEXT),
        bos_token_id=vocab["<|startoftext|>"],
        eos_token_id=vocab["<|endoftext|>"],
        pad_token_id=vocab["<|endoftext|>"],
    )
    return StableDiffusionPipeline(
        vae=AutoencoderKL(**(SMOKE_VAE if smoke else SD21_VAE)),
        text_encoder=CLIPTextModel(text_cfg),
        tokenizer=CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77),
        unet=UNet2DConditionModel(**(SMOKE_UNET if smoke else SD21_UNET)),
        scheduler=_ddim(),
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )


def iterations_per_second(pipe: Any, size: int, steps: int, device: str, repeats: int = 3) -> float:
    def run() -> float:
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        # output_type="latent": the denoising loop only (no VAE decode), which is what it/s means.
        pipe(
            "a building collapses",
            height=size,
            width=size,
            num_inference_steps=steps,
            guidance_scale=7.5,
            output_type="latent",
            generator=torch.Generator("cpu").manual_seed(0),
        )
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    run()  # warm-up (cuDNN autotune, compile)
    return steps / min(run() for _ in range(repeats))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="fp16", choices=["fp16", "bf16"])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--size", type=int, default=768)
    parser.add_argument(
        "--compile", action="store_true", help="also torch.compile the UNet (slow first call)"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny configs on the CPU")
    args = parser.parse_args()
    device = "cpu" if args.smoke else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        print(
            "no CUDA device: run this on a GPU box, or --smoke to check the script on a CPU", file=sys.stderr
        )
        return 2
    size = 64 if args.smoke else args.size
    pipe = build_pipeline(args.smoke)
    pipe.set_progress_bar_config(disable=True)

    baseline = pipe.to(device)  # plain diffusers defaults: fp32 weights, default attention
    base_its = iterations_per_second(baseline, size, args.steps, device)

    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}[args.dtype]
    fast = baseline.to(dtype=dtype)
    fast.unet.set_attn_processor(AttnProcessor2_0())  # scaled_dot_product_attention (flash/mem-efficient)
    fast.unet.to(memory_format=torch.channels_last)
    fast_its = iterations_per_second(fast, size, args.steps, device)
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu (smoke)"
    print(f"SD 2.x architecture, random weights, {size}x{size}, {args.steps} steps, CFG on, batch 1, {name}:")
    print(f"  plain diffusers defaults (fp32)         : {base_its:7.2f} it/s")
    print(
        f"  {args.dtype} + SDPA + channels_last          : {fast_its:7.2f} it/s"
        f"  ratio {fast_its / base_its:.2f}x"
    )
    if args.compile:
        fast.unet = torch.compile(fast.unet, mode="max-autotune", fullgraph=True)
        compiled_its = iterations_per_second(fast, size, args.steps, device)
        print(
            f"  + torch.compile(max-autotune)           : {compiled_its:7.2f} it/s  "
            f"ratio {compiled_its / base_its:.2f}x"
        )
    if device == "cuda":
        print(f"  peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
