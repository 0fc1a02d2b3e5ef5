"""One job's frames: request → shot spec → frame plan → each frame rendered and handed to the writer,
then the warping error and the manifest.

A job interrupted by a crash resumes at the first missing frame: frames on disk are kept (the writer
reconciles them), keyframes needed later are read back from disk, and frame seeds derive from (job
seed, frame), so the frames it makes are the ones it would have made.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from genfx.camera import CameraTrack
from genfx.exr import write_atomic
from genfx.proto import genfx_pb2 as pb
from genfx.wire import camera_track_from_proto, fraction_from_proto
from inference_server import defaults, manifest
from inference_server.engine import modes
from inference_server.engine.common import frame_seed
from inference_server.engine.metrics import warping_error
from inference_server.engine.passes import PASSES
from inference_server.engine.reproject import View, default_plane_distance
from inference_server.engine.shot_renderer import ShotRenderer, ShotSpec
from inference_server.engine.temporal import FramePlan, plan_frames
from inference_server.frame_output import COLORSPACE_NAMES, metric_image, metric_size, written_display
from inference_server.frame_writer import (
    F16,
    F32,
    FrameWriter,
    JobHeader,
    PendingFrame,
    Pixels,
    WriterSettings,
)
from inference_server.jobs import JobStore
from inference_server.models import ModelInfo, ModelRegistry
from inference_server.step_times import StepTimes
from inference_server.storage import AssetStore
from inference_server.validation import is_temporal

log = logging.getLogger("genfx.worker")


class Interrupts(Protocol):
    """How the worker stops a job: each call raises to stop it (cancel, shutdown), else returns."""

    def before_frame(self, job_id: str, frame: int) -> None: ...

    def after_step(self, job_id: str, frame: int, step: int) -> None: ...


def shot_spec(req: pb.GenerateRequest, model: ModelInfo, track: CameraTrack, assets: AssetStore) -> ShotSpec:
    """What the engine needs to know about a (validated) request."""
    passes: dict[int, dict[str, Path]] = {}
    for f in req.conditioning.frames:
        for kind in PASSES:
            asset_id = getattr(f, f"{kind}_asset_id")
            if asset_id:
                passes.setdefault(f.frame, {})[kind] = assets.path(asset_id)
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
        native_width=model.native_width,
        native_height=model.native_height,
        mode=modes.shot_mode({k for p in passes.values() for k in p}).name,
        views=views,
        passes=passes,
        plane_distance=req.conditioning.plane_distance or default_plane_distance(views[req.shot.frame_start]),
    )


@dataclass(frozen=True)
class _Kept:
    """What the job keeps of a written frame: its display image if it is a keyframe (for reprojection)
    and a small copy for the warping error."""

    key: F32 | None
    small: F32


KeyImage = Callable[[], F32]  # a keyframe's display image; may wait for the writer


class _Keyframes:
    """Keyframe images (display sRGB) for reprojection and small copies of every frame for the metric,
    made from the written pixels on the writer threads; what a resumed job did not make in this run is
    read back from disk (the same pixels, so the same images)."""

    def __init__(self, writer: FrameWriter, colorspace: str) -> None:
        self.writer = writer
        self.colorspace = colorspace
        self._keys: dict[int, KeyImage] = {}
        self._pending: dict[int, PendingFrame[_Kept]] = {}
        self._small: dict[int, F32] = {}

    def keep(self, keyframe: bool) -> Callable[[F16], _Kept]:
        colorspace = self.colorspace

        def keep(rgba: F16) -> _Kept:
            return _Kept(
                written_display(rgba, colorspace) if keyframe else None, metric_image(rgba, colorspace)
            )

        return keep

    def key(self, frame: int) -> KeyImage:
        """The keyframe's image, as a call that waits for it (it may still be with the writer)."""
        if frame not in self._keys:
            image = written_display(self.writer.read(frame), self.colorspace)
            self._keys[frame] = lambda: image
        return self._keys[frame]

    def forget_before(self, frame: int | None) -> None:
        for old in [k for k in self._keys if frame is None or k < frame]:
            del self._keys[old]

    def remember(self, frame: int, pending: PendingFrame[_Kept], keyframe: bool) -> None:
        if keyframe:
            self._keys[frame] = lambda: _key_of(pending)
        self._pending[frame] = pending
        for done in [f for f, p in self._pending.items() if p.done()]:  # hold small copies, not frames
            self._small[done] = self._pending.pop(done).kept().small

    def metric_image(self, frame: int) -> F32:
        if frame in self._pending:
            self._small[frame] = self._pending.pop(frame).kept().small
        if frame not in self._small:
            self._small[frame] = metric_image(self.writer.read(frame), self.colorspace)
        return self._small[frame]


def _key_of(pending: PendingFrame[_Kept]) -> F32:
    key = pending.kept().key
    assert key is not None, f"frame {pending.frame} is not a keyframe"
    return key


