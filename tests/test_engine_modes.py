"""Every mode for real on the tiny model's variants, in process: img2img, inpaint, depth, 4K upscale."""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inference_server.engine import depth2img
from inference_server.engine.passes import PassError
from inference_server.engine.reproject import View
from inference_server.engine.shot_renderer import ShotRenderer, ShotSpec
from inference_server.models import ModelRegistry

from .synthetic import render, track, write_depth_exr, write_png

FRAMES = range(1001, 1003)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> ModelRegistry:
    return ModelRegistry({}, tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def passes(tmp_path_factory: pytest.TempPathFactory) -> dict[int, dict[str, Path]]:
    root = tmp_path_factory.mktemp("passes")
    out: dict[int, dict[str, Path]] = {}
    for i, sample in enumerate(track(FRAMES, 64, 64).samples):
        colour, depth = render(sample, 64, 64)
        mask = np.zeros((64, 64), np.float32)
        mask[:, 32:] = 1.0
        out[sample.frame] = {
            "plate": write_png(root / f"plate.{i}.png", colour),
            "mask": write_png(root / f"mask.{i}.png", mask),
            # The second frame is twice as far: a per-frame min-max would hide that.
            "depth": write_depth_exr(root / f"depth.{i}.exr", depth * (1 + i)),
        }
    return out


def spec(
    passes: dict[int, dict[str, Path]], kinds: tuple[str, ...], mode: str, size: tuple[int, int] = (64, 64)
) -> ShotSpec:
    t = track(FRAMES, *size)
    return ShotSpec(
        prompt="concrete dust",
        negative_prompt="",
        steps=2,
        guidance=7.5,
        strength=0.6,
        width=size[0],
        height=size[1],
        native_width=64,
        native_height=64,
        mode=mode,
        views={s.frame: View(s, t.width, t.height) for s in t.samples},
        passes={f: {k: p[k] for k in kinds} for f, p in passes.items()},
    )


def renderer(registry: ModelRegistry, s: ShotSpec) -> ShotRenderer:
    info = registry.info("tiny")
    return ShotRenderer(s, lambda mode: registry.load("tiny", "cpu", mode), info.capabilities)


def test_tiny_has_every_mode_and_a_plain_copy_does_not(registry: ModelRegistry, tmp_path: Path) -> None:
    info = registry.info("tiny")
    assert info.capabilities == ("txt2img", "img2img", "inpaint", "depth", "temporal", "upscale_x4")
    plain = shutil.copytree(
        info.path, tmp_path / "plain", ignore=shutil.ignore_patterns("genfx.json", "variants")
    )
    caps = ModelRegistry({"plain": plain}, tmp_path / "cache", include_tiny=False).info("plain").capabilities
    assert caps == ("txt2img", "img2img", "inpaint", "temporal")


def test_img2img_over_the_plate_is_seeded_and_follows_strength(registry: ModelRegistry, passes: Any) -> None:
    base = replace(spec(passes, ("plate",), "img2img"), steps=4)
    r = renderer(registry, base)
    a, coverage = r.keyframe(1001, 5, None)
    b, _ = r.keyframe(1001, 5, None)
    assert a.shape == (64, 64, 3) and coverage is None
    np.testing.assert_array_equal(a, b)
    # 4 steps: strength 0.6 runs the last 2 timesteps, 0.3 only the last one.
    weaker = renderer(registry, replace(base, strength=0.3)).keyframe(1001, 5, None)[0]
    assert not np.array_equal(weaker, a)


def test_inpaint_keeps_the_plate_outside_the_mask_and_alpha_is_the_mask(
    registry: ModelRegistry, passes: Any
) -> None:
    r = renderer(registry, spec(passes, ("plate", "mask"), "inpaint"))
    out, _ = r.keyframe(1001, 5, None)
    plate = r.pass_at(1001, "plate", 64, 64)
    assert plate is not None
    np.testing.assert_allclose(out[:, :30], plate[:, :30], atol=1e-6)  # Lanczos rings 2 px at the edge
    assert np.abs(out[:, 34:] - plate[:, 34:]).mean() > 0.05  # generated inside
    alpha = r.alpha(1001)
    assert alpha is not None and alpha[:, :30].max() == 0 and alpha[:, 34:].min() == 1


def test_depth_mode_feeds_shot_normalised_depth_to_the_unet(
    registry: ModelRegistry, passes: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = renderer(registry, spec(passes, ("depth",), "depth"))
    seen: list[np.ndarray] = []
    pipeline_class = depth2img._shot_depth_pipeline()
    original = pipeline_class.prepare_depth_map

    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        out = original(self, *args, **kwargs)
        seen.append(out[0, 0].float().numpy())
        return out

    monkeypatch.setattr(pipeline_class, "prepare_depth_map", spy)
    for frame in FRAMES:
        image, _ = r.keyframe(frame, 5, None)
        assert image.shape == (64, 64, 3)
    near, far = r.depth_range or (0, 0)
    assert near == pytest.approx(4.0) and far == pytest.approx(16.0)
    # Frame 2 is twice as far: under shot normalisation it is darker (inverse depth), not re-stretched.
    assert seen[0].max() == pytest.approx(1.0, abs=0.02) and seen[1].max() < 0.0
    assert seen[0].min() > seen[1].min()


def test_missing_pass_names_frame_and_pass(registry: ModelRegistry, passes: Any, tmp_path: Path) -> None:
    broken = {f: {**p, "plate": tmp_path / "gone.png"} for f, p in passes.items()}
    r = renderer(registry, spec(broken, ("plate",), "img2img"))
    with pytest.raises(PassError, match=r"frame 1001, plate pass"):
        r.keyframe(1001, 5, None)


def test_4k_frame_through_the_tiled_x4_upscaler(registry: ModelRegistry, passes: Any) -> None:
    r = renderer(registry, spec(passes, (), "txt2img", size=(4096, 2160)))
    assert r.upscale_x4 and r.gen_size == (64, 32)
    started = time.perf_counter()
    out, _ = r.keyframe(1001, 5, None)
    assert out.shape == (2160, 4096, 3) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert time.perf_counter() - started < 60


def _join_prefetch(frame: int) -> None:
    for thread in threading.enumerate():
        if thread.name == f"genfx-prefetch-{frame}":
            thread.join(30)


def test_prefetched_passes_are_not_read_again_by_the_keyframe(registry: ModelRegistry, passes: Any) -> None:
    r = renderer(registry, spec(passes, ("plate", "mask", "depth"), "depth"))
    r.prefetch(1002)
    _join_prefetch(1002)
    read = r._passes.loads
    assert read >= 6  # plate, mask and depth, each as read and at generation size
    r.keyframe(1002, 5, None)
    assert r._passes.loads == read


def test_a_prefetch_that_fails_leaves_the_error_to_the_keyframe(
    registry: ModelRegistry, passes: Any, tmp_path: Path
) -> None:
    broken = {f: {**p, "plate": tmp_path / "gone.png"} for f, p in passes.items()}
    r = renderer(registry, spec(broken, ("plate",), "img2img"))
    r.prefetch(1001)
    _join_prefetch(1001)
    with pytest.raises(PassError, match=r"frame 1001, plate pass"):
        r.keyframe(1001, 5, None)
