"""One worker thread per device: takes the best queued job and makes its frames one by one.

A frame is done when its EXR is on disk (written to a temp name, fsynced, renamed) and recorded in the
job store. A job interrupted by a crash is requeued at start-up and resumes at the first missing frame;
frame seeds derive from (job seed, frame), so the frames it makes are the ones it would have made.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from google.protobuf.json_format import MessageToDict

import genfx
from genfx.camera import CameraTrack
from genfx.colour import MODEL_SPACE, OCIO_CONFIG
from genfx.exr import FrameMetadata, read_frame, read_header, write_atomic, write_frame
from genfx.hashing import sha256_of
from genfx.proto import genfx_pb2 as pb
from genfx.wire import camera_track_from_proto, fraction_from_proto
from inference_server import defaults
from inference_server.engine.metrics import warping_error
from inference_server.engine.modes import shot_mode
from inference_server.engine.passes import PASSES, asset_path
from inference_server.engine.reproject import View, default_plane_distance
from inference_server.engine.shot_renderer import ShotRenderer, ShotSpec
from inference_server.engine.temporal import plan_frames
from inference_server.engine.txt2img import RenderCancelled, frame_seed
from inference_server.frame_output import (
    COLORSPACE_NAMES,
    encode_rgba,
    metric_image,
    metric_size,
    written_display,
)
from inference_server.frame_writer import frame_file_name
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


class Worker(threading.Thread):
    def __init__(self, device: str, store: JobStore, registry: ModelRegistry, jobs_dir: Path) -> None:
        super().__init__(name=f"genfx-worker-{device}", daemon=True)
        self.device = device
        self.store = store
        self.registry = registry
        self.jobs_dir = jobs_dir
        # Uploaded assets live beside the jobs folder (<data>/assets, see service.UploadAsset).
        self.assets_dir = jobs_dir.parent / "assets"
        self.current_job = ""
        self._draining = threading.Event()  # finish the current frame, then requeue and stop
        self._stop_requested = threading.Event()  # stop between two steps

    def drain(self) -> None:
        """Takes no new job; the running one stops after its current frame and goes back to the queue."""
        self._draining.set()
        with self.store.changed:
            self.store.changed.notify_all()

    def stop(self) -> None:
        """Stops between two denoising steps (after a drain that took too long)."""
        self._draining.set()
        self._stop_requested.set()
        with self.store.changed:
            self.store.changed.notify_all()

    def run(self) -> None:
        while not self._draining.is_set():
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
        track = camera_track_from_proto(req.camera, req.output.width, req.output.height)
        spec = shot_spec(req, info.native_width, info.native_height, track, self.assets_dir)
        renderer = ShotRenderer(
            spec, lambda mode: self.registry.load(req.model, self.device, mode), "upscaler" in info.variants
        )
        temporal = is_temporal(req)
        plan = plan_frames(frames, req.shot.keyframe_step if temporal else 1)
        colorspace = COLORSPACE_NAMES[req.output.colorspace]
        run = _JobRun(job_id, req, out_dir, colorspace)
        if temporal and not spec.has_depth:
            note = (
                "temporal: no depth passes; reprojection approximates the scene by a plane facing each"
                f" camera at {spec.plane_distance:g} scene units"
            )
            log.info("job %s %s", job_id, note, extra={"job_id": job_id})
            run.notes.append(note)
        fps = fraction_from_proto(req.shot.fps)

        for item in plan:
            frame = item.frame
            if frame in done:
                continue
            if self._draining.is_set():
                raise WorkerStopping()
            self._check_interrupts(job_id, frame, 0)
            if item.keyframe:
                prev = None
                if temporal and item.prev_key is not None:
                    prev = (item.prev_key, run.key_image(item.prev_key))
                run.forget_keys_before(item.prev_key)
                display, coverage = renderer.keyframe(
                    frame,
                    frame_seed(req.seed, frame),
                    prev,
                    on_step=self._step_callback(job_id, frame, len(done), len(frames)),
                    on_tick=functools.partial(self._check_interrupts, job_id, frame, 0),
                )
            else:
                assert item.prev_key is not None and item.next_key is not None
                display, coverage = renderer.inbetween(
                    frame,
                    (item.prev_key, run.key_image(item.prev_key)),
                    (item.next_key, run.key_image(item.next_key)),
                )
            rgba = encode_rgba(display, renderer.alpha(frame), colorspace)
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
                keyframe=item.keyframe,
                colorspace=colorspace,
                owner=req.client_tag,
                comments=f"GenFX {genfx.__version__} AI-generated frame"
                + ("" if item.keyframe else " (in-between: reprojected keyframes)"),
            )
            name = frame_file_name(req.output.name, frame)
            path = out_dir / name
            digest = write_frame(path, rgba, meta, COMPRESSION_NAMES[req.output.compression])
            run.remember(frame, rgba, item.keyframe, coverage)
            done.add(frame)
            self.store.record_frame(
                job_id,
                FrameRecord(frame, name, digest, path.stat().st_size, item.keyframe),
                len(done) / len(frames),
            )
            log.debug("job %s frame %d (%d/%d)", job_id, frame, len(done), len(frames))

        consistency = self._consistency(run, renderer, spec, frames, track.width, track.height)
        self._write_manifest(job_id, req, out_dir, info.hash, info.path, run, renderer, consistency)

    def _consistency(
        self, run: _JobRun, renderer: ShotRenderer, spec: ShotSpec, frames: list[int], ref_w: int, ref_h: int
    ) -> dict[str, Any]:
        """Warping error over the whole written shot (docs/temporal.md, "Warping error")."""
        mw, mh = metric_size(spec.width, spec.height)
        images = [run.metric_image(f) for f in frames]
        depths = [renderer.depth_at(f, mw, mh) for f in frames]
        value, pairs = warping_error(images, depths, [spec.views[f] for f in frames], spec.has_depth)
        return {
            "metric": "warping_error",
            "value": value if math.isfinite(value) else None,
            "per_pair": [p if math.isfinite(p) else None for p in pairs],
            "definition": "mean over consecutive pairs of sum((I_t - warp(I_t+1))^2) over channels and"
            " non-occluded pixels / non-occluded pixels; exact flow from the camera matrices and depth",
            "resolution": [mw, mh],
            "space": "written RGB (premultiplied) in display sRGB encoding, [0, 1]",
            "depth": "depth passes with depth test"
            if spec.has_depth
            else f"plane at {spec.plane_distance:g}",
        }

    def _check_interrupts(self, job_id: str, frame: int, step: int) -> None:
        if self._stop_requested.is_set():
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
                keyframe = bool(read_header(path).get("genfx/keyframe", 1))
                rec = FrameRecord(frame, name, sha256_of(path).hexdigest(), path.stat().st_size, keyframe)
                self.store.record_frame(job_id, rec, (len(done) + 1) / len(frames))
            done.add(frame)
        return done

    def _write_manifest(
        self,
        job_id: str,
        req: pb.GenerateRequest,
        out_dir: Path,
        model_hash: str,
        model_path: Path,
        run: _JobRun,
        renderer: ShotRenderer,
        consistency: dict[str, Any],
    ) -> None:
        records = self.store.frames(job_id)
        spec = renderer.spec
        manifest = {
            "job_id": job_id,
            "genfx_version": genfx.__version__,
            "request": MessageToDict(req, preserving_proto_field_name=True),
            "model": {"name": req.model, "hash": model_hash, "path": str(model_path)},
            "device": self.device,
            "seed_derivation": "inference_server.engine.txt2img.frame_seed(job seed, frame)",
            "mode": spec.mode,
            "passes": sorted(spec.has),
            "conditioning": {
                "strength": req.conditioning.strength,
                "depth_range": list(renderer.depth_range) if renderer.depth_range else None,
                "depth_normalisation": "inverse depth over the shot's near/far, to [-1, 1]"
                if renderer.depth_range
                else None,
            },
            "temporal": {
                "enabled": is_temporal(req),
                "keyframe_step": max(1, req.shot.keyframe_step),
                "depth": "depth passes"
                if spec.has_depth
                else f"plane at {spec.plane_distance:g} scene units",
            },
            "generation_size": list(renderer.gen_size),
            "upscale": renderer.upscale_method,
            "colour": {"ocio_config": OCIO_CONFIG, "model_space": MODEL_SPACE, "output": run.colorspace},
            "notes": run.notes,
            "temporal_consistency": consistency,
            "frames": [
                {
                    "frame": r.frame,
                    "file": r.file_name,
                    "sha256": r.sha256,
                    "size_bytes": r.size_bytes,
                    "keyframe": r.keyframe,
                    "seed": frame_seed(req.seed, r.frame),
                    **({"coverage": run.coverage[r.frame]} if r.frame in run.coverage else {}),
                }
                for r in sorted(records.values(), key=lambda r: r.frame)
            ],
        }
        write_atomic(out_dir / "manifest.json", json.dumps(manifest, indent=2, sort_keys=True).encode())


def is_temporal(req: pb.GenerateRequest) -> bool:
    return req.temporal == pb.TEMPORAL_MODE_REPROJECT or req.shot.keyframe_step > 1


def shot_spec(
    req: pb.GenerateRequest, native_width: int, native_height: int, track: CameraTrack, assets_dir: Path
) -> ShotSpec:
    """What the engine needs to know about a (validated) request."""
    passes: dict[int, dict[str, Path]] = {}
    for f in req.conditioning.frames:
        for kind in PASSES:
            asset_id = getattr(f, f"{kind}_asset_id")
            if asset_id:
                passes.setdefault(f.frame, {})[kind] = asset_path(assets_dir, asset_id)
    frames = range(req.shot.frame_start, req.shot.frame_end + 1)
    views = {f: View(track.sample_at(f), track.width, track.height) for f in frames}
    return ShotSpec(
        prompt=req.prompt,
        negative_prompt=req.negative_prompt,
        steps=req.steps,
        guidance=req.guidance,
        strength=req.conditioning.strength or defaults.STRENGTH,
        width=req.output.width,
        height=req.output.height,
        native_width=native_width,
        native_height=native_height,
        mode=shot_mode({k for p in passes.values() for k in p}),
        views=views,
        passes=passes,
        plane_distance=req.conditioning.plane_distance or default_plane_distance(views[req.shot.frame_start]),
    )


class _JobRun:
    """Per-run state: keyframe images for reprojection, small copies for the metric, notes."""

    def __init__(self, job_id: str, req: pb.GenerateRequest, out_dir: Path, colorspace: str) -> None:
        self.req = req
        self.out_dir = out_dir
        self.colorspace = colorspace
        self.notes: list[str] = []
        self.coverage: dict[int, float] = {}
        self._keys: dict[int, Any] = {}
        self._small: dict[int, Any] = {}

    def _read(self, frame: int) -> Any:
        pixels, _ = read_frame(self.out_dir / frame_file_name(self.req.output.name, frame))
        return pixels

    def key_image(self, frame: int) -> Any:
        """A keyframe as written, back in display space (read from disk after a resume)."""
        if frame not in self._keys:
            self._keys[frame] = written_display(self._read(frame), self.colorspace)
        return self._keys[frame]

    def forget_keys_before(self, frame: int | None) -> None:
        for old in [k for k in self._keys if frame is None or k < frame]:
            del self._keys[old]

    def remember(self, frame: int, rgba: Any, keyframe: bool, coverage: float | None) -> None:
        if keyframe:
            self._keys[frame] = written_display(rgba, self.colorspace)
        self._small[frame] = metric_image(rgba, self.colorspace)
        if coverage is not None:
            self.coverage[frame] = round(coverage, 4)

    def metric_image(self, frame: int) -> Any:
        if frame not in self._small:
            self._small[frame] = metric_image(self._read(frame), self.colorspace)
        return self._small[frame]
