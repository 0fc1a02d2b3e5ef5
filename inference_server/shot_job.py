"""One job's frames: request → shot spec → frame plan → each frame rendered and handed to the writer,
then the warping error and the manifest.

A job interrupted by a crash resumes at the first missing frame: frames on disk are kept (the writer
reconciles them), keyframes needed later are read back from disk, and frame seeds derive from (job
seed, frame), so the frames it makes are the ones it would have made.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Protocol

from genfx.camera import CameraTrack
from genfx.exr import write_atomic
from genfx.proto import genfx_pb2 as pb
from genfx.wire import camera_track_from_proto, fraction_from_proto
from inference_server import defaults, manifest
from inference_server.engine import modes
from inference_server.engine.common import frame_seed
from inference_server.engine.loras import LoraUse, applied_loras
from inference_server.engine.metrics import warping_error
from inference_server.engine.passes import PASSES
from inference_server.engine.reproject import View, default_plane_distance
from inference_server.engine.shot_renderer import ShotRenderer, ShotSpec
from inference_server.engine.temporal import FramePlan, inbetween, plan_frames
from inference_server.frame_output import COLORSPACE_NAMES, metric_image, metric_size, written_display
from inference_server.frame_writer import FrameWriter, JobHeader
from inference_server.jobs import JobStore
from inference_server.models import ModelInfo, ModelRegistry
from inference_server.storage import AssetStore
from inference_server.validation import is_temporal

log = logging.getLogger("genfx.worker")


class Interrupts(Protocol):
    """How the worker stops a job: each call raises to stop it (cancel, shutdown), else returns."""

    def before_frame(self, job_id: str, frame: int) -> None: ...

    def after_step(self, job_id: str, frame: int, step: int) -> None: ...


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
        mode=modes.shot_mode({k for p in passes.values() for k in p}, model.capabilities).name,
        views=views,
        passes=passes,
        plane_distance=req.conditioning.plane_distance or default_plane_distance(views[req.shot.frame_start]),
        controlnet_scale=req.conditioning.controlnet_conditioning_scale,
    )


def lora_uses(req: pb.GenerateRequest, registry: ModelRegistry) -> list[LoraUse]:
    """The request's LoRAs (validated: known, for this model, weights filled in) with their folders."""
    out = []
    for ref in req.loras:
        info = registry.lora(ref.name)
        out.append(LoraUse(ref.name, info.path, info.hash, ref.weight))
    return out


