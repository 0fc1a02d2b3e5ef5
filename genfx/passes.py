"""Simulation pass conventions shared by the server, the trainer and the DCC clients (numpy only).

One place for: the EXR channel names a depth or motion-vector pass may use, the motion-vector sign
(``next_frame_pixel``), and the shot-wide depth range. The server's pass readers, the trainer's ETL and
the procedural renders all use these, so a pass means the same thing everywhere (docs/shot_aware.md).

Depth: camera-space Z in scene units (along the view axis, not ray length); <= 0 or non-finite = no
surface (sky).

Motion vectors: screen-space motion of the surface seen at each pixel, from this frame TO THE NEXT one,
in pixels of the pass's own resolution; +X right, +Y UP (Houdini's NDC orientation, origin bottom-left),
while image rows go down. X is in the first component (R), Y in the second (G); a third (B) is ignored.
Renderers name the layer differently; the readers accept (first match wins):

- ``motionvector.{R,G}``: what GenFX's procedural renders write; the name of Arnold's built-in
  "motionvector" AOV (Arnold for Houdini docs: "select the motionvector AOV ... the vector is contained
  in the R and G channels");
- ``motion_vector.{R,G}``: the layer SideFX's "MotionVector Example for Mantra" writes (getblurP page);
- the same layers with ``r/g``, ``x/y`` or ``X/Y`` components, ``motion.{x,y}``, ``mv.{x,y}``, ``vel.{x,y}``
  spellings of the same two channels;
- a file with plain ``R G [B]`` channels and no other layer: a motion pass written as its own image.

Karma (Solaris) writes whatever name the render var is given; name it ``motionvector`` (2D, pixels).
A pass in NDC units, or with +Y down, must be converted before upload (multiply by the width/height,
negate Y).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]

# Channel names GenFX writes (the procedural renders; what the Houdini node asks Karma/Mantra for).
DEPTH_CHANNEL = "Z"
MOTION_LAYER = "motionvector"
MOTION_CHANNELS = (f"{MOTION_LAYER}.R", f"{MOTION_LAYER}.G", f"{MOTION_LAYER}.B")
MASK_CHANNEL = "A"

# Channel names readers accept, in order of preference.
DEPTH_CHANNELS = ("Z", "depth.Z", "depth.z", "depth", "Pz", "P.z")
_MOTION_LAYERS = ("motionvector", "motion_vector", "motionvectors", "motion", "mv", "vel")
_MOTION_COMPONENTS = (("R", "G"), ("r", "g"), ("x", "y"), ("X", "Y"))
MOTION_CHANNEL_PAIRS: tuple[tuple[str, str], ...] = tuple(
    (f"{layer}.{x}", f"{layer}.{y}") for layer in _MOTION_LAYERS for x, y in _MOTION_COMPONENTS
)


def depth_channel(names: Sequence[str]) -> int | None:
    """Index of the depth channel among ``names`` (DEPTH_CHANNELS, first match), or None."""
    return next((names.index(c) for c in DEPTH_CHANNELS if c in names), None)


def motion_channels(names: Sequence[str]) -> tuple[int, int] | None:
    """Indices of the (x, y) motion channels among ``names``, or None when the file has none.

    A named layer (MOTION_CHANNEL_PAIRS) wins; a file whose only channels are R, G (and B, A) is a
    motion pass written as its own image.
    """
    for x, y in MOTION_CHANNEL_PAIRS:
        if x in names and y in names:
            return names.index(x), names.index(y)
    if "R" in names and "G" in names and set(names) <= {"R", "G", "B", "A"}:
        return names.index("R"), names.index("G")
    return None


def describe_motion_channels() -> str:
    """For error messages: the spellings motion_channels accepts."""
    return f"{', '.join(f'{x}/{y}' for x, y in MOTION_CHANNEL_PAIRS[:2])}, ... (see genfx/passes.py)"


def next_frame_pixel(u: npt.ArrayLike, v: npt.ArrayLike, motion: npt.ArrayLike) -> tuple[F32, F32]:
    """Where continuous pixel (u, v) of frame f (origin top-left, v down) is in frame f+1, given its
    motion vector (..., 2) [+X right, +Y up]. The one place that applies the sign: rows go down, the
    vector's Y goes up."""
    mv = np.asarray(motion, dtype=np.float32)
    return (
        np.asarray(u, dtype=np.float32) + mv[..., 0],
        np.asarray(v, dtype=np.float32) - mv[..., 1],
    )


def pixel_step(motion: npt.ArrayLike) -> F32:
    """A motion vector (..., 2) as a displacement in image coordinates (x right, y down) — the sign
    rule of next_frame_pixel, for code that moves whole position fields."""
    u, v = next_frame_pixel(0.0, 0.0, motion)
    return np.stack([u, v], axis=-1)


def shot_depth_range(depths: Iterable[npt.ArrayLike]) -> tuple[float, float] | None:
    """(near, far): the nearest and farthest surface (finite depth > 0) over every frame of a shot, or
    None when no frame sees any surface. A flat shot (near == far) gets far = near * 1.001.

    The one rule for normalising depth over a shot, so conditioning does not flicker when a frame's own
    depth range changes: depth2img and the sim ControlNet at the server, and the trainer's ETL.
    """
    near, far = np.inf, 0.0
    for depth in depths:
        z = np.asarray(depth, dtype=np.float32)
        valid = z[np.isfinite(z) & (z > 0)]
        if valid.size:
            near, far = min(near, float(valid.min())), max(far, float(valid.max()))
    if not np.isfinite(near):
        return None
    return near, far if far > near else near * 1.001
