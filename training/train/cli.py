"""``genfx-train fit`` entry: options -> FitConfig -> the loop (also what ``accelerate launch`` runs)."""

from __future__ import annotations

import argparse

from training.train.options import config_from_args


def run_fit(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    from training.train.loop import fit

    return fit(cfg)
