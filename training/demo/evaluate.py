"""The demo model against the procedural ground truth on held-out shots (bench, CI test, model card).

Held-out shots come from ``genfx-train synth`` with ``HELD_OUT_SEED`` (training uses seed 0; each shot's
building, collapse and camera are drawn from (seed, shot index), so none of these was seen). Each frame's
conditioning is built as the ETL and the server build it (genfx.sim_condition, depth range over the
shot) and generated through the server's own sim-mode code (inference_server.engine.sim.render on a
ControlNet pipeline loaded by the server's ModelRegistry). The score is SSIM on luma (Rec.709 weights on
display sRGB) at the model's native size against the rendered beauty in the same display space.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from genfx.passes import shot_depth_range
from genfx.sim_condition import sim_condition
from training.demo.recipe import NATIVE_SIZE
from training.etl.captions import caption, view_words
from training.etl.decode import read_beauty, read_depth, read_mask, read_motion
from training.synth.generate import CAPTION, FRAME_START, SynthSettings, synthesize

F32 = npt.NDArray[np.float32]
HELD_OUT_SEED = 1
STEPS = 8  # DDIM steps of the demo (its default)
GUIDANCE = 1.0  # no classifier-free guidance: the model never saw an empty prompt; the passes steer it
LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


@dataclass(frozen=True)
class HeldOutFrame:
    shot: str
    frame: int
    truth: F32  # (H, W, 3) display sRGB
    control: F32  # (H, W, 4) sim conditioning
    prompt: str


def held_out_frames(folder: Path, shots: int, frames: int, size: int = NATIVE_SIZE) -> list[HeldOutFrame]:
    settings = SynthSettings(shots=shots, frames=frames, width=size, height=size, seed=HELD_OUT_SEED)
    out = []
    for shot_dir in synthesize(folder, settings):
        numbers = range(FRAME_START, FRAME_START + frames)
        depths = {f: read_depth(shot_dir / f"depth.{f}.exr") for f in numbers}
        near_far = shot_depth_range(depths.values())
        for f in numbers:
            mask = read_mask(shot_dir / f"mask.{f}.exr")
            control = sim_condition(
                depths[f], read_motion(shot_dir / f"motion.{f}.exr"), mask, near_far=near_far
            )
            view = view_words(shot_dir / "camera.json", f)
            prompt = caption(
                CAPTION, description="", kind="render", view=view, dust_fraction=float(mask.mean())
            )
            out.append(
                HeldOutFrame(shot_dir.name, f, read_beauty(shot_dir / f"beauty.{f}.exr"), control, prompt)
            )
    return out


def _gaussian_blur(a: F32, sigma: float = 1.5, radius: int = 5) -> F32:
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-(x**2) / (2 * sigma**2))
    k /= k.sum()
    padded = np.pad(a.astype(np.float64), radius, mode="reflect")
    rows = np.apply_along_axis(lambda r: np.convolve(r, k, mode="valid"), 1, padded)
    return np.apply_along_axis(lambda c: np.convolve(c, k, mode="valid"), 0, rows).astype(np.float32)


def luma(rgb: F32) -> F32:
    return np.asarray(np.clip(rgb, 0.0, 1.0) @ LUMA, dtype=np.float32)


def ssim(a: F32, b: F32) -> float:
    """Mean SSIM (Wang et al. 2004: Gaussian window sigma 1.5, K1 0.01, K2 0.03) of two [0, 1] images."""
    c1, c2 = 0.01**2, 0.03**2
    mu_a, mu_b = _gaussian_blur(a), _gaussian_blur(b)
    var_a = _gaussian_blur(a * a) - mu_a**2
    var_b = _gaussian_blur(b * b) - mu_b**2
    cov = _gaussian_blur(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return float(np.mean(num / den))


def ssim_luma(generated: F32, truth: F32) -> float:
    return ssim(luma(generated), luma(truth))


def _keyframe(h: HeldOutFrame, seed: int, control: bool, mask: bool = True) -> Any:
    from inference_server.engine.mode import Keyframe

    condition = h.control.copy()
    if not mask:
        condition[..., 3] = 0.0  # what the server builds without a mask pass
    grey = np.full(h.truth.shape, 0.5, np.float32)
    return Keyframe(
        base=grey,
        init=grey,
        strength=1.0,
        carried=False,
        mask=None,
        depth=None,
        control=condition if control else None,
        control_scale=1.0,
        prompt=h.prompt,
        negative_prompt="",
        seed=seed,
        steps=STEPS,
        guidance=GUIDANCE,
    )


Generator = Callable[[HeldOutFrame, int], F32]


def sim_generator(pipeline: Any, mask: bool = True) -> Generator:
    """Frames from a ControlNet pipeline through the server's sim mode (``mask=False``: as without a
    mask pass, the conditioning's debris channel 0)."""
    from inference_server.engine import sim

    return lambda h, seed: sim.render(pipeline, _keyframe(h, seed, control=True, mask=mask))


