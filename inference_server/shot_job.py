"""One job's frames: request → shot spec → frame plan → each frame rendered (frame_loop.py, here or on
a Ray actor) and handed to the writer, then the warping error and the manifest.

A job interrupted by a crash resumes at the first missing frame: frames on disk are kept (the writer
reconciles them), keyframes needed later are read back from disk, and frame seeds derive from (job
seed, frame), so the frames it makes are the ones it would have made.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from genfx.camera import CameraTrack
from genfx.exr import write_atomic
from genfx.proto import genfx_pb2 as pb
from genfx.wire import camera_track_from_proto
from inference_server import defaults, manifest
from inference_server.engine import modes
from inference_server.engine.loras import LoraUse, applied_loras
from inference_server.engine.metrics import warping_error
from inference_server.engine.passes import PASSES
from inference_server.engine.reproject import View, default_plane_distance
from inference_server.engine.shot_renderer import ShotRenderer, ShotSpec
from inference_server.engine.temporal import FramePlan, inbetween, plan_frames
from inference_server.frame_loop import FrameHooks, LazyFrame, LoopSettings, RenderedFrame, frames
from inference_server.frame_output import metric_image, metric_size, written_display
from inference_server.frame_writer import EncodedFrame, FrameEncoder, FrameWriter, WriterSettings, job_header
from inference_server.jobs import JobStore
from inference_server.models import ModelInfo, ModelRegistry
from inference_server.step_times import StepTimes
from inference_server.storage import AssetStore
from inference_server.validation import is_temporal, shot_passes

log = logging.getLogger("genfx.worker")


def shot_spec(req: pb.GenerateRequest, model: ModelInfo, track: CameraTrack, assets: AssetStore) -> ShotSpec:
    """What the engine needs to know about a (validated, defaults filled in) request."""
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
        mode=shot_mode_of(req, model),
        views=views,
        passes=passes,
        plane_distance=req.conditioning.plane_distance or default_plane_distance(views[req.shot.frame_start]),
        controlnet_scale=req.conditioning.controlnet_conditioning_scale,
    )


def shot_mode_of(req: pb.GenerateRequest, model: ModelInfo) -> str:
    """The diffusion mode of a (validated) request on ``model``: from the passes it carries."""
    return modes.shot_mode(shot_passes(req.conditioning), model.capabilities).name


def lora_uses(req: pb.GenerateRequest, registry: ModelRegistry) -> list[LoraUse]:
    """The request's LoRAs (validated: known, for this model, weights filled in) with their folders."""
    out = []
    for ref in req.loras:
        info = registry.lora(ref.name)
        out.append(LoraUse(ref.name, info.path, info.hash, ref.weight))
    return out


def provenance(
    req: pb.GenerateRequest, registry: ModelRegistry, model: ModelInfo, mode: str
) -> tuple[str, str]:
    """What every frame header and the manifest record of the trained weights that made the frames, as
    JSON text: each LoRA (name, weight, hashes), and the sim ControlNet (hashes, scale) when the mode
    uses it ("" otherwise)."""
    loras = []
    for ref in req.loras:
        info = registry.lora(ref.name)
        loras.append(
            {
                "name": ref.name,
                "weight": ref.weight,
                "sha256": info.hash,
                "base_model_sha256": info.base_model_hash,
                "dataset_sha256": info.dataset_hash,
            }
        )
    controlnet = ""
    if mode == "sim" and model.sim_controlnet is not None:
        cn = model.sim_controlnet
        facts = {
            "sha256": cn.hash,
            "scale": req.conditioning.controlnet_conditioning_scale,
            "base_model_sha256": cn.base_model_hash,
            "dataset_sha256": cn.dataset_hash,
        }
        controlnet = json.dumps(facts, sort_keys=True)
    return json.dumps(loras, sort_keys=True), controlnet


def lora_pipeline(
    registry: ModelRegistry, model: str, device: str, spec: ShotSpec, uses: list[LoraUse]
) -> Any:
    """The pipeline a job's LoRAs go on: its mode's (its UNet and text encoder are the model's own,
    shared by every pipeline of the model), None without LoRAs."""
    return registry.load(model, device, spec.mode) if uses else None


