"""How the server names a job's frame files: the one place that does (clients read the names from Job
and FrameDone)."""

from __future__ import annotations

PADDING = 4


def frame_file_name(name: str, frame: int) -> str:
    """``<name>.<frame, zero-padded to 4 digits>.exr``, e.g. ``genfx.1001.exr``."""
    return f"{name}.{frame:0{PADDING}d}.exr"


def file_pattern(name: str) -> str:
    """The same name with the frame as a '#' run (``genfx.####.exr``), for sequence loaders."""
    return f"{name}.{'#' * PADDING}.exr"
