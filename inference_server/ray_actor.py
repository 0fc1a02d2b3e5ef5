"""A render actor: one per GPU of a Ray cluster (ray_executor.py creates them). It loads each model once
(the ModelRegistry caches pipelines per model and mode), renders chunks of a job's frame plan with the
shared frame loop and streams back step progress and each frame's pixels. It never writes a frame or
touches the job store: the head does (one writer).

``render`` is a Ray streaming generator; the diffusion runs in a thread of its own so that step
progress can be yielded while a frame is being made. ``interrupt`` runs in the "control" concurrency
group, beside a running render, and sets a flag the frame loop checks before each frame and after each
denoising step.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from genfx.proto import genfx_pb2 as pb
from genfx.wire import camera_track_from_proto
from inference_server.adapters import LoraSpec
from inference_server.devices import device_description, device_memory
from inference_server.engine.loras import applied_loras
from inference_server.engine.shot_renderer import ShotRenderer
from inference_server.engine.temporal import FramePlan
from inference_server.frame_loop import LoopSettings, render_frames
from inference_server.frame_writer import FrameEncoder, job_header
from inference_server.models import ModelRegistry
from inference_server.shot_job import lora_pipeline, lora_uses, provenance, shot_mode_of, shot_spec
from inference_server.storage import AssetStore
from inference_server.validation import is_temporal

log = logging.getLogger("genfx.ray_actor")

StopAt = Literal["frame", "step"]  # drain: finish the frame being made; cancel/stop: at the next step
CONTROL_GROUP = "control"
PROGRESS_INTERVAL_S = 0.05
_RENDERERS_KEPT = 2  # per-job renderers (passes, depth range) kept for the job's next chunk


@dataclass(frozen=True)
class ChunkTask:
    """A run of one job's frame plan, in order, for one actor."""

    chunk_id: str
    job_id: str
    request: bytes  # the job's GenerateRequest, serialized
    model_hash: str  # what the head's copy of the model hashes to; the actor's must match
    # The head's record of the job's trained weights (shot_job.provenance, JSON): every frame header
    # carries it, and the actor's own LoRA / ControlNet files must hash the same.
    loras: str
    controlnet: str
    items: list[FramePlan]
    known_keys: dict[int, npt.NDArray[np.float32]]  # keyframes the items read but don't make (from disk)
    assets: dict[str, Any] = field(default_factory=dict)  # asset id -> ObjectRef of the file's bytes