class _MetricImages:
    """Small copies of every frame for the warping error; frames made before a resume (or by another
    process) are read back from disk."""

    def __init__(self, writer: FrameWriter, colorspace: str) -> None:
        self.writer = writer
        self.colorspace = colorspace
        self._small: dict[int, Any] = {}

    def remember(self, frame: int, small: Any) -> None:
        # A copy: under Ray the array is a read-only view of the object store, and torch warns on those.
        self._small[frame] = np.array(small)

    def get(self, frame: int) -> Any:
        if frame not in self._small:
            self._small[frame] = metric_image(self.writer.read(frame), self.colorspace)
        return self._small[frame]


class ShotJob:
    """One job's frames on the head: opened from the job store (frames already on disk are kept), then
    fed rendered frames in any order (``write``, thread-safe, each frame once), then ``finish`` writes
    the manifest. ``run`` renders the whole job here (the local worker: the device's part in this
    thread, the rest on the frame writer's threads); the Ray executor renders ``todo`` on actors
    instead and feeds ``write`` itself."""

    def __init__(
        self,
        job_id: str,
        store: JobStore,
        registry: ModelRegistry,
        assets: AssetStore,
        out_dir: Path,
        device: str,
        writers: WriterSettings | None = None,
        step_times: StepTimes | None = None,
    ) -> None:
        self.job_id = job_id
        self.store = store
        self.out_dir = out_dir
        self._lock = threading.Lock()
        self.request = req = store.request(job_id)
        self.model = model = registry.info(req.model)
        store.set_model_hash(job_id, model.hash)
        track = camera_track_from_proto(req.camera, req.output.width, req.output.height)
        self.spec = shot_spec(req, model, track, assets)
        self.loras_json, self.controlnet_json = provenance(req, registry, model, self.spec.mode)
        header = job_header(job_id, req, model.hash, self.loras_json, self.controlnet_json)
        self.colorspace = header.colorspace
        self.encoder = FrameEncoder(header)
        self.writer = FrameWriter(store, out_dir, header, writers)
        self.frames = list(range(req.shot.frame_start, req.shot.frame_end + 1))
        self.done = self.writer.reconcile(self.frames)
        self._lora_uses = lora_uses(req, registry)
        self._registry, self._device = registry, device

        # Head-side renderer: the local worker renders with it; under Ray it only answers the manifest's
        # questions (depth, sizes), and pipelines load on the actors.
        self.renderer = ShotRenderer(
            self.spec,
            lambda mode: registry.load(req.model, device, mode),
            model.capabilities,
            on_stage=(lambda stage: step_times.record(req.model, stage)) if step_times else None,
        )
        self.temporal = is_temporal(req)
        self.keyframe_step = max(1, req.shot.keyframe_step) if self.temporal else 1
        self.settings = LoopSettings(req.seed, self.temporal, self.colorspace, device)
        self.todo = [i for i in plan_frames(self.frames, self.keyframe_step) if i.frame not in self.done]
        self._metric = _MetricImages(self.writer, self.colorspace)
        self._coverage: dict[int, float] = {}
        self._devices: set[str] = set()

    def key_image(self, frame: int) -> Any:
        """A written keyframe as the frame loop reads keys: display sRGB of the pixels on disk."""
        return written_display(self.writer.read(frame), self.colorspace)

    def missing(self, items: list[FramePlan]) -> list[FramePlan]:
        with self._lock:
            return [i for i in items if i.frame not in self.done]

    def progress(self, frame: int, step: int, steps: int) -> None:
        with self._lock:
            frames_done, frames_total = len(self.done), len(self.frames)
        self.store.progress(
            self.job_id,
            pb.Progress(
                frame=frame,
                step=step,
                steps=steps,
                frames_done=frames_done,
                frames_total=frames_total,
                fraction=min(1.0, (frames_done + step / steps) / frames_total),
            ),
        )

    def write(self, rendered: RenderedFrame) -> bool:
        """Writes and records a rendered frame; False (nothing written) if the frame is already done."""
        with self._lock:
            if rendered.frame in self.done:
                return False
            self.done.add(rendered.frame)  # claimed: a second copy of this frame is dropped
        try:
            self.writer.write(rendered.encoded)
        except BaseException:
            with self._lock:
                self.done.discard(rendered.frame)
            raise
        self._recorded(rendered)
        return True

    def write_later(self, lazy: LazyFrame) -> None:
        """Hands a frame whose CPU work is still to do to the frame writer's threads (they finish,
        write and record it, in the order handed over); blocks while they are behind."""
        with self._lock:
            self.done.add(lazy.frame)  # the local loop makes each frame once
        made: list[RenderedFrame] = []

        def make() -> EncodedFrame:
            made.append(lazy.rendered())
            return made[0].encoded

        self.writer.write_later(lazy.frame, make, lambda: self._recorded(made[0]))

    def _recorded(self, rendered: RenderedFrame) -> None:
        with self._lock:
            self._metric.remember(rendered.frame, rendered.metric)
            if rendered.coverage is not None:
                self._coverage[rendered.frame] = round(rendered.coverage, 4)
            self._devices.add(rendered.device)
        log.debug("job %s frame %d (%d/%d)", self.job_id, rendered.frame, len(self.done), len(self.frames))

    def complete(self) -> bool:
        with self._lock:
            return len(self.done) == len(self.frames)

    def run(self, hooks: FrameHooks) -> None:
        """The whole job on this process's device (the local worker): each frame's device part here, the
        rest on the frame writer's threads beside the next one. The job's LoRAs are on the pipeline for
        these frames only: whatever happens, they come off again (the writers never touch a pipeline)."""
        pipeline = lora_pipeline(self._registry, self.request.model, self._device, self.spec, self._lora_uses)
        try:
            with applied_loras(pipeline, self._lora_uses):
                for lazy in frames(
                    self.renderer, self.todo, self.settings, self.key_image, hooks, self.encoder
                ):
                    self.write_later(lazy)
        finally:
            # Whatever stopped the loop (the end, a cancel, a drain): every frame handed over is
            # written and recorded before the worker records how the job ended.
            self.writer.close()
        self.finish()

    def finish(self) -> None:
        """The warping error over the whole written shot, then manifest.json."""
        req, spec, renderer = self.request, self.spec, self.renderer
        depth_source = "depth passes" if spec.has_depth else f"plane at {spec.plane_distance:g} scene units"
        notes: list[str] = []
        if self.temporal and not spec.has_depth:
            note = (
                "temporal: no depth passes; reprojection approximates the scene by a plane facing each"
                f" camera at {spec.plane_distance:g} scene units"
            )
            log.info("job %s %s", self.job_id, note, extra={"job_id": self.job_id})
            notes.append(note)
        facts = manifest.ShotFacts(
            device=", ".join(sorted(self._devices)) or self.settings.device,
            mode=spec.mode,
            passes=sorted(spec.has),
            strength=req.conditioning.strength,
            depth_range=renderer.depth_range,
            temporal=self.temporal,
            keyframe_step=self.keyframe_step,
            depth_source=depth_source,
            generation_size=renderer.gen_size,
            upscale=renderer.output.name,
            colorspace=self.colorspace,
            notes=notes,
            coverage=dict(sorted(self._coverage.items())),
            loras=json.loads(self.loras_json),
            controlnet=json.loads(self.controlnet_json) if self.controlnet_json else None,
        )
        measured = self._consistency(depth_source)
        doc = manifest.build(
            self.job_id, req, self.model, facts, self.store.frames(self.job_id).values(), measured
        )
        write_atomic(self.out_dir / "manifest.json", manifest.encode(doc))

    def _consistency(self, depth_source: str) -> dict[str, Any]:
        """Warping error over the whole written shot (docs/temporal.md), with the exact flow (motion
        vectors included when the shot has them); with in-betweens and motion passes, also the same
        keyframes with in-betweens re-made camera-only and motion-aware, side by side."""
        spec, frames, step = self.spec, self.frames, self.keyframe_step
        mw, mh = metric_size(spec.width, spec.height)
        flow = self.renderer.flow(mw, mh)
        images = [self._metric.get(f) for f in frames]
        value, pairs = warping_error(images, frames, flow)
        method = "independent" if step == 1 else "motion_aware" if spec.has_motion else "camera_only"
        compared: dict[str, float] = {}
        if step > 1 and spec.has_motion:
            small = dict(zip(frames, images, strict=True))
            plan = [p for p in plan_frames(frames, step) if not p.keyframe]
            for name, use_motion in (("camera_only", False), ("motion_aware", True)):
                remade = dict(small)
                for p in plan:
                    assert p.prev_key is not None and p.next_key is not None
                    left, right = (p.prev_key, small[p.prev_key]), (p.next_key, small[p.next_key])
                    remade[p.frame], _ = inbetween(p.frame, left, right, flow, use_motion=use_motion)
                compared[name], _ = warping_error([remade[f] for f in frames], frames, flow)
        return manifest.consistency(value, pairs, (mw, mh), depth_source, spec.has_motion, method, compared)
