"""The ControlNet conditioning layout: channel order, normalisation, resolution; importable without torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from training.sim_condition import CONDITION_CHANNELS, sim_condition, to_chw


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
    cond = sim_condition(depth, motion, mask)
    assert CONDITION_CHANNELS == ("inverse_depth", "motion_x", "motion_y", "mask")
    assert cond.shape == (h, w, 4) and cond.dtype == np.float32
    assert cond[5, 5, 0] == 1.0 and cond[5, 60, 0] == 0.0 and cond[0, 0, 0] == 0.0  # near=1, far=0, sky=0
    np.testing.assert_allclose(cond[..., 1], 0.75)  # 0.5 + 0.5 * (4/80)/0.1
    np.testing.assert_allclose(cond[..., 2], 0.0)  # clipped at -0.1 of the height
    assert cond[15, 15, 3] == 1.0 and cond[30, 30, 3] == 0.0
    small = sim_condition(depth, motion, mask, size=(20, 10))
    assert small.shape == (10, 20, 4)
    np.testing.assert_allclose(small[..., 1], 0.75, atol=1e-6)  # motion is resolution independent
    assert to_chw(small).shape == (4, 10, 20)


def test_importable_without_torch() -> None:
    code = "import sys, training.sim_condition, training.passes; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
