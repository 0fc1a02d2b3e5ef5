"""How render passes are laid out on disk: file names, EXR channel names, the motion-vector sign (pure).

One frame of a render source is up to four EXR files, ``<pass>.<frame:04d>.exr`` in the source folder
(or any ``<name>.<frame>.<ext>`` sequence for plates and scans, which carry a beauty only):

| pass   | channels                                         | type   | meaning                              |
|--------|--------------------------------------------------|--------|--------------------------------------|
| beauty | R G B A                                          | half   | scene-linear Rec.709, premultiplied  |
| depth  | Z                                                | float  | camera-space Z of the surface, > 0;  |
|        |                                                  |        | +inf where no surface (sky)          |
| motion | motionvector.R motionvector.G motionvector.B     | float  | screen-space motion to the NEXT      |
|        |                                                  |        | frame in pixels, +X right, +Y UP; B=0|
| mask   | A                                                | half   | debris/dust coverage in [0, 1]       |

The motion layer is named after the renderers' "motionvector" AOV and stores x, y in R, G as they do;
+Y is up as in Houdini's NDC (origin bottom-left), while EXR pixel rows go down. So a point at
continuous pixel (u, v) (origin top-left, v down) in frame f is at ``next_frame_pixel(u, v, mv)`` in
frame f+1.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

PASS_NAMES = ("beauty", "depth", "motion", "mask")
BEAUTY_CHANNELS = ("R", "G", "B", "A")
DEPTH_CHANNEL = "Z"
MOTION_LAYER = "motionvector"
MOTION_CHANNELS = (f"{MOTION_LAYER}.R", f"{MOTION_LAYER}.G", f"{MOTION_LAYER}.B")
MASK_CHANNEL = "A"

# Readers accept the spellings other tools write for the same data (first match wins).
DEPTH_READ_ALIASES = ("Z", "depth.Z", "depth.z", "depth", "Pz", "P.z")
MOTION_READ_ALIASES = (
    ("motionvector.R", "motionvector.G"),
    ("motionvector.r", "motionvector.g"),
    ("motionvector.x", "motionvector.y"),
    ("motionvector.X", "motionvector.Y"),
    ("motion.x", "motion.y"),
)
MASK_READ_ALIASES = ("A", "mask", "mask.A", "mask.a", "R", "Y")

F32 = npt.NDArray[np.float32]


def next_frame_pixel(u: npt.ArrayLike, v: npt.ArrayLike, motion: npt.ArrayLike) -> tuple[F32, F32]:
    """Where pixel (u, v) of frame f lands in frame f+1 given its motion vector (..., 2) [+X right, +Y up].

    The one place that applies the sign convention: rows go down, the vector's Y goes up.
    """
    mv = np.asarray(motion, dtype=np.float32)
    return (
        np.asarray(u, dtype=np.float32) + mv[..., 0],
        np.asarray(v, dtype=np.float32) - mv[..., 1],
    )


def frame_file(pass_name: str, frame: int) -> str:
    """The file name of one pass of one frame in a render source folder."""
    return f"{pass_name}.{frame:04d}.exr"
