"""A job's frames: the only place that names them, encodes them (header and pixels, wherever the frame
was rendered) and writes and records them (on the head only, under Ray too: actors send EXR bytes).

A frame is done when its EXR is on disk (written to a temp name, fsynced, renamed) and recorded in the
job store; a crash between the two is repaired by ``reconcile`` on resume (a file under its final name
is complete, because the rename is atomic).

Frames leave the worker as soon as its device has made them: ``write_later`` hands a frame to a bounded
pool of writer threads (``ordered_pool.py``) that make its bytes (the frame loop's deferred work:
in-between reprojection, colour, EXR encode) and hash, fsync and rename them beside the denoising loop,
while frames are recorded (frame-done events) strictly in the order they were handed over.
``write_later`` blocks while the pool is full (backpressure); a failed frame stops the pool and fails
the job (``write_later`` / ``close`` raise it); ``close`` waits for every frame handed over, so a
cancelled or drained job records no frame twice and leaves none half-done.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import numpy.typing as npt

import genfx
from genfx.camera import CameraTrack
from genfx.exr import TEMP_SUFFIX, FrameMetadata, encode_frame, read_frame, read_header, write_atomic
from genfx.hashing import sha256_of
from genfx.proto import genfx_pb2 as pb
from genfx.wire import camera_track_from_proto, fraction_from_proto
from inference_server.frame_output import COLORSPACE_NAMES
from inference_server.jobs import JobStore
from inference_server.ordered_pool import OrderedPool
from inference_server.storage import storage_failure

PADDING = 4
COMPRESSION_NAMES = {
    pb.COMPRESSION_UNSPECIFIED: "zip",
    pb.COMPRESSION_ZIP: "zip",
    pb.COMPRESSION_PIZ: "piz",
    pb.COMPRESSION_DWAA: "dwaa",
    pb.COMPRESSION_NONE: "none",
}


def default_writer_threads() -> int:
    """Half the cores (the other half feed the device), 1 to 4: colour, EXR encode and reprojection
    release the GIL, and OpenEXR compresses each frame on its own thread pool too."""
    return max(1, min(4, (os.cpu_count() or 2) // 2))


@dataclass(frozen=True)
class WriterSettings:
    """``threads`` writer threads (0: frames are made and written in the worker's own thread, one after
    the other); ``max_pending`` frames handed over but not yet recorded before ``write_later`` blocks."""

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
    loras: str = "[]"  # JSON text: name, weight, sha256, base_model_sha256, dataset_sha256 per LoRA
    controlnet: str = ""  # JSON text: the sim ControlNet's sha256, scale, ...; "" when none was used


def job_header(
    job_id: str, req: pb.GenerateRequest, model_hash: str, loras: str = "[]", controlnet: str = ""
) -> JobHeader:
    """A job's shared header facts, from its (validated) request and the provenance of its trained
    weights (shot_job.provenance, JSON): the same on the head and on actors."""
    track = camera_track_from_proto(req.camera, req.output.width, req.output.height)
    return JobHeader(
        job_id,
        req,
        track,
        fraction_from_proto(req.shot.fps),
        model_hash,
        COLORSPACE_NAMES[req.output.colorspace],
        loras,
        controlnet,
    )


@dataclass(frozen=True)
class EncodedFrame:
    """A frame's EXR file, made where the frame was rendered (a worker thread or a Ray actor)."""

    frame: int
    keyframe: bool
    data: bytes


class FrameEncoder:
    """Pixels -> a frame's EXR bytes with the job's header (camera, provenance). Pure: no disk, no store."""

    def __init__(self, header: JobHeader) -> None:
        self.header = header

    def encode(self, frame: int, rgba: npt.NDArray[np.float16], keyframe: bool) -> EncodedFrame:
        """``rgba``: scene-linear, premultiplied, half (frame_output.encode_rgba)."""
        h = self.header
        req = h.request
        meta = FrameMetadata(
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
            controlnet=h.controlnet,
            keyframe=keyframe,
            colorspace=h.colorspace,
            owner=req.client_tag,
            comments=f"GenFX {genfx.__version__} AI-generated frame"
            + ("" if keyframe else " (in-between: reprojected keyframes)"),
        )
        return EncodedFrame(
            frame, keyframe, encode_frame(rgba, meta, COMPRESSION_NAMES[req.output.compression])
        )


class FrameWriter:
    """The one writer of a job's frames (on the head, under Ray too)."""

    def __init__(
        self, store: JobStore, out_dir: Path, header: JobHeader, settings: WriterSettings | None = None
    ) -> None:
        self.store = store
        self.out_dir = out_dir
        self.header = header
        settings = settings or WriterSettings.for_threads()
        # Threads start on the first write_later: a writer that only writes (the Ray head) has none.
        self._pool = OrderedPool(settings.threads, settings.max_pending, name="genfx-frame-writer")
        out_dir.mkdir(parents=True, exist_ok=True)

    def path(self, frame: int) -> Path:
        return self.out_dir / frame_file_name(self.header.request.output.name, frame)

    def write(self, encoded: EncodedFrame) -> None:
        """Writes an encoded frame atomically (temp name, fsync, rename), then records it; in the
        caller's thread (the Ray head, whose chunk threads already run beside the actors)."""
        self.store.record_frame(self.header.job_id, self._put(encoded))

    def write_later(
        self, frame: int, make: Callable[[], EncodedFrame], recorded: Callable[[], None] | None = None
    ) -> None:
        """Hands one frame to the writer threads and returns (blocks while the pool is full).

        On a writer thread ``make()`` gives the frame's EXR (whatever work the caller deferred to it),
        which is written atomically; once every frame handed over before it is recorded, it is recorded
        and ``recorded()`` runs. Raises the first failed frame's ``FrameWriteError``."""

        def work() -> pb.FrameInfo:
            try:
                return self._put(make())
            except BaseException as exc:
                if storage_failure(exc) is not None:
                    raise  # as it is: the worker requeues the job and waits for storage (worker.py)
                raise FrameWriteError(frame, exc) from exc

        def record(info: pb.FrameInfo) -> None:
            self.store.record_frame(self.header.job_id, info)
            if recorded is not None:
                recorded()

        self._pool.submit(work, record)

    def close(self) -> None:
        """Waits until every frame handed to ``write_later`` is written and recorded (or skipped after a
        failure); raises the first failure."""
        self._pool.close()

    def _put(self, encoded: EncodedFrame) -> pb.FrameInfo:
        path = self.path(encoded.frame)
        write_atomic(path, encoded.data)
        return pb.FrameInfo(
            frame=encoded.frame,
            file_name=path.name,
            sha256=hashlib.sha256(encoded.data).hexdigest(),
            size_bytes=len(encoded.data),
            keyframe=encoded.keyframe,
        )

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
