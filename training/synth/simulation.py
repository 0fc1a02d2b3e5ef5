"""The collapse: rigid boxes (slabs, columns, debris) released in a cascade and falling under gravity.

Closed form, not integrated: every piece follows a ballistic path from its release time until it
reaches the ground, then rests; its spin stops at the same moment. So a piece's transform at any time
is exact, which is what makes the depth and motion passes exact. Deterministic for a given seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

GRAVITY = 9.81  # m/s^2, -Y
F64 = npt.NDArray[np.float64]

KIND_SLAB, KIND_COLUMN, KIND_DEBRIS = 0, 1, 2


@dataclass(frozen=True)
class Pieces:
    """N boxes, struct-of-arrays (every field's first axis is the piece)."""

    half: F64  # (N, 3) half extents in the box's own frame
    rest_pos: F64  # (N, 3) centre before release
    velocity: F64  # (N, 3) at release
    spin_axis: F64  # (N, 3) unit
    spin_rate: F64  # (N,) rad/s
    release: F64  # (N,) seconds
    albedo: F64  # (N, 3) linear
    kind: npt.NDArray[np.int64]  # (N,)

    @property
    def count(self) -> int:
        return int(self.half.shape[0])


@dataclass(frozen=True)
class Building:
    floors: int = 4
    storey: float = 3.2
    width: float = 12.0  # along X and Z
    slab_thickness: float = 0.35
    column_size: float = 0.5
    columns_per_side: int = 3
    debris: int = 40


def _rotation(axis: F64, angle: F64) -> F64:
    """(N, 3, 3) rotations about unit ``axis`` (N, 3) by ``angle`` (N,) (Rodrigues)."""
    x, y, z = axis[:, 0], axis[:, 1], axis[:, 2]
    c, s = np.cos(angle), np.sin(angle)
    t = 1.0 - c
    return np.stack(
        [
            np.stack([t * x * x + c, t * x * y - s * z, t * x * z + s * y], -1),
            np.stack([t * x * y + s * z, t * y * y + c, t * y * z - s * x], -1),
            np.stack([t * x * z - s * y, t * y * z + s * x, t * z * z + c], -1),
        ],
        axis=-2,
    )


def build_collapse(building: Building, seed: int, start: float) -> Pieces:
    """The building's pieces with release times cascading down from the top floor after ``start`` s."""
    rng = np.random.default_rng(seed)
    half, pos, kind = [], [], []
    w, n = building.width, building.columns_per_side
    for floor in range(building.floors):
        base = floor * building.storey
        # Each slab breaks into 2x2 panels, so the floor comes apart as it falls.
        for ix in (-1, 1):
            for iz in (-1, 1):
                half.append((w / 4, building.slab_thickness / 2, w / 4))
                pos.append((ix * w / 4, base + building.storey, iz * w / 4))
                kind.append(KIND_SLAB)
        for ix in np.linspace(-w / 2 + 0.5, w / 2 - 0.5, n):
            for iz in np.linspace(-w / 2 + 0.5, w / 2 - 0.5, n):
                c = building.column_size / 2
                half.append((c, building.storey / 2 - building.slab_thickness / 2, c))
                pos.append((ix, base + building.storey / 2, iz))
                kind.append(KIND_COLUMN)
    top = building.floors * building.storey
    for _ in range(building.debris):
        half.append(tuple(rng.uniform(0.15, 0.45, 3)))
        pos.append((rng.uniform(-w / 2, w / 2), rng.uniform(0.5, top), rng.uniform(-w / 2, w / 2)))
        kind.append(KIND_DEBRIS)
    half_a, pos_a, kind_a = np.array(half), np.array(pos), np.array(kind, dtype=np.int64)
    count = len(kind)
    # Cascade: higher pieces go first (0.12 s per metre of height from the top), with jitter.
    release = start + (top - pos_a[:, 1]) * 0.04 + rng.uniform(0.0, 0.25, count)
    outward = np.column_stack([pos_a[:, 0], np.zeros(count), pos_a[:, 2]])
    outward /= np.maximum(np.linalg.norm(outward, axis=1, keepdims=True), 1e-6)
    speed = np.where(kind_a == KIND_DEBRIS, rng.uniform(2.0, 6.0, count), rng.uniform(0.0, 1.2, count))
    velocity = outward * speed[:, None] + np.column_stack(
        [
            rng.normal(0, 0.3, count),
            rng.uniform(-0.5, 2.5, count) * (kind_a == KIND_DEBRIS),
            rng.normal(0, 0.3, count),
        ]
    )
    axis = rng.normal(size=(count, 3))
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    spin = np.where(kind_a == KIND_DEBRIS, rng.uniform(2.0, 8.0, count), rng.uniform(0.2, 1.5, count))
    grey = rng.uniform(0.25, 0.45, count)
    tint = np.array([1.0, 0.97, 0.92])
    albedo = grey[:, None] * tint * np.where(kind_a == KIND_COLUMN, 0.8, 1.0)[:, None]
    return Pieces(half_a, pos_a, velocity, axis, spin, release, albedo, kind_a)


def landing_time(pieces: Pieces) -> F64:
    """Seconds after release when each piece's centre reaches its clearance above the ground."""
    clearance = pieces.half.min(axis=1)
    drop = pieces.rest_pos[:, 1] - clearance
    vy = pieces.velocity[:, 1]
    result: F64 = (vy + np.sqrt(vy * vy + 2.0 * GRAVITY * np.maximum(drop, 0.0))) / GRAVITY
    return result


def transforms_at(pieces: Pieces, time: float) -> tuple[F64, F64]:
    """(rotations (N, 3, 3), centres (N, 3)) of every piece at ``time`` seconds."""
    tau = np.clip(time - pieces.release, 0.0, None)
    tau = np.minimum(tau, landing_time(pieces))  # resting pieces keep their landing pose
    centre = pieces.rest_pos + pieces.velocity * tau[:, None]
    centre[:, 1] -= 0.5 * GRAVITY * tau * tau
    return _rotation(pieces.spin_axis, pieces.spin_rate * tau), centre


def moving(pieces: Pieces, time: float) -> npt.NDArray[np.bool_]:
    """Pieces released by ``time`` (falling or fallen: the debris the mask covers)."""
    return np.asarray(time > pieces.release)