def text_generator(pipeline: Any) -> Generator:
    """Frames from the prompt alone (the server's txt2img mode): no passes."""
    from inference_server.engine import txt2img

    return lambda h, seed: txt2img.render(pipeline, _keyframe(h, seed, control=False))


def load_demo(model_dir: Path) -> tuple[Any, Any]:
    """(sim ControlNet pipeline, txt2img pipeline) of an assembled model, loaded as the server loads it."""
    from inference_server.models import ModelRegistry, load_model_config

    config = load_model_config(Path(model_dir) / "models.json")
    registry = ModelRegistry(
        config.models, Path(tempfile.gettempdir()), include_tiny=False, sim_controlnets=config.sim_controlnets
    )
    (name,) = config.models
    return registry.load(name, "cpu", "sim"), registry.load(name, "cpu", "txt2img")


def load_untrained(folder: Path) -> Any:
    """The demo architecture at its seeded initial weights (what ``make model`` starts from), with a
    ControlNet made from its UNet as ``fit --train unet,controlnet`` makes it: the random-weight baseline."""
    import diffusers
    import torch

    from training.demo.recipe import VAE_CHANNELS, build_demo_base
    from training.train.base_model import CONTROLNET_EMBEDDING, unzero_controlnet

    d: Any = diffusers
    base = build_demo_base(Path(folder) / "untrained")
    pipe = d.StableDiffusionPipeline.from_pretrained(base, local_files_only=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        cn = d.ControlNetModel.from_unet(
            pipe.unet,
            conditioning_channels=4,
            conditioning_embedding_out_channels=CONTROLNET_EMBEDDING[: len(VAE_CHANNELS)],
        )
        unzero_controlnet(cn)
    out = d.StableDiffusionControlNetPipeline.from_pipe(pipe, controlnet=cn)
    out.set_progress_bar_config(disable=True)
    return out


def vae_roundtrip(pipeline: Any) -> Generator:
    """The ground truth through the model's VAE and back: the best any generation can score."""
    import torch

    def run(h: HeldOutFrame, seed: int) -> F32:
        with torch.no_grad():
            x = torch.from_numpy(h.truth).permute(2, 0, 1)[None] * 2 - 1
            y = pipeline.vae.decode(pipeline.vae.encode(x).latent_dist.mean).sample[0]
        return np.asarray(((y.clamp(-1, 1) + 1) / 2).permute(1, 2, 0).numpy(), dtype=np.float32)

    return run


def score(generate: Generator, frames: list[HeldOutFrame], seed: int = 0) -> tuple[float, list[F32]]:
    """(mean SSIM on luma over ``frames``, the generated images)."""
    images = [generate(h, seed + i) for i, h in enumerate(frames)]
    return float(np.mean([ssim_luma(im, h.truth) for im, h in zip(images, frames, strict=True)])), images
