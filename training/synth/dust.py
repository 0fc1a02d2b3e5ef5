"""The dust volume: Gaussian puffs that rise where pieces hit the ground, integrated in closed form.

Each puff is an isotropic Gaussian density; its integral along a ray segment has a closed form (erf),
so opacity needs no ray marching. Dust goes into the beauty and the mask only: depth and motion are
those of surfaces, as a renderer writes them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from training.synth.simulation import KIND_DEBRIS, Pieces, landing_time, transforms_at

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Puffs:
    centre: F64  # (P, 3)
    sigma: F64  # (P,)
    density: F64  # (P,) peak extinction per metre


def _erf(x: F64) -> F64:
    # Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): numpy has no erf and scipy is not a dependency.
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return np.asarray(sign * (1.0 - poly * np.exp(-a * a)))


def puffs_at(pieces: Pieces, time: float) -> Puffs:
    """One puff per landed slab/column, growing and thinning with the time since it landed."""
    landed_at = pieces.release + landing_time(pieces)
    age = time - landed_at
    keep = (age > 0) & (pieces.kind != KIND_DEBRIS)
    _, centre = transforms_at(pieces, time)
    size = pieces.half.max(axis=1)
    sigma = 0.6 * size[keep] + 1.5 * age[keep]
    centre = centre[keep] + np.column_stack([np.zeros(keep.sum()), 0.8 * age[keep], np.zeros(keep.sum())])
    density = 0.5 * (0.6 * size[keep] / sigma) ** 2
    return Puffs(centre, sigma, density)


def optical_depth(puffs: Puffs, origin: F64, direction: F64, t_max: F64) -> F64:
    """Integral of extinction along origin + t * direction, t in [0, t_max] (per ray; inf = no surface)."""
    tau = np.zeros(direction.shape[0])
    length = np.linalg.norm(direction, axis=1)
    unit = direction / length[:, None]
    s_max = np.where(np.isfinite(t_max), t_max * length, 1e6)
    for centre, sigma, density in zip(puffs.centre, puffs.sigma, puffs.density, strict=True):
        to_c = centre - origin
        s0 = unit @ to_c  # closest approach along the ray
        miss2 = np.maximum(to_c @ to_c - s0 * s0, 0.0)
        k = 1.0 / (sigma * np.sqrt(2.0))
        span = _erf((s_max - s0) * k) - _erf(-s0 * k)
        tau += density * np.exp(-miss2 / (2 * sigma * sigma)) * sigma * np.sqrt(np.pi / 2) * span
    return tau
