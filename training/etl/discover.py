"""Find the frame sequences of a source folder and group each frame's passes (driver side, no decoding).

A sequence is ``<name>.<digits>.<ext>`` (EXR, DPX, PNG, TIFF). In each folder (the source and any
sub-folder, one shot per folder) the sequences named after passes.PASS_NAMES are one render: the
beauty plus whichever of depth/motion/mask exist, aligned by frame number. Any other sequence (a plate,
a scan) is a beauty-only sequence. A gap in a sequence, or a pass frame without its beauty (or the
reverse), refuses the source with a SourceError naming the file.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from training.passes import PASS_NAMES
from training.source_record import SourceError

EXTENSIONS = (".exr", ".dpx", ".png", ".tif", ".tiff")
_SEQUENCE = re.compile(r"^(?P<name>.+)\.(?P<frame>\d+)(?P<ext>\.[A-Za-z]+)$")


@dataclass(frozen=True)
class FrameFiles:
    """One training sample's input files: the beauty and its passes (relative to the source folder)."""

    shot: str  # folder relative to the source ("." for the source itself)
    sequence: str
    frame: int
    beauty: str
    passes: dict[str, str] = field(default_factory=dict)  # depth / motion / mask -> file
    camera: str = ""  # camera.json next to the frames, if any


def _sequences(folder: Path) -> dict[tuple[str, str], dict[int, Path]]:
    found: dict[tuple[str, str], dict[int, Path]] = defaultdict(dict)
    for path in sorted(folder.iterdir()):
        m = _SEQUENCE.match(path.name)
        if not path.is_file() or not m or m["ext"].lower() not in EXTENSIONS:
            continue
        found[(m["name"], m["ext"])][int(m["frame"])] = path
    return found


def _check_contiguous(name: str, ext: str, frames: dict[int, Path]) -> None:
    numbers = sorted(frames)
    missing = sorted(set(range(numbers[0], numbers[-1] + 1)) - set(numbers))
    if missing:
        first = frames[numbers[0]]
        shown = ", ".join(map(str, missing[:5])) + (" ..." if len(missing) > 5 else "")
        raise SourceError(
            f"{first.parent / (name + '.#' + ext)}: sequence has gaps (missing frame(s) {shown} "
            f"between {numbers[0]} and {numbers[-1]})"
        )


def discover(source: Path) -> list[FrameFiles]:
    """Every sample of one source folder, in a stable order (folder, sequence, frame)."""
    source = Path(source)
    samples: list[FrameFiles] = []
    folders = [source] + sorted(p for p in source.rglob("*") if p.is_dir() and not p.name.startswith("."))
    for folder in folders:
        shot = folder.relative_to(source).as_posix()
        seqs = _sequences(folder)
        for (name, ext), frames in seqs.items():
            _check_contiguous(name, ext, frames)
        camera = (
            (folder / "camera.json").relative_to(source).as_posix()
            if (folder / "camera.json").is_file()
            else ""
        )
        passes = {name: frames for (name, _), frames in seqs.items() if name in PASS_NAMES}
        if passes and "beauty" not in passes:
            raise SourceError(f"{folder}: has {', '.join(sorted(passes))} passes but no beauty sequence")
        for (name, _), frames in sorted(seqs.items()):
            if name in PASS_NAMES and name != "beauty":
                continue
            for frame, path in sorted(frames.items()):
                extra: dict[str, str] = {}
                if name == "beauty":
                    for kind, pass_frames in passes.items():
                        if kind == "beauty":
                            continue
                        if frame not in pass_frames:
                            raise SourceError(f"{path}: no {kind} pass for frame {frame} in {folder}")
                        extra[kind] = pass_frames[frame].relative_to(source).as_posix()
                rel = path.relative_to(source).as_posix()
                samples.append(FrameFiles(shot, name, frame, rel, extra, camera))
        for kind, pass_frames in passes.items():
            orphans = sorted(set(pass_frames) - set(passes["beauty"]))
            if orphans:
                raise SourceError(f"{pass_frames[orphans[0]]}: {kind} pass has no beauty frame {orphans[0]}")
    if not samples:
        raise SourceError(f"{source}: no image sequences found ({', '.join(EXTENSIONS)})")
    return samples
