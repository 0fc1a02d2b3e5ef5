"""How a render source lays out its passes on disk: one file per pass and frame (pure).

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

The channel names, the spellings readers accept and the motion-vector sign (``next_frame_pixel``) are
shared with the server and live in ``genfx/passes.py``.
"""

from __future__ import annotations

PASS_NAMES = ("beauty", "depth", "motion", "mask")
BEAUTY_CHANNELS = ("R", "G", "B", "A")
# Mask spellings the ETL accepts (first match wins).
MASK_READ_ALIASES = ("A", "mask", "mask.A", "mask.a", "R", "Y")


def frame_file(pass_name: str, frame: int) -> str:
    """The file name of one pass of one frame in a render source folder."""
    return f"{pass_name}.{frame:04d}.exr"
