"""The ControlNet conditioning layout: channel order, normalisation with the SHOT's depth range,
resolution; importable without torch (the server and the trainer share it)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from genfx.passes import shot_depth_range
from genfx.sim_condition import CONDITION_CHANNELS, sim_condition, to_chw


def test_channels_ranges_and_signs() -> None:
    h, w = 40, 80
    depth = np.full((h, w), 10.0, np.float32)
    depth[:, :40] = 5.0  # nearer on the left
    depth[0, 0] = np.inf  # sky
    motion = np.zeros((h, w, 2), np.float32)
    motion[..., 0] = 4.0  # 5% of the width to the right per frame
    motion[..., 1] = -100.0  # far down (clipped)
    mask = np.zeros((h, w), np.float32)
    mask[10:20, 10:20] = 1.0
    cond = sim_condition(depth, motion, mask, near_far=shot_depth_range([depth]))
    assert CONDITION_CHANNELS == ("inverse_depth", "motion_x", "motion_y", "mask")
    assert cond.shape == (h, w, 4) and cond.dtype == np.float32
    assert cond[5, 5, 0] == 1.0 and cond[5, 60, 0] == 0.0 and cond[0, 0, 0] == 0.0  # near=1, far=0, sky=0
    np.testing.assert_allclose(cond[..., 1], 0.75)  # 0.5 + 0.5 * (4/80)/0.1
    np.testing.assert_allclose(cond[..., 2], 0.0)  # clipped at -0.1 of the height
    assert cond[15, 15, 3] == 1.0 and cond[30, 30, 3] == 0.0
    small = sim_condition(depth, motion, mask, near_far=(5.0, 10.0), size=(20, 10))
    assert small.shape == (10, 20, 4)
    np.testing.assert_allclose(small[..., 1], 0.75, atol=1e-6)  # motion is resolution independent
    assert to_chw(small).shape == (4, 10, 20)


def test_depth_is_normalised_over_the_shot_not_the_frame() -> None:
    """A wall at 10 units means the same in every frame of a shot, whatever else each frame sees."""
    still = np.zeros((8, 8, 2), np.float32)
    mask = np.zeros((8, 8), np.float32)
    first = np.full((8, 8), 10.0, np.float32)
    first[:, :4] = 5.0  # a near piece only in the first frame
    second = np.full((8, 8), 10.0, np.float32)
    second[:, :4] = 20.0  # farther rubble only in the second
    shot = shot_depth_range([first, second])
    assert shot == (5.0, 20.0)
    a = sim_condition(first, still, mask, near_far=shot)[..., 0]
    b = sim_condition(second, still, mask, near_far=shot)[..., 0]
    assert a[0, 6] == pytest.approx(b[0, 6]) == pytest.approx((1 / 10 - 1 / 20) / (1 / 5 - 1 / 20))
    assert a[0, 0] == 1.0 and b[0, 0] == 0.0
    sky = np.full((8, 8), np.inf, np.float32)
    assert shot_depth_range([sky]) is None
    assert sim_condition(sky, still, mask, near_far=None)[..., 0].max() == 0.0


def test_importable_without_torch() -> None:
    code = "import sys, genfx.sim_condition, genfx.passes, training.passes; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
