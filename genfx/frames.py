"""A job's frame files on the client side. The server names them (FrameInfo.file_name,
FrameDone.file_name, Job.file_pattern); clients never build a frame's name, they only check the
server's names before those become local paths and turn the pattern into what a DCC loads.
"""

from __future__ import annotations

import re
from pathlib import Path

from genfx.proto import genfx_pb2 as pb

_FRAME_RUN = re.compile(r"#+")


def local_path(out_dir: Path, file_name: str) -> Path:
    """``out_dir / file_name`` for a name from the server; ValueError for anything but a plain file name
    (a path, '..', a hidden file), so a server can never write outside ``out_dir``."""
    if not file_name or file_name.startswith(".") or "/" in file_name or "\\" in file_name:
        raise ValueError(f"the server sent an unusable frame file name {file_name!r}")
    return out_dir / file_name


def split_pattern(file_pattern: str) -> tuple[str, int, str]:
    """``"shot.####.exr"`` -> ``("shot.", 4, ".exr")``: text before the frame number, its zero padding
    (longer numbers take more digits), text after. ValueError without a '#' run."""
    match = _FRAME_RUN.search(file_pattern)
    if match is None:
        raise ValueError(f"file pattern {file_pattern!r} has no '#' frame number")
    return file_pattern[: match.start()], len(match.group()), file_pattern[match.end() :]


def written_frames(job: pb.Job) -> list[int]:
    """Frame numbers the job has on disk, ascending."""
    return [info.frame for info in job.frame_infos]