@dataclass(frozen=True)
class ActorAdapters:
    """The server's trained weights (models config), as plain paths every node has: model name -> sim
    ControlNet folder; LoRA name -> (folder, declared base model)."""

    sim_controlnets: dict[str, str] = field(default_factory=dict)
    loras: dict[str, tuple[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class StepProgress:
    frame: int
    step: int
    steps: int


@dataclass(frozen=True)
class ActorFacts:
    node_id: str
    node_ip: str
    device: str
    description: str
    memory_bytes: int


class _Stopped(Exception):
    """Raised in the frame loop when the head interrupted the chunk."""


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


_END = object()


class RenderActor:
    def __init__(self, models: dict[str, str], cache_dir: str, adapters: ActorAdapters | None = None) -> None:
        import diffusers
        import OpenEXR
        import ray
        import transformers

        OpenEXR.set_global_thread_count(os.cpu_count() or 1)  # actors encode the EXRs
        diffusers.utils.logging.disable_progress_bar()
        transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        # Ray hands each actor its own GPU as CUDA device 0 (CUDA_VISIBLE_DEVICES).
        self.device = "cuda:0" if ray.get_gpu_ids() else "cpu"
        context = ray.get_runtime_context()
        self.facts = ActorFacts(
            node_id=context.get_node_id(),
            node_ip=ray.util.get_node_ip_address(),  # type: ignore[no-untyped-call]
            device=self.device,
            description=device_description(self.device),
            memory_bytes=device_memory(self.device),
        )
        # Names this actor in manifests: several actors on one node all see their GPU as cuda:0.
        self.label = (
            f"ray {self.facts.node_ip} node {self.facts.node_id[:8]}"
            f" actor {(context.get_actor_id() or '')[:8]} ({self.device})"
        )
        cache = Path(cache_dir)
        adapters = adapters or ActorAdapters()
        self.registry = ModelRegistry(
            {name: Path(path) for name, path in models.items()},
            cache / "models",
            sim_controlnets={name: Path(path) for name, path in adapters.sim_controlnets.items()},
            loras={name: LoraSpec(Path(path), base) for name, (path, base) in adapters.loras.items()},
        )
        self.assets = AssetStore(cache / "assets")
        self._lock = threading.Lock()
        self._stops: dict[str, StopAt] = {}
        self._ended: deque[str] = deque(maxlen=256)
        self._renderers: OrderedDict[str, ShotRenderer] = OrderedDict()

    def describe(self) -> ActorFacts:
        return self.facts

    def interrupt(self, chunk_id: str, at: StopAt) -> None:
        """Stops a chunk before its next frame ("frame") or after its current step ("step"). May arrive
        before the chunk starts (it is then honoured at once) or after it ended (ignored)."""
        with self._lock:
            if chunk_id not in self._ended and self._stops.get(chunk_id) != "step":
                self._stops[chunk_id] = at

    def render(self, task: ChunkTask) -> Iterator[StepProgress | Any]:
        """Yields StepProgress for each denoising step and a RenderedFrame for each frame, in plan order;
        ends early (no error) when interrupted; raises what rendering raised."""
        out: queue.Queue[object] = queue.Queue()
        hooks = _Hooks(out, lambda: self._stops.get(task.chunk_id))

        def work() -> None:
            try:
                renderer, settings, encoder = self._prepare(task)

                def keys(frame: int) -> npt.NDArray[np.float32]:
                    return np.array(task.known_keys[frame])  # writable: Ray's arrays are read-only views

                req = encoder.header.request
                uses = lora_uses(req, self.registry)
                pipeline = lora_pipeline(self.registry, req.model, self.device, renderer.spec, uses)
                # The job's LoRAs for this chunk only: the actor's cached pipelines serve other jobs next.
                with applied_loras(pipeline, uses):
                    for rendered in render_frames(renderer, task.items, settings, keys, hooks, encoder):
                        out.put(rendered)
            except _Stopped:
                pass
            except BaseException as exc:  # handed to the generator, which raises it to the head
                out.put(_Failure(exc))
            finally:
                out.put(_END)

        thread = threading.Thread(target=work, name=f"genfx-render-{task.chunk_id[:8]}", daemon=True)
        thread.start()
        try:
            while (message := out.get()) is not _END:
                if isinstance(message, _Failure):
                    raise message.error
                yield message
        finally:
            thread.join()
            with self._lock:
                self._stops.pop(task.chunk_id, None)
                self._ended.append(task.chunk_id)

    def _prepare(self, task: ChunkTask) -> tuple[ShotRenderer, LoopSettings, FrameEncoder]:
        req = pb.GenerateRequest.FromString(task.request)
        model = self.registry.info(req.model)
        if model.hash != task.model_hash:
            raise ValueError(
                f"model {req.model!r} on node {self.facts.node_ip} ({model.path}) hashes to"
                f" {model.hash[:12]}, the head's copy to {task.model_hash[:12]}:"
                " every node needs the same model files"
            )
        loras, controlnet = provenance(req, self.registry, model, shot_mode_of(req, model))
        if (loras, controlnet) != (task.loras, task.controlnet):
            raise ValueError(
                f"the LoRA or sim ControlNet files on node {self.facts.node_ip} differ from the head's"
                f" (node: {loras} {controlnet}; head: {task.loras} {task.controlnet}):"
                " every node needs the same trained weights"
            )
        renderer = self._renderers.get(task.job_id)
        if renderer is None:
            self._fetch_assets(task.assets)
            track = camera_track_from_proto(req.camera, req.output.width, req.output.height)
            spec = shot_spec(req, model, track, self.assets)
            device = self.device
            renderer = ShotRenderer(
                spec, lambda mode: self.registry.load(req.model, device, mode), model.capabilities
            )
            self._renderers[task.job_id] = renderer
            while len(self._renderers) > _RENDERERS_KEPT:
                self._renderers.popitem(last=False)
        self._renderers.move_to_end(task.job_id)
        header = job_header(task.job_id, req, task.model_hash, task.loras, task.controlnet)
        settings = LoopSettings(req.seed, is_temporal(req), header.colorspace, self.label)
        return renderer, settings, FrameEncoder(header)

    def _fetch_assets(self, refs: dict[str, Any]) -> None:
        """The job's passes into this node's content-addressed cache; only missing ones travel."""
        import ray

        for asset_id, ref in refs.items():
            if not self.assets.path(asset_id).exists():
                data: bytes = ray.get(ref)
                self.assets.put([data], len(data), asset_id)


class _Hooks:
    def __init__(self, out: queue.Queue[object], stop_at: Any) -> None:
        self.out = out
        self.stop_at = stop_at
        self._last_progress = 0.0

    def before_frame(self, frame: int) -> None:
        if self.stop_at() is not None:
            raise _Stopped()

    def after_step(self, frame: int, step: int, steps: int) -> None:
        # Progress is live and may be coalesced: at most one event per PROGRESS_INTERVAL_S crosses to
        # the head (and a frame's last step always), so fast steps don't pay a message each.
        now = time.monotonic()
        if step == steps or now - self._last_progress >= PROGRESS_INTERVAL_S:
            self._last_progress = now
            self.out.put(StepProgress(frame, step, steps))
        self.tick(frame)

    def tick(self, frame: int) -> None:
        if self.stop_at() == "step":
            raise _Stopped()
