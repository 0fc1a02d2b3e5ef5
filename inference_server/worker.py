"""One worker thread per device: takes the best queued job and makes its frames one by one.

A frame is done when its EXR is on disk (written to a temp name, fsynced, renamed) and recorded in the
job store. A job interrupted by a crash is requeued at start-up and resumes at the first missing frame;
frame seeds derive from (job seed, frame), so the frames it makes are the ones it would have made.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
from google.protobuf.json_format import MessageToDict

import genfx
from genfx._proto import genfx_pb2 as pb
from genfx.colour import srgb_to_linear
from genfx.exr import FrameMetadata, write_atomic, write_frame
from genfx.wire import camera_track_from_proto, fraction_from_proto
from inference_server.engine.txt2img import RenderCancelled, Txt2ImgRenderer, frame_seed
from inference_server.jobs import FrameRecord, JobStore
from inference_server.models import ModelRegistry

log = logging.getLogger("genfx.worker")

COMPRESSION_NAMES = {
    pb.COMPRESSION_UNSPECIFIED: "zip",
    pb.COMPRESSION_ZIP: "zip",
    pb.COMPRESSION_PIZ: "piz",
    pb.COMPRESSION_DWAA: "dwaa",
    pb.COMPRESSION_NONE: "none",
}
TEMP_MARK = ".tmp"  # genfx.exr.write_atomic names its temp files .<name>.<random>.tmp


class WorkerStopping(Exception):
    """Raised between steps when the server shuts down: the job goes back to the queue."""


def frame_file_name(name: str, frame: int) -> str:
    return f"{name}.{frame:04d}.exr"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Worker(threading.Thread):
    def __init__(self, device: str, store: JobStore, registry: ModelRegistry, jobs_dir: Path) -> None:
        super().__init__(name=f"genfx-worker-{device}", daemon=True)
        self.device = device
        self.store = store
        self.registry = registry
        self.jobs_dir = jobs_dir
        self.current_job = ""
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()
        with self.store.changed:
            self.store.changed.notify_all()

    def run(self) -> None:
        while not self._stop.is_set():
            job_id = self.store.claim_next()
            if job_id is None:
                self.store.wait_for_change(1.0)
                continue
            self.current_job = job_id
            try:
                self._run_job(job_id)
            finally:
                self.current_job = ""

    # ---- one job ----------------------------------------------------------------------------------

    def _run_job(self, job_id: str) -> None:
        started = time.time()
        try:
            self._make_frames(job_id)
        except RenderCancelled as exc:
            self.store.finish(job_id, pb.JOB_STATE_CANCELLED, str(exc) or "cancelled")
            log.info("job %s cancelled: %s", job_id, exc)
        except WorkerStopping:
            self.store.requeue(job_id, "server shutting down; the job resumes when it starts again")
            log.info("job %s requeued at shutdown", job_id)
        except Exception as exc:  # a failed job must never take the worker down
            log.error("job %s failed:\n%s", job_id, traceback.format_exc())
            self.store.finish(job_id, pb.JOB_STATE_FAILED, f"{type(exc).__name__}: {exc}")
        else:
            self.store.finish(job_id, pb.JOB_STATE_SUCCEEDED)
            log.info("job %s succeeded in %.1f s", job_id, time.time() - started)

    def _make_frames(self, job_id: str) -> None:
        req = self.store.request(job_id)
        out_dir = self.jobs_dir / job_id
        out_dir.mkdir(parents=True, exist_ok=True)
        frames = list(range(req.shot.frame_start, req.shot.frame_end + 1))
        done = self._reconcile(job_id, req, out_dir, frames)

        info = self.registry.info(req.model)
        self.store.set_model_hash(job_id, info.hash)
        renderer = Txt2ImgRenderer(
            self.registry.load(req.model, self.device), info.native_width, info.native_height
        )
        track = camera_track_from_proto(req.camera, req.output.width, req.output.height)
        fps = fraction_from_proto(req.shot.fps)

        for index, frame in enumerate(frames):
            if frame in done:
                continue
            self._check_interrupts(job_id, frame, 0)
            rgb = renderer.render(
                prompt=req.prompt,
                negative_prompt=req.negative_prompt,
                seed=frame_seed(req.seed, frame),
                steps=req.steps,
                guidance=req.guidance,
                width=req.output.width,
                height=req.output.height,
                on_step=self._step_callback(job_id, frame, len(done), len(frames)),
            )
            meta = FrameMetadata(
                camera=track.sample_at(frame),
                width=req.output.width,
                height=req.output.height,
                frame=frame,
                fps=fps,
                job_id=job_id,
                prompt=req.prompt,
                negative_prompt=req.negative_prompt,
                seed=req.seed,
                model=req.model,
                model_hash=info.hash,
                loras="[]",
                keyframe=True,
                owner=req.client_tag,
                comments=f"GenFX {genfx.__version__} AI-generated frame",
            )
            name = frame_file_name(req.output.name, frame)
            path = out_dir / name
            digest = write_frame(path, to_rgba(rgb), meta, COMPRESSION_NAMES[req.output.compression])
            done.add(frame)
            self.store.record_frame(
                job_id, FrameRecord(frame, name, digest, path.stat().st_size, True), len(done) / len(frames)
            )
            log.debug("job %s frame %d (%d/%d)", job_id, frame, index + 1, len(frames))

        self._write_manifest(job_id, req, out_dir, info.hash, info.path)

    def _check_interrupts(self, job_id: str, frame: int, step: int) -> None:
        if self._stop.is_set():
            raise WorkerStopping()
        if self.store.cancel_requested(job_id):
            where = f"frame {frame}" + (f" after step {step}" if step else " before it started")
            raise RenderCancelled(f"cancelled by CancelJob at {where}")

    def _step_callback(self, job_id: str, frame: int, frames_done: int, frames_total: int) -> Any:
        def on_step(step: int, steps: int) -> None:
            fraction = (frames_done + step / steps) / frames_total
            self.store.progress(
                job_id,
                pb.Progress(
                    frame=frame,
                    step=step,
                    steps=steps,
                    frames_done=frames_done,
                    frames_total=frames_total,
                    fraction=fraction,
                ),
            )
            # Checked after every step: cancel stops the job before the next step starts.
            self._check_interrupts(job_id, frame, step)

        return on_step

    def _reconcile(self, job_id: str, req: pb.GenerateRequest, out_dir: Path, frames: list[int]) -> set[int]:
        """Frames already made: recorded ones, plus any renamed into place just before a crash."""
        for leftover in out_dir.glob(f"*{TEMP_MARK}*"):
            leftover.unlink(missing_ok=True)
        records = self.store.frames(job_id)
        done: set[int] = set()
        for frame in frames:
            name = frame_file_name(req.output.name, frame)
            path = out_dir / name
            if not path.exists():
                continue
            if frame not in records:
                # The rename is atomic, so a file under its final name is complete.
                rec = FrameRecord(frame, name, sha256_file(path), path.stat().st_size, True)
                self.store.record_frame(job_id, rec, (len(done) + 1) / len(frames))
            done.add(frame)
        return done

    def _write_manifest(
        self, job_id: str, req: pb.GenerateRequest, out_dir: Path, model_hash: str, model_path: Path
    ) -> None:
        records = self.store.frames(job_id)
        manifest = {
            "job_id": job_id,
            "genfx_version": genfx.__version__,
            "request": MessageToDict(req, preserving_proto_field_name=True),
            "model": {"name": req.model, "hash": model_hash, "path": str(model_path)},
            "device": self.device,
            "seed_derivation": "inference_server.engine.txt2img.frame_seed(job seed, frame)",
            "frames": [
                {
                    "frame": r.frame,
                    "file": r.file_name,
                    "sha256": r.sha256,
                    "size_bytes": r.size_bytes,
                    "keyframe": r.keyframe,
                    "seed": frame_seed(req.seed, r.frame),
                }
                for r in sorted(records.values(), key=lambda r: r.frame)
            ],
        }
        write_atomic(out_dir / "manifest.json", json.dumps(manifest, indent=2, sort_keys=True).encode())


def to_rgba(rgb_display: np.ndarray) -> np.ndarray:
    """Model output (display sRGB, [0,1]) -> scene-linear RGBA with alpha 1 (trivially premultiplied)."""
    linear = srgb_to_linear(rgb_display.astype(np.float32))
    alpha = np.ones(linear.shape[:2] + (1,), np.float32)
    return np.ascontiguousarray(np.concatenate([linear, alpha], axis=2))