def provenance(
    req: pb.GenerateRequest, registry: ModelRegistry, model: ModelInfo, mode: str
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """What a frame header and the manifest record of the trained weights that made the frames:
    each LoRA (name, weight, hashes) and the sim ControlNet (hashes, scale) when the mode used it."""
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
    controlnet = None
    if mode == "sim" and model.sim_controlnet is not None:
        cn = model.sim_controlnet
        controlnet = {
            "sha256": cn.hash,
            "scale": req.conditioning.controlnet_conditioning_scale,
            "base_model_sha256": cn.base_model_hash,
            "dataset_sha256": cn.dataset_hash,
        }
    return loras, controlnet


class _Keyframes:
    """Keyframe images (display sRGB) for reprojection and small copies of every frame for the metric;
    what a resumed job did not make in this run is read back from disk."""

    def __init__(self, writer: FrameWriter, colorspace: str) -> None:
        self.writer = writer
        self.colorspace = colorspace
        self._keys: dict[int, Any] = {}
        self._small: dict[int, Any] = {}

    def key_image(self, frame: int) -> Any:
        if frame not in self._keys:
            self._keys[frame] = written_display(self.writer.read(frame), self.colorspace)
        return self._keys[frame]

    def forget_before(self, frame: int | None) -> None:
        for old in [k for k in self._keys if frame is None or k < frame]:
            del self._keys[old]

    def remember(self, frame: int, rgba: Any, keyframe: bool) -> None:
        if keyframe:
            self._keys[frame] = written_display(rgba, self.colorspace)
        self._small[frame] = metric_image(rgba, self.colorspace)

    def metric_image(self, frame: int) -> Any:
        if frame not in self._small:
            self._small[frame] = metric_image(self.writer.read(frame), self.colorspace)
        return self._small[frame]


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
    ) -> None:
        self.job_id = job_id
        self.store = store
        self.registry = registry
        self.assets = assets
        self.out_dir = out_dir
        self.device = device
        self.interrupts = interrupts

    def run(self) -> None:
        job_id = self.job_id
        req = self.store.request(job_id)
        model = self.registry.info(req.model)
        self.store.set_model_hash(job_id, model.hash)
        track = camera_track_from_proto(req.camera, req.output.width, req.output.height)
        colorspace = COLORSPACE_NAMES[req.output.colorspace]
        spec = shot_spec(req, model, track, self.assets)
        loras, controlnet = provenance(req, self.registry, model, spec.mode)
        header = JobHeader(
            job_id,
            req,
            track,
            fraction_from_proto(req.shot.fps),
            model.hash,
            colorspace,
            loras=json.dumps(loras, sort_keys=True),
            controlnet=json.dumps(controlnet, sort_keys=True) if controlnet else "",
        )
        writer = FrameWriter(self.store, self.out_dir, header)
        frames = list(range(req.shot.frame_start, req.shot.frame_end + 1))
        done = writer.reconcile(frames)

        renderer = ShotRenderer(
            spec, lambda mode: self.registry.load(req.model, self.device, mode), model.capabilities
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
        keys = _Keyframes(writer, colorspace)
        coverage: dict[int, float] = {}
        uses = lora_uses(req, self.registry)
        # The LoRAs go on the mode's pipeline (its UNet and text encoder are the model's own, shared by
        # every pipeline of the model) for this job only; whatever happens, they come off again.
        lora_pipeline = self.registry.load(req.model, self.device, spec.mode) if uses else None
        with applied_loras(lora_pipeline, uses):
            for item in plan_frames(frames, keyframe_step):
                if item.frame in done:
                    continue
                self.interrupts.before_frame(job_id, item.frame)
                display, cover = self._render(
                    item, renderer, keys, temporal, req.seed, len(done), len(frames)
                )
                rgba = writer.write(item.frame, display, renderer.alpha(item.frame), item.keyframe)
                keys.remember(item.frame, rgba, item.keyframe)
                if cover is not None:
                    coverage[item.frame] = round(cover, 4)
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
            upscale=f"{modes.UPSCALE_X4}+lanczos" if renderer.upscale_x4 else "lanczos",
            colorspace=colorspace,
            notes=notes,
            coverage=coverage,
            loras=loras,
            controlnet=controlnet,
        )
        measured = self._consistency(keys, renderer, spec, frames, depth_source, keyframe_step)
        doc = manifest.build(job_id, req, model, facts, self.store.frames(job_id).values(), measured)
        write_atomic(self.out_dir / "manifest.json", manifest.encode(doc))

    def _render(
        self,
        item: FramePlan,
        renderer: ShotRenderer,
        keys: _Keyframes,
        temporal: bool,
        seed: int,
        frames_done: int,
        frames_total: int,
    ) -> tuple[Any, float | None]:
        """(display image at output size, reprojection coverage or None)."""
        frame = item.frame
        if not item.keyframe:
            assert item.prev_key is not None and item.next_key is not None
            return renderer.inbetween(
                frame,
                (item.prev_key, keys.key_image(item.prev_key)),
                (item.next_key, keys.key_image(item.next_key)),
            )
        prev = None
        if temporal and item.prev_key is not None:
            prev = (item.prev_key, keys.key_image(item.prev_key))
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

        return renderer.keyframe(
            frame,
            frame_seed(seed, frame),
            prev,
            on_step=on_step,
            on_tick=lambda: self.interrupts.after_step(self.job_id, frame, 0),
        )

    @staticmethod
    def _consistency(
        keys: _Keyframes,
        renderer: ShotRenderer,
        spec: ShotSpec,
        frames: list[int],
        depth_source: str,
        keyframe_step: int,
    ) -> dict[str, Any]:
        """Warping error over the whole written shot (docs/temporal.md), with the exact flow (motion
        vectors included when the shot has them); with in-betweens and motion passes, also the same
        keyframes with in-betweens re-made camera-only and motion-aware, side by side."""
        mw, mh = metric_size(spec.width, spec.height)
        flow = renderer.flow(mw, mh)
        images = [keys.metric_image(f) for f in frames]
        value, pairs = warping_error(images, frames, flow)
        method = "independent" if keyframe_step == 1 else "motion_aware" if spec.has_motion else "camera_only"
        compared: dict[str, float] = {}
        if keyframe_step > 1 and spec.has_motion:
            small = dict(zip(frames, images, strict=True))
            plan = [p for p in plan_frames(frames, keyframe_step) if not p.keyframe]
            for name, use_motion in (("camera_only", False), ("motion_aware", True)):
                remade = dict(small)
                for p in plan:
                    assert p.prev_key is not None and p.next_key is not None
                    left, right = (p.prev_key, small[p.prev_key]), (p.next_key, small[p.next_key])
                    remade[p.frame], _ = inbetween(p.frame, left, right, flow, use_motion=use_motion)
                compared[name], _ = warping_error([remade[f] for f in frames], frames, flow)
        return manifest.consistency(value, pairs, (mw, mh), depth_source, spec.has_motion, method, compared)