class ShotJob:
    def __init__(
        self,
        job_id: str,
        store: JobStore,
        registry: ModelRegistry,
        assets: AssetStore,
        out_dir: Path,
        device: str,
        interrupts: Interrupts,
        writers: WriterSettings | None = None,
        step_times: StepTimes | None = None,
    ) -> None:
        self.job_id = job_id
        self.store = store
        self.registry = registry
        self.assets = assets
        self.out_dir = out_dir
        self.device = device
        self.interrupts = interrupts
        self.writers = writers
        self.step_times = step_times

    def run(self) -> None:
        job_id = self.job_id
        req = self.store.request(job_id)
        model = self.registry.info(req.model)
        self.store.set_model_hash(job_id, model.hash)
        track = camera_track_from_proto(req.camera, req.output.width, req.output.height)
        colorspace = COLORSPACE_NAMES[req.output.colorspace]
        header = JobHeader(job_id, req, track, fraction_from_proto(req.shot.fps), model.hash, colorspace)
        frames = list(range(req.shot.frame_start, req.shot.frame_end + 1))
        spec = shot_spec(req, model, track, self.assets)
        step_times = self.step_times
        renderer = ShotRenderer(
            spec,
            lambda mode: self.registry.load(req.model, self.device, mode),
            model.capabilities,
            on_stage=(lambda stage: step_times.record(req.model, stage)) if step_times else None,
        )
        temporal = is_temporal(req)
        keyframe_step = max(1, req.shot.keyframe_step) if temporal else 1
        depth_source = "depth passes" if spec.has_depth else f"plane at {spec.plane_distance:g} scene units"
        notes: list[str] = []
        if temporal and not spec.has_depth:
            note = (
                "temporal: no depth passes; reprojection approximates the scene by a plane facing each"
                f" camera at {spec.plane_distance:g} scene units"
            )
            log.info("job %s %s", job_id, note, extra={"job_id": job_id})
            notes.append(note)
        coverage: dict[int, float] = {}
        # Leaving the block waits for every frame handed to the writer (whatever stops the loop).
        with FrameWriter(self.store, self.out_dir, header, self.writers) as writer:
            done = writer.reconcile(frames)
            keys = _Keyframes(writer, colorspace)
            for item in plan_frames(frames, keyframe_step):
                if item.frame in done:
                    continue
                self.interrupts.before_frame(job_id, item.frame)
                pixels = self._frame(
                    item, renderer, keys, temporal, req.seed, len(done), len(frames), coverage
                )
                pending = writer.write(item.frame, item.keyframe, pixels, keys.keep(item.keyframe))
                keys.remember(item.frame, pending, item.keyframe)
                done.add(item.frame)
                log.debug("job %s frame %d (%d/%d)", job_id, item.frame, len(done), len(frames))

        facts = manifest.ShotFacts(
            device=self.device,
            mode=spec.mode,
            passes=sorted(spec.has),
            strength=req.conditioning.strength,
            depth_range=renderer.depth_range,
            temporal=temporal,
            keyframe_step=keyframe_step,
            depth_source=depth_source,
            generation_size=renderer.gen_size,
            upscale=renderer.output.name,
            colorspace=colorspace,
            notes=notes,
            coverage=coverage,
        )
        measured = self._consistency(keys, renderer, spec, frames, depth_source)
        doc = manifest.build(job_id, req, model, facts, self.store.frames(job_id).values(), measured)
        write_atomic(self.out_dir / "manifest.json", manifest.encode(doc))

    def _frame(
        self,
        item: FramePlan,
        renderer: ShotRenderer,
        keys: _Keyframes,
        temporal: bool,
        seed: int,
        frames_done: int,
        frames_total: int,
        coverage: dict[int, float],
    ) -> Pixels:
        """Makes a keyframe here (diffusion, upscale) or prepares an in-between; returns what the writer
        calls, on its own thread, for the frame's display image and alpha (in-betweens are reprojected
        there, beside the next keyframe's diffusion)."""
        frame = item.frame
        if not item.keyframe:
            assert item.prev_key is not None and item.next_key is not None
            left, right = (item.prev_key, keys.key(item.prev_key)), (item.next_key, keys.key(item.next_key))

            def inbetween() -> tuple[F32, F32 | None]:
                image, cover = renderer.inbetween(frame, (left[0], left[1]()), (right[0], right[1]()))
                coverage[frame] = round(cover, 4)
                return image, renderer.alpha(frame)

            return inbetween
        prev = None
        if temporal and item.prev_key is not None:
            prev = (item.prev_key, keys.key(item.prev_key)())
        keys.forget_before(item.prev_key)

        def on_step(step: int, steps: int) -> None:
            fraction = (frames_done + step / steps) / frames_total
            self.store.progress(
                self.job_id,
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
            self.interrupts.after_step(self.job_id, frame, step)

        display, cover = renderer.keyframe(
            frame,
            frame_seed(seed, frame),
            prev,
            on_step=on_step,
            on_tick=lambda: self.interrupts.after_step(self.job_id, frame, 0),
        )
        if cover is not None:
            coverage[frame] = round(cover, 4)
        return lambda: (display, renderer.alpha(frame))

    @staticmethod
    def _consistency(
        keys: _Keyframes, renderer: ShotRenderer, spec: ShotSpec, frames: list[int], depth_source: str
    ) -> dict[str, Any]:
        """Warping error over the whole written shot (docs/temporal.md)."""
        mw, mh = metric_size(spec.width, spec.height)
        images = [keys.metric_image(f) for f in frames]
        depths = [renderer.depth_at(f, mw, mh) for f in frames]
        value, pairs = warping_error(images, depths, [spec.views[f] for f in frames], spec.has_depth)
        return manifest.consistency(value, pairs, (mw, mh), depth_source)
