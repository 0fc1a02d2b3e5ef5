"""A job's frames on disk: the only place that names them, encodes them, writes them and records them.

A frame is done when its EXR is on disk (written to a temp name, fsynced, renamed) and recorded in the
job store; a crash between the two is repaired by ``reconcile`` on resume (a file under its final name
is complete, because the rename is atomic).

Frames leave the worker as soon as they are made: ``write`` hands a frame to a bounded pool of writer
threads (``ordered_pool.py``) that make its pixels (colour, alpha) and encode, hash, fsync and rename it
beside the denoising loop, while frames are recorded (frame-done events) strictly in the order they
were handed over. ``write`` blocks while the pool is full (backpressure); a failed write stops the pool
and fails the job (``write`` / ``close`` raise it); leaving the ``with`` block waits for every frame
handed over, so a cancelled or drained job never records a frame twice or leaves one behind.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

import genfx
from genfx.camera import CameraTrack
from genfx.exr import TEMP_SUFFIX, FrameMetadata, encode_frame, read_frame, read_header, write_atomic
from genfx.hashing import sha256_of
from genfx.proto import genfx_pb2 as pb
from inference_server.frame_output import encode_rgba
from inference_server.jobs import JobStore
from inference_server.ordered_pool import OrderedPool

PADDING = 4
COMPRESSION_NAMES = {
    pb.COMPRESSION_UNSPECIFIED: "zip",
    pb.COMPRESSION_ZIP: "zip",
    pb.COMPRESSION_PIZ: "piz",
    pb.COMPRESSION_DWAA: "dwaa",
    pb.COMPRESSION_NONE: "none",
}
F32 = npt.NDArray[np.float32]
F16 = npt.NDArray[np.float16]
K = TypeVar("K")
# What a frame's pixels come from, called on a writer thread: (display sRGB (H, W, 3), alpha or None).
Pixels = Callable[[], tuple[F32, F32 | None]]


def default_writer_threads() -> int:
    """Half the cores (the other half feed the device), 1 to 4: colour and EXR encode release the GIL,
    and OpenEXR compresses each frame on its own thread pool too."""
    return max(1, min(4, (os.cpu_count() or 2) // 2))


@dataclass(frozen=True)
class WriterSettings:
    """``threads`` writer threads (0: write in the worker's own thread, one frame after the other);
    ``max_pending`` frames handed over but not yet recorded before ``write`` blocks."""

    threads: int = 1
    max_pending: int = 4

    @classmethod
    def for_threads(cls, threads: int | None = None) -> WriterSettings:
        n = default_writer_threads() if threads is None else threads
        return cls(n, max(4, 3 * n))


class FrameWriteError(RuntimeError):
    """Making or writing one frame failed; the job fails with this message."""

    def __init__(self, frame: int, cause: BaseException) -> None:
        super().__init__(f"frame {frame}: {type(cause).__name__}: {cause}")
        self.frame = frame


class PendingFrame(Generic[K]):
    """A frame handed to the writer. ``kept()`` waits for what ``keep`` made of its written pixels
    (raises if the frame failed before that)."""

    def __init__(self, frame: int) -> None:
        self.frame = frame
        self._kept: Future[K] = Future()

    def kept(self) -> K:
        return self._kept.result()

    def done(self) -> bool:
        return self._kept.done()


def frame_file_name(name: str, frame: int) -> str:
    """``<name>.<frame, zero-padded to 4 digits>.exr``, e.g. ``genfx.1001.exr``."""
    return f"{name}.{frame:0{PADDING}d}.exr"


def file_pattern(name: str) -> str:
    """The same name with the frame as a '#' run (``genfx.####.exr``), for sequence loaders."""
    return f"{name}.{'#' * PADDING}.exr"


@dataclass(frozen=True)
class JobHeader:
    """What every frame header of a job shares."""

    job_id: str
    request: pb.GenerateRequest
    track: CameraTrack
    fps: Fraction
    model_hash: str
    colorspace: str
    loras: str = "[]"  # JSON text


class FrameWriter:
    """Use as a context manager: leaving it waits for every frame handed over (and raises a failed
    write's error)."""

    def __init__(
        self, store: JobStore, out_dir: Path, header: JobHeader, settings: WriterSettings | None = None
    ) -> None:
        self.store = store
        self.out_dir = out_dir
        self.header = header
        settings = settings or WriterSettings.for_threads()
        self._pool = OrderedPool(settings.threads, settings.max_pending, name="genfx-frame-writer")
        out_dir.mkdir(parents=True, exist_ok=True)

    def __enter__(self) -> FrameWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Waits until every frame handed over is written and recorded (or skipped after a failure);
        raises the first failure."""
        self._pool.close()

    def path(self, frame: int) -> Path:
        return self.out_dir / frame_file_name(self.header.request.output.name, frame)

    def metadata(self, frame: int, keyframe: bool) -> FrameMetadata:
        """Everything in a frame's EXR header but the pixels."""
        h = self.header
        req = h.request
        return FrameMetadata(
            camera=h.track.sample_at(frame),
            width=req.output.width,
            height=req.output.height,
            frame=frame,
            fps=h.fps,
            job_id=h.job_id,
            prompt=req.prompt,
            negative_prompt=req.negative_prompt,
            seed=req.seed,
            model=req.model,
            model_hash=h.model_hash,
            loras=h.loras,
            keyframe=keyframe,
            colorspace=h.colorspace,
            owner=req.client_tag,
            comments=f"GenFX {genfx.__version__} AI-generated frame"
            + ("" if keyframe else " (in-between: reprojected keyframes)"),
        )

    def encode(self, frame: int, display: F32, alpha: F32 | None, keyframe: bool) -> tuple[F16, bytes]:
        """A display image -> (the pixels as written: scene-linear, premultiplied, half; the EXR bytes).
        Pure (no disk, no store): a remote worker can run it and hand the bytes to ``write_encoded``."""
        rgba = encode_rgba(display, alpha, self.header.colorspace)
        return rgba, self._exr(frame, rgba, keyframe)

    def _exr(self, frame: int, rgba: F16, keyframe: bool) -> bytes:
        compression = COMPRESSION_NAMES[self.header.request.output.compression]
        return encode_frame(rgba, self.metadata(frame, keyframe), compression)

    def write(self, frame: int, keyframe: bool, pixels: Pixels, keep: Callable[[F16], K]) -> PendingFrame[K]:
        """Hands one frame to the writer threads and returns at once (blocks while the pool is full).

        On a writer thread: ``pixels()`` gives the display image and alpha; they are encoded (colour,
        premultiplied half); ``keep(written pixels)`` makes what the caller keeps of them (available
        from the returned ``PendingFrame`` before the file is written); then the EXR is encoded, written
        atomically and, once every earlier frame is recorded, recorded. Raises the first failed
        frame's ``FrameWriteError``."""
        pending: PendingFrame[K] = PendingFrame(frame)

        def work() -> pb.FrameInfo:
            try:
                display, alpha = pixels()
                rgba = encode_rgba(display, alpha, self.header.colorspace)
                del display, alpha
                pending._kept.set_result(keep(rgba))
                return self._put(frame, keyframe, self._exr(frame, rgba, keyframe))
            except BaseException as exc:
                if not pending.done():
                    pending._kept.set_exception(exc)
                raise FrameWriteError(frame, exc) from exc

        self._pool.submit(work, self._record, skipped=pending._kept.set_exception)
        return pending

    def write_encoded(self, frame: int, keyframe: bool, data: bytes) -> None:
        """Hands over a frame already encoded (``encode`` run elsewhere, e.g. on a remote worker): it is
        hashed, written atomically and recorded in order, like ``write``'s frames."""

        def work() -> pb.FrameInfo:
            try:
                return self._put(frame, keyframe, data)
            except BaseException as exc:
                raise FrameWriteError(frame, exc) from exc

        self._pool.submit(work, self._record)

    def _put(self, frame: int, keyframe: bool, data: bytes) -> pb.FrameInfo:
        path = self.path(frame)
        write_atomic(path, data)
        return pb.FrameInfo(
            frame=frame,
            file_name=path.name,
            sha256=hashlib.sha256(data).hexdigest(),
            size_bytes=len(data),
            keyframe=keyframe,
        )

    def _record(self, info: pb.FrameInfo) -> None:
        self.store.record_frame(self.header.job_id, info)

    def read(self, frame: int) -> npt.NDArray[np.floating]:
        """A written frame's pixels, as ``write`` returned them."""
        pixels, _ = read_frame(self.path(frame))
        return pixels

    def reconcile(self, frames: list[int]) -> set[int]:
        """Frames already made: recorded ones, plus any renamed into place just before a crash (recorded
        now). Temp files of a write that a crash cut off are removed."""
        for leftover in self.out_dir.glob(f"*{TEMP_SUFFIX}"):
            leftover.unlink(missing_ok=True)
        records = self.store.frames(self.header.job_id)
        done: set[int] = set()
        for frame in frames:
            path = self.path(frame)
            if not path.exists():
                continue
            if frame not in records:
                keyframe = bool(read_header(path).get("genfx/keyframe", 1))
                info = pb.FrameInfo(
                    frame=frame,
                    file_name=path.name,
                    sha256=sha256_of(path).hexdigest(),
                    size_bytes=path.stat().st_size,
                    keyframe=keyframe,
                )
                self.store.record_frame(self.header.job_id, info)
            done.add(frame)
        return done
