"""GPU recipe: full-size SD 2.x (random weights: the same FLOPs as the real model) at 768x768 and 512x512,
plain diffusers defaults against the server's own loading path (inference_server/models.py +
acceleration.py) with each of the recipe's candidates, all in one run:

- precision (fp16 / bf16), PyTorch SDPA attention (diffusers' default on torch 2), channels_last,
  fused QKV projections: the server's CUDA defaults;
- torch.compile of the UNet's repeated blocks (``compile_repeated_blocks``) and of the whole UNet
  (``--compile``), with compile time;
- independent keyframes batched into one UNet call;
- LoRA hot-swap into a compiled UNet (``enable_lora_hotswap``): does swapping recompile?

For each: denoising it/s (no VAE decode), images/s (full call, decode included), peak GPU memory, compile
time, ratio to plain diffusers (target >= 1.5). Then the 1200-frame 4K shot time from per-frame costs
measured in the same run: a keyframe at the 4K generation size, the tiled x4 upscaler (full-size random
x4-upscaler architecture, per tile), and the CPU side of a frame (colour, EXR encode, in-between).

    python -m bench.bench_gpu_sd2                   # one GPU; about 10 minutes, most of it compiling
    python -m bench.bench_gpu_sd2 --no-compile      # without the torch.compile variants (minutes less)
    python -m bench.bench_gpu_sd2 --smoke           # tiny configs on the CPU: checks the script itself

Random weights are built here from the published configs and saved to a temp folder; nothing is
downloaded. Speed does not depend on the weights' values.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import diffusers
import numpy as np
import torch
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from genfx.exr import FrameMetadata, encode_frame
from inference_server import defaults, third_party
from inference_server.acceleration import Acceleration, apply
from inference_server.engine.motion import ShotFlow
from inference_server.engine.reproject import View
from inference_server.engine.temporal import inbetween, plan_frames
from inference_server.engine.txt2img import generation_size
from inference_server.engine.upscale import tile_count
from inference_server.frame_output import encode_rgba
from inference_server.frame_writer import default_writer_threads
from inference_server.models import ModelRegistry

# The offline tokenizer and the SD2 scheduler of the built-in tiny model.
from inference_server.tiny_model import _char_vocab, _ddim
from tests.synthetic import track

d: Any = diffusers  # untyped for mypy --strict

# stabilityai/stable-diffusion-2-1 (768-v) component configs.
SD21_UNET: dict[str, Any] = dict(
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
SD21_VAE: dict[str, Any] = dict(
    block_out_channels=(128, 256, 512, 512),
    layers_per_block=2,
    latent_channels=4,
    sample_size=768,
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
)
SD21_TEXT: dict[str, Any] = dict(
    hidden_size=1024,
    intermediate_size=4096,
    num_attention_heads=16,
    num_hidden_layers=23,
    projection_dim=512,
    hidden_act="gelu",
    vocab_size=49408,
    max_position_embeddings=77,
)
# The x4 upscaler (Stability-AI/stablediffusion configs/stable-diffusion/x4-upscaling.yaml): 256 model
# channels x (1, 2, 2, 4), cross-attention only in the first three attention blocks, 1000 noise-level
# classes, 128-pixel tiles, a 3-level (f4) VAE with scale factor 0.08333.
X4_UNET: dict[str, Any] = dict(
    sample_size=128,
    in_channels=7,
    out_channels=4,
    layers_per_block=2,
    block_out_channels=(256, 512, 512, 1024),
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    attention_head_dim=8,
    cross_attention_dim=1024,
    use_linear_projection=True,
    only_cross_attention=(True, True, True, False),
    num_class_embeds=1000,
)
X4_VAE: dict[str, Any] = dict(
    block_out_channels=(128, 256, 512),
    layers_per_block=2,
    latent_channels=4,
    down_block_types=("DownEncoderBlock2D",) * 3,
    up_block_types=("UpDecoderBlock2D",) * 3,
    scaling_factor=0.08333,
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
SMOKE_X4_UNET = dict(X4_UNET, sample_size=16, block_out_channels=(32, 32, 64, 64), cross_attention_dim=32)
SMOKE_X4_VAE = dict(X4_VAE, block_out_channels=(32, 32, 32))

SHOT_FRAMES = 1200
SHOT_SIZE = (3840, 2160)
PROMPT = "a concrete building collapses, dust, overcast daylight"


def _text(smoke: bool) -> tuple[Any, Any]:
    vocab = _char_vocab()
    cfg = CLIPTextConfig(
        **(SMOKE_TEXT if smoke else SD21_TEXT),
        bos_token_id=vocab["<|startoftext|>"],
        eos_token_id=vocab["<|endoftext|>"],
        pad_token_id=vocab["<|endoftext|>"],
    )
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77), CLIPTextModel(cfg)


def build_pipeline(smoke: bool) -> Any:
    torch.manual_seed(0)
    tokenizer, text_encoder = _text(smoke)
    return d.StableDiffusionPipeline(
        vae=d.AutoencoderKL(**(SMOKE_VAE if smoke else SD21_VAE)),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=d.UNet2DConditionModel(**(SMOKE_UNET if smoke else SD21_UNET)),
        scheduler=_ddim(),
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )


def build_upscaler(smoke: bool) -> Any:
    torch.manual_seed(0)
    tokenizer, text_encoder = _text(smoke)
    return d.StableDiffusionUpscalePipeline(
        vae=d.AutoencoderKL(**(SMOKE_X4_VAE if smoke else X4_VAE)),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=d.UNet2DConditionModel(**(SMOKE_X4_UNET if smoke else X4_UNET)),
        low_res_scheduler=d.DDPMScheduler(),
        scheduler=_ddim(),
        max_noise_level=350,
    )


# ---- measuring -------------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    size: tuple[int, int]
    batch: int
    its: float  # denoising iterations/s (one iteration = one UNet call for the whole batch, CFG on)
    ips: float  # images/s, full call with VAE decode
    peak_gib: float
    compile_s: float


class Bench:
    def __init__(self, args: argparse.Namespace, folder: Path) -> None:
        self.smoke = args.smoke
        self.device = "cpu" if args.smoke else "cuda:0"
        self.steps = args.steps
        self.repeats = args.repeats
        self.dtype = args.dtype
        self.folder = folder
        self.model = folder / "sd2"
        self.registry_cache = folder / "cache"

    def sync(self) -> None:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()

    def reset_peak(self) -> None:
        gc.collect()
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()

    def peak_gib(self) -> float:
        return torch.cuda.max_memory_allocated() / 2**30 if self.device.startswith("cuda") else 0.0

    def timed(self, fn: Callable[[], Any]) -> float:
        self.sync()
        t0 = time.perf_counter()
        fn()
        self.sync()
        return time.perf_counter() - t0

    def call(self, pipe: Any, size: tuple[int, int], batch: int, latent: bool, steps: int = 0) -> Any:
        w, h = size
        return pipe(
            [PROMPT] * batch,
            height=h,
            width=w,
            num_inference_steps=steps or self.steps,
            guidance_scale=7.5,
            output_type="latent" if latent else "np",
            generator=[torch.Generator("cpu").manual_seed(i) for i in range(batch)],
        )

    def measure(self, name: str, pipe: Any, size: tuple[int, int], batch: int = 1) -> Result:
        self.reset_peak()
        first = self.timed(lambda: self.call(pipe, size, batch, latent=True))  # compile, autotune
        steady = min(
            self.timed(lambda: self.call(pipe, size, batch, latent=True)) for _ in range(self.repeats)
        )
        full = min(self.timed(lambda: self.call(pipe, size, batch, latent=False)) for _ in range(2))
        return Result(
            name, size, batch, self.steps / steady, batch / full, self.peak_gib(), max(0.0, first - steady)
        )

    # ---- loading: exactly the server's path on a GPU ----------------------------------------------

    def load_plain(self) -> Any:
        pipe = d.StableDiffusionPipeline.from_pretrained(self.model, local_files_only=True).to(self.device)
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def load_engine(self, settings: Acceleration) -> Any:
        if self.smoke:  # the registry switches everything off on a CPU: apply the CUDA settings directly
            resolved = replace(settings.on("cuda"), compile="off")
            pipe = d.StableDiffusionPipeline.from_pretrained(
                self.model, local_files_only=True, dtype=resolved.torch_dtype()
            )
            pipe = apply(pipe.to(self.device), resolved)
        else:
            registry = ModelRegistry({"sd2": self.model}, self.registry_cache, False, acceleration=settings)
            pipe = registry.load("sd2", self.device)
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def drop(self, pipe: Any) -> None:
        del pipe
        torch._dynamo.reset()
        self.reset_peak()


def _variants(dtype: str, compile_too: bool, smoke: bool) -> list[tuple[str, Acceleration]]:
    out = [
        (f"{dtype} + SDPA", Acceleration(dtype, False, False, "off")),
        (f"{dtype} + SDPA + channels_last", Acceleration(dtype, True, False, "off")),
        (
            f"{dtype} + SDPA + channels_last + fused QKV (server default)",
            Acceleration(dtype, True, True, "off"),
        ),
    ]
    if compile_too and not smoke:
        out += [
            ("  + compile_repeated_blocks", Acceleration(dtype, True, True, "blocks")),
            ("  + torch.compile(whole UNet)", Acceleration(dtype, True, True, "unet")),
        ]
    return out


def run_recipe(bench: Bench, sizes: list[int], compile_too: bool, batch: int) -> list[Result]:
    results: list[Result] = []
    for side in sizes:
        size = (side, side)
        pipe = bench.load_plain()
        results.append(bench.measure("plain diffusers defaults (fp32)", pipe, size))
        bench.drop(pipe)
        for name, settings in _variants(bench.dtype, compile_too, bench.smoke):
            pipe = bench.load_engine(settings)
            results.append(bench.measure(name, pipe, size))
            if settings.compile == "off" and settings.fuse_qkv and batch > 1:
                results.append(
                    bench.measure(f"  server default, {batch} keyframes per UNet call", pipe, size, batch)
                )
            bench.drop(pipe)
    return results


def print_recipe(results: list[Result], device: str) -> None:
    print(f"\nSD 2.x architecture, random weights, CFG on, {device}:")
    columns = f"{'size':>9} {'it/s':>7} {'img/s':>7} {'x plain':>8} {'peak GiB':>9} {'compile s':>10}"
    print(f"  {'setting':<60} {columns}")
    plain = {r.size: r for r in results if r.name.startswith("plain")}
    for r in results:
        base = plain[r.size]
        # Batched runs: compare images/s (an iteration there denoises `batch` images).
        ratio = r.ips / base.ips if r.batch > 1 else r.its / base.its
        print(
            f"  {r.name:<60} {r.size[0]:>4}x{r.size[1]:<4} {r.its:7.2f} {r.ips:7.3f} {ratio:7.2f}x"
            f" {r.peak_gib:9.1f} {r.compile_s:10.1f}"
        )
    best = max(
        (r for r in results if not r.name.startswith("plain")), key=lambda r: r.ips / plain[r.size].ips
    )
    print(
        f"  best images/s against plain diffusers: {best.name.strip()} at {best.size[0]}: "
        f"{best.ips / plain[best.size].ips:.2f}x (target >= 1.5x)"
    )


# ---- LoRA hot-swap into a compiled UNet ------------------------------------------------------------


def _lora(unet_config: dict[str, Any], rank: int, seed: int, folder: Path) -> Path:
    """A random LoRA (attention projections, like the trainer's) saved as diffusers' LoRA format."""
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    torch.manual_seed(seed)
    unet = d.UNet2DConditionModel.from_config(unet_config)
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=["to_k", "to_q", "to_v", "to_out.0"]))
    with torch.no_grad():
        for name, param in unet.named_parameters():
            if "lora_" in name:
                param.normal_(0.0, 0.01)  # B is zero at init: make the LoRA do something
    layers = d.utils.convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    d.StableDiffusionPipeline.save_lora_weights(folder, unet_lora_layers=layers, safe_serialization=True)
    return folder


def run_lora_hotswap(bench: Bench) -> str:
    try:
        import peft  # noqa: F401
    except ImportError:
        return "LoRA hot-swap: skipped (pip install peft)"
    size = (512, 512) if not bench.smoke else (64, 64)
    # Fused QKV would hide the projections a LoRA targets: the LoRA path loads without it.
    pipe = bench.load_engine(Acceleration(bench.dtype, True, False, "off"))
    config = dict(pipe.unet.config)
    a = _lora(config, 4, 1, bench.folder / "lora_a")
    b = _lora(config, 8, 2, bench.folder / "lora_b")
    pipe.enable_lora_hotswap(target_rank=8)
    pipe.load_lora_weights(a, adapter_name="shot")
    compiled = not bench.smoke
    if compiled:
        pipe.unet.compile_repeated_blocks(fullgraph=True)
    first = bench.timed(lambda: bench.call(pipe, size, 1, latent=True))
    with_a = min(bench.timed(lambda: bench.call(pipe, size, 1, latent=True)) for _ in range(bench.repeats))
    t0 = time.perf_counter()
    pipe.load_lora_weights(b, adapter_name="shot", hotswap=True)
    swap = time.perf_counter() - t0
    recompiled = "no"
    try:
        with torch._dynamo.config.patch(error_on_recompile=True):
            with_b = min(
                bench.timed(lambda: bench.call(pipe, size, 1, latent=True)) for _ in range(bench.repeats)
            )
    except Exception as exc:  # dynamo raises on a recompile when told to
        recompiled = f"YES ({type(exc).__name__})"
        with_b = bench.timed(lambda: bench.call(pipe, size, 1, latent=True))
    bench.drop(pipe)
    what = "compile_repeated_blocks" if compiled else "eager (smoke)"
    return (
        f"LoRA hot-swap at {size[0]}x{size[1]}, {what}: first call {first:.1f} s, rank-4 LoRA"
        f" {bench.steps / with_a:.2f} it/s, swap to a rank-8 LoRA {swap:.2f} s, then"
        f" {bench.steps / with_b:.2f} it/s; recompiled: {recompiled}"
    )


# ---- the 1200-frame 4K shot ------------------------------------------------------------------------


def _upscale_tile(bench: Bench, folder: Path, steps: int) -> tuple[int, float]:
    """(tile size, seconds for one tile) of the x4 upscaler, loaded as the server loads a variant folder
    (models.py: from_pretrained in the dtype, then acceleration)."""
    build_upscaler(bench.smoke).save_pretrained(folder / "x4", safe_serialization=True)
    settings = Acceleration(bench.dtype).on("cuda")
    x4 = d.StableDiffusionUpscalePipeline.from_pretrained(
        folder / "x4", local_files_only=True, dtype=settings.torch_dtype()
    )
    x4 = apply(x4.to(bench.device), replace(settings, compile="off"))
    x4.set_progress_bar_config(disable=True)
    tile = int(x4.unet.config.sample_size)
    low = torch.rand(1, 3, tile, tile)

    def one_tile() -> None:
        x4(PROMPT, image=low, num_inference_steps=steps, guidance_scale=7.5, noise_level=20, output_type="np")

    one_tile()
    return tile, min(bench.timed(one_tile) for _ in range(2))


def shot_costs(bench: Bench, folder: Path) -> list[str]:
    """Per-frame costs measured here -> the time of a 1200-frame 4K shot at keyframe steps 1 and 4."""
    steps = defaults.STEPS if not bench.smoke else bench.steps  # smoke: checks the arithmetic only
    native = 768 if not bench.smoke else 128
    out_w, out_h = SHOT_SIZE if not bench.smoke else (512, 288)
    gen = generation_size(out_w, out_h, native, native)
    pipe = bench.load_engine(Acceleration(bench.dtype))
    bench.call(pipe, gen, 1, latent=False, steps=steps)  # warm-up
    key_s = statistics.median(bench.timed(lambda: bench.call(pipe, gen, 1, False, steps)) for _ in range(2))
    bench.drop(pipe)

    tile, tile_s = _upscale_tile(bench, folder, steps)
    tiles = tile_count(gen[1], gen[0], tile, tile // 4)  # the server's tiling (engine/upscale.py)
    up_s = tiles * tile_s
    bench.reset_peak()

    # The CPU side of one output frame (the frame writer's threads): colour + EXR encode + hash, and an
    # in-between's reprojection of two keyframes.
    rng = np.random.default_rng(0)
    display = rng.random((out_h, out_w, 3), dtype=np.float32)
    cam = track(range(1, 4), out_w, out_h, step=0.05)
    views = {s.frame: View(s, out_w, out_h) for s in cam.samples}
    depth = np.full((out_h, out_w), 8.0, np.float32)
    t0 = time.perf_counter()
    rgba = encode_rgba(display, None, "linear_rec709")
    encode_frame(rgba, FrameMetadata(cam.samples[0], out_w, out_h, 1, Fraction(24)))
    write_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    flow = ShotFlow(out_w, out_h, views, lambda frame: depth, None, depth_test=True)  # as with depth passes
    inbetween(2, (1, display), (3, display), flow)
    ib_s = time.perf_counter() - t0
    writers = default_writer_threads()

    lines = [
        f"\n{SHOT_FRAMES}-frame shot at {out_w}x{out_h} ({steps} steps, server defaults, {bench.dtype}),"
        f" from per-frame costs measured in this run:",
        f"  keyframe at the generation size {gen[0]}x{gen[1]}: {key_s:.2f} s;"
        f" x4 upscale: {tiles} tiles x {tile_s:.2f} s = {up_s:.1f} s",
        f"  CPU per frame: colour + EXR encode {write_s:.2f} s, in-between reprojection {ib_s:.2f} s;"
        f" {writers} writer thread(s) run them beside the device",
    ]
    for step in (1, 4):
        plan = plan_frames(list(range(SHOT_FRAMES)), step)
        keys = sum(p.keyframe for p in plan)
        device_s = keys * (key_s + up_s)
        cpu_s = (SHOT_FRAMES * write_s + (SHOT_FRAMES - keys) * ib_s) / writers
        serial_s = device_s + SHOT_FRAMES * write_s + (SHOT_FRAMES - keys) * ib_s
        lines.append(
            f"  keyframe step {step}: {keys} keyframes; device {device_s / 60:.0f} min, CPU side"
            f" {cpu_s / 60:.0f} min beside it -> shot about {max(device_s, cpu_s) / 60:.0f} min"
            f" (everything in series, as before the writer pool: {serial_s / 60:.0f} min)"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="fp16", choices=["fp16", "bf16"])
    parser.add_argument("--steps", type=int, default=20, help="denoising steps per timed call")
    parser.add_argument("--sizes", type=int, nargs="+", default=[768, 512])
    parser.add_argument("--batch", type=int, default=4, help="keyframes per UNet call in the batching row")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile variants")
    parser.add_argument("--no-shot", action="store_true", help="skip the 4K shot costs")
    parser.add_argument("--smoke", action="store_true", help="tiny configs on the CPU")
    args = parser.parse_args()
    if args.smoke:  # fp32: CPUs have no fast half kernels, and the numbers mean nothing anyway
        args.sizes, args.steps, args.repeats, args.batch, args.dtype = [64], 2, 1, 2, "fp32"
    elif not torch.cuda.is_available():
        print(
            "no CUDA device: run this on a GPU box, or --smoke to check the script on a CPU", file=sys.stderr
        )
        return 2
    third_party.quiet()  # no progress bars, no notices known to be harmless (as in the server)
    folder = Path(tempfile.mkdtemp(prefix="genfx-gpu-bench-"))
    try:
        bench = Bench(args, folder)
        t0 = time.perf_counter()
        build_pipeline(args.smoke).save_pretrained(bench.model, safe_serialization=True)
        print(f"random-weight SD 2.x saved in {time.perf_counter() - t0:.0f} s")
        device = torch.cuda.get_device_name() if not args.smoke else "cpu (smoke: the numbers mean nothing)"
        print_recipe(run_recipe(bench, args.sizes, not args.no_compile, args.batch), device)
        print(run_lora_hotswap(bench))
        if not args.no_shot:
            print("\n".join(shot_costs(bench, folder)))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
