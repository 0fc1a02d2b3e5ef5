"""Jobs on a Ray cluster (`genfx-server serve --ray`): this process is the Ray driver on the head node
and keeps the gRPC front door, the job store and every frame write; one render actor per GPU
(ray_actor.py) does the diffusion.

- Actors: one per GPU of every alive node (``num_gpus=1``), or ``cpu_actors_per_node`` per node with
  ``num_cpus=1`` on a CPU-only cluster; pinned to their node, re-created when a node joins or an actor
  dies. Health is SERVING while at least one actor is ready.
- Scheduling: a free actor takes the next chunk of the highest-priority running job, unless a queued
  job has a strictly higher priority (then that job is claimed and planned). A temporal job (keyframe
  chain) is one chunk, so it stays on one actor; an independent-frame job is split into chunks of at
  most ``max_chunk_frames`` frames across the actors.
- Faults: frames that arrived are written and stay; when an actor or its node dies, the unfinished
  frames of its chunk go back to the front of the job's queue (a chunk whose actors died
  ``max_actor_losses`` times fails the job). With no actor left, running jobs go back to the QUEUED
  state and queued jobs wait, each with a message saying why; they resume when an actor is back.
- Cancel and shutdown reach a running chunk through the actor's ``interrupt`` (between two steps, or
  after the current frame on a drain).
"""

from __future__ import annotations

import logging
import math
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genfx.proto import genfx_pb2 as pb
from inference_server.adapters import LoraSpec
from inference_server.engine.passes import PASSES
from inference_server.engine.temporal import FramePlan
from inference_server.frame_loop import RenderedFrame, needed_keys
from inference_server.jobs import JobStore
from inference_server.models import ModelRegistry
from inference_server.ray_actor import (
    CONTROL_GROUP,
    ActorAdapters,
    ActorFacts,
    ChunkTask,
    RenderActor,
    StepProgress,
    StopAt,
)
from inference_server.shot_job import ShotJob
from inference_server.storage import DataDir

log = logging.getLogger("genfx.ray")

WAITING = "waiting for a render actor: none is ready in the Ray cluster"
CANCELLED = "cancelled by CancelJob; frames already written are kept"
SHUTTING_DOWN = "server shutting down; the job resumes when it starts again"
REFRESH_S = 1.0  # how often the actor set is compared with the cluster's nodes
RETRY_FAILED_START_S = 30.0  # a node whose actor failed to start is retried after this long


class RayConnectError(ValueError):
    """The Ray cluster could not be reached (the server exits with the message)."""


@dataclass(frozen=True)
class RayOptions:
    address: str = "auto"  # a running cluster: "auto" (the one on this node) or the GCS host:port
    cpu_actors_per_node: int = 0  # 0: one actor per GPU; N: a CPU-only cluster, N actors (1 CPU) a node
    node_resource: str = ""  # only nodes with this custom resource get actors (a farm's GenFX nodes)
    cache_dir: Path | None = None  # per node: built-in models and passes; default <data-dir>/ray-cache
    max_chunk_frames: int = 8
    max_actor_losses: int = 3


@dataclass
class _Chunk:
    items: list[FramePlan]
    losses: int = 0  # times an actor died under (part of) it
    id: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass
class _Slot:
    """A render actor and the head thread that feeds it."""

    actor: Any
    node_id: str
    facts: ActorFacts | None = None  # set once the actor answered: it is ready
    gone: bool = False
    current_job: str = ""


@dataclass
class _Job:
    shot: ShotJob
    priority: int
    order: int  # claim order: older first among equal priorities
    assets: dict[str, Any]
    pending: deque[_Chunk] = field(default_factory=deque)
    in_flight: dict[str, _Slot] = field(default_factory=dict)  # chunk id -> slot
    outcome: tuple[int, str] | None = None  # (final state, or QUEUED to requeue; message)

    @property
    def id(self) -> str:
        return self.shot.job_id


class RayExecutor:
    def __init__(
        self,
        options: RayOptions,
        models: dict[str, Path],
        store: JobStore,
        registry: ModelRegistry,
        data: DataDir,
        *,
        sim_controlnets: Mapping[str, Path] | None = None,
        loras: Mapping[str, LoraSpec] | None = None,
    ) -> None:
        import ray

        if options.cpu_actors_per_node < 0:
            raise ValueError(
                f"--ray-cpu-actors: must be 0 (one actor per GPU) or more (got {options.cpu_actors_per_node})"
            )
        if options.max_chunk_frames < 1 or options.max_actor_losses < 1:
            raise ValueError("RayOptions: max_chunk_frames and max_actor_losses must be at least 1")
        self.options = options
        self.store = store
        self.registry = registry
        self.data = data
        self._models = {name: str(Path(path).resolve()) for name, path in models.items()}
        # Trained weights, by the same paths on every node (like the models): plain data for the actors.
        self._adapters = ActorAdapters(
            {name: str(Path(path).resolve()) for name, path in (sim_controlnets or {}).items()},
            {name: (str(Path(spec.path).resolve()), spec.base_model) for name, spec in (loras or {}).items()},
        )
        self._cache_dir = str((options.cache_dir or data.root / "ray-cache").resolve())
        if not ray.is_initialized():
            try:
                ray.init(address=options.address, log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise RayConnectError(
                    f"--ray: cannot join a Ray cluster at {options.address!r}: {exc}"
                    " (start one with `ray start --head`, or pass the head's host:port)"
                ) from exc
        remote: Any = ray.remote  # its overloads don't list concurrency_groups
        self._actor_class = remote(concurrency_groups={CONTROL_GROUP: 1})(RenderActor)
        self._lock = threading.Condition()
        self._slots: list[_Slot] = []
        self._threads: list[threading.Thread] = []
        self._jobs: dict[str, _Job] = {}
        self._claims = 0
        self._draining = False
        self._closed = threading.Event()
        self._retry_after: dict[str, float] = {}  # node -> monotonic time
        self._capacity = False
        self._callbacks: list[Callable[[bool], None]] = []
        self.frames_rescheduled = 0  # frames whose actor died before sending them (tests, logs)
        self._supervisor = threading.Thread(target=self._supervise, name="genfx-ray-supervisor", daemon=True)

    # ---- Executor ---------------------------------------------------------------------------------

    def start(self) -> None:
        self._refresh_actors()
        self._supervisor.start()

    def drain(self) -> None:
        with self._lock:
            self._draining = True
            self._closed.set()
            ending = [
                j for j in self._jobs.values() if self._end(j, pb.JOB_STATE_QUEUED, SHUTTING_DOWN, "frame")
            ]
            self._lock.notify_all()
        for job in ending:
            self._conclude(job)

    def stop(self) -> None:
        with self._lock:
            for job in self._jobs.values():
                self._interrupt(job, "step")

    def join(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        for thread in [self._supervisor, *self._threads]:
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))
        if any(t.is_alive() for t in self._threads):
            return False
        import ray

        with self._lock:
            slots, self._slots = self._slots, []
        for slot in slots:
            ray.kill(slot.actor)
        return True

    def can_run(self) -> bool:
        with self._lock:
            return self._ready_count() > 0

    def on_capacity_change(self, callback: Callable[[bool], None]) -> None:
        self._callbacks.append(callback)

    def devices(self) -> list[pb.DeviceInfo]:
        with self._lock:
            ready = [(s.facts, s.current_job) for s in self._slots if s.facts is not None and not s.gone]
        return [
            pb.DeviceInfo(
                name=f"{f.node_ip}/{f.device}",
                description=f"Ray actor on node {f.node_id[:12]}: {f.description}",
                memory_bytes=f.memory_bytes,
                running_job_id=job,
            )
            for f, job in ready
        ]

    def describe(self) -> str:
        kind = (
            f"{self.options.cpu_actors_per_node} CPU actor(s) a node"
            if self.options.cpu_actors_per_node
            else "an actor per GPU"
        )
        return f"Ray cluster at {self.options.address}, {kind}"

    # ---- actors -----------------------------------------------------------------------------------

    def _ready_count(self) -> int:
        return sum(1 for s in self._slots if s.facts is not None and not s.gone)

    def _wanted(self, resources: dict[str, float]) -> int:
        if self.options.node_resource and resources.get(self.options.node_resource, 0) <= 0:
            return 0
        if self.options.cpu_actors_per_node:
            return self.options.cpu_actors_per_node if resources.get("CPU", 0) >= 1 else 0
        return int(resources.get("GPU", 0))

    def _refresh_actors(self) -> None:
        """One actor per GPU (or CPU slot) of every alive node; the dead nodes' actors forgotten."""
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        nodes: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
        alive = {n["NodeID"]: n for n in nodes if n.get("Alive")}
        now = time.monotonic()
        resources = {"num_gpus": 0, "num_cpus": 1} if self.options.cpu_actors_per_node else {"num_gpus": 1}
        with self._lock:
            if self._closed.is_set():
                return
            for slot in self._slots:
                if slot.node_id not in alive:
                    slot.gone = True  # its thread sees the actor's death and settles its chunk
            for node_id, node in alive.items():
                have = sum(1 for s in self._slots if s.node_id == node_id and not s.gone)
                if self._retry_after.get(node_id, 0.0) > now:
                    continue
                for _ in range(self._wanted(node.get("Resources", {})) - have):
                    actor = self._actor_class.options(
                        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False), **resources
                    ).remote(self._models, self._cache_dir, self._adapters)
                    slot = _Slot(actor, node_id)
                    self._slots.append(slot)
                    thread = threading.Thread(
                        target=self._feed, args=(slot,), name=f"genfx-ray-{node_id[:8]}", daemon=True
                    )
                    self._threads.append(thread)
                    thread.start()
            ending = [] if self._ready_count() else self._release_idle_jobs()
        for job in ending:
            self._conclude(job)
        self._update_capacity()

    def _update_capacity(self) -> None:
        with self._lock:
            capacity = self._ready_count() > 0
            changed, self._capacity = capacity != self._capacity, capacity
        if not capacity:
            self.store.note_queued(WAITING)
        if changed:
            log.info("render actors ready: %s", "yes" if capacity else f"none ({WAITING})")
            for callback in self._callbacks:
                callback(capacity)

    def _supervise(self) -> None:
        """Reacts to cancels at once (the store notifies on every change) and refreshes the actors."""
        last_refresh = time.monotonic()
        while not self._closed.is_set():
            self.store.wait_for_change(0.5)
            with self._lock:
                cancelled = [
                    j for j in self._jobs.values() if j.outcome is None and self.store.cancel_requested(j.id)
                ]
                ending = [j for j in cancelled if self._end(j, pb.JOB_STATE_CANCELLED, CANCELLED, "step")]
                self._lock.notify_all()  # a newly queued job may be waiting for a free actor
            for job in ending:
                self._conclude(job)
            if time.monotonic() - last_refresh >= REFRESH_S:
                last_refresh = time.monotonic()
                try:
                    self._refresh_actors()
                except Exception:  # a GCS hiccup must not end the supervisor
                    log.warning("refreshing the render actors failed:\n%s", traceback.format_exc())

    # ---- one actor's loop (a head thread per actor) --------------------------------------------

    def _feed(self, slot: _Slot) -> None:
        import ray

        try:
            facts: ActorFacts = ray.get(slot.actor.describe.options(concurrency_group=CONTROL_GROUP).remote())
        except ray.exceptions.RayError as exc:
            log.warning("render actor on node %s did not start: %s", slot.node_id[:12], exc)
            with self._lock:
                slot.gone = True
                self._slots.remove(slot)
                self._retry_after[slot.node_id] = time.monotonic() + RETRY_FAILED_START_S
            return
        with self._lock:
            slot.facts = facts
        log.info("render actor ready on %s (%s)", facts.node_ip, facts.description)
        self._update_capacity()
        while True:
            work = self._next_chunk(slot)
            if work is None:
                break
            if not self._run_chunk(slot, *work):
                break
        with self._lock:
            slot.gone = True
            if slot in self._slots and not self._draining:
                self._slots.remove(slot)
            ending = [] if self._ready_count() else self._release_idle_jobs()
        for job in ending:
            self._conclude(job)
        self._update_capacity()

    def _next_chunk(self, slot: _Slot) -> tuple[_Job, _Chunk] | None:
        with self._lock:
            while not self._draining and not slot.gone:
                best = max(
                    (j for j in self._jobs.values() if j.pending and j.outcome is None),
                    key=lambda j: (j.priority, -j.order),
                    default=None,
                )
                queued = self.store.best_queued()
                if queued is not None and (best is None or queued[1] > best.priority):
                    self._claim()
                    continue
                if best is not None:
                    chunk = best.pending.popleft()
                    best.in_flight[chunk.id] = slot
                    slot.current_job = best.id
                    return best, chunk
                self._lock.wait(0.5)
        return None

    def _claim(self) -> None:
        """Claims the best queued job and plans its chunks (under the lock: a claim is rare and short)."""
        job_id = self.store.claim_next()
        if job_id is None:
            return
        try:
            shot = ShotJob(
                job_id, self.store, self.registry, self.data.assets, self.data.job_dir(job_id), "ray"
            )
            assets = self._put_assets(shot.request)
        except Exception as exc:
            log.error("job %s failed to start:\n%s", job_id, traceback.format_exc())
            self.store.finish(job_id, pb.JOB_STATE_FAILED, f"{type(exc).__name__}: {exc}")
            return
        self._claims += 1
        job = _Job(shot, shot.request.priority, self._claims, assets)
        todo = shot.todo
        if shot.temporal:
            sizes = [len(todo)] if todo else []  # a keyframe chain stays on one actor
        else:
            per = min(
                self.options.max_chunk_frames, max(1, math.ceil(len(todo) / max(1, self._ready_count())))
            )
            sizes = [per] * (len(todo) // per) + ([len(todo) % per] if len(todo) % per else [])
        start = 0
        for size in sizes:
            job.pending.append(_Chunk(todo[start : start + size]))
            start += size
        self._jobs[job_id] = job
        log.info("job %s: %d frame(s) to make in %d chunk(s)", job_id, len(todo), len(job.pending))
        if not todo:
            self._jobs.pop(job_id)
            threading.Thread(target=self._conclude, args=(job,), daemon=True).start()

    def _put_assets(self, req: pb.GenerateRequest) -> dict[str, Any]:
        """The job's passes in the object store, once per job: actors on other machines can't read the
        head's disk."""
        import ray

        refs: dict[str, Any] = {}
        for f in req.conditioning.frames:
            for kind in PASSES:
                asset_id = getattr(f, f"{kind}_asset_id")
                if asset_id and asset_id not in refs:
                    refs[asset_id] = ray.put(self.data.assets.path(asset_id).read_bytes())
        return refs

    def _run_chunk(self, slot: _Slot, job: _Job, chunk: _Chunk) -> bool:
        """Streams one chunk, writing each frame as it arrives. False when the actor is gone."""
        import ray

        error = ""
        lost: BaseException | None = None
        try:
            task = ChunkTask(
                chunk_id=chunk.id,
                job_id=job.id,
                request=job.shot.request.SerializeToString(),
                model_hash=job.shot.model.hash,
                loras=job.shot.loras_json,
                controlnet=job.shot.controlnet_json,
                items=chunk.items,
                known_keys={k: job.shot.key_image(k) for k in needed_keys(chunk.items, job.shot.temporal)},
                assets=job.assets,
            )
            stream = slot.actor.render.options(num_returns="streaming").remote(task)
            for ref in stream:
                message = ray.get(ref)
                if isinstance(message, StepProgress):
                    job.shot.progress(message.frame, message.step, message.steps)
                elif isinstance(message, RenderedFrame):
                    job.shot.write(message)
        except ray.exceptions.RayTaskError as exc:  # rendering raised on the actor: the job fails
            cause = exc.cause if isinstance(getattr(exc, "cause", None), BaseException) else exc
            error = f"{type(cause).__name__}: {cause}"
            log.error("job %s failed on %s: %s", job.id, slot.node_id[:12], error)
        except ray.exceptions.RayError as exc:  # the actor, its node or the object went away
            lost = exc
        except Exception as exc:  # on the head: a frame that could not be written, a key not on disk
            error = f"{type(exc).__name__}: {exc}"
            log.error("job %s failed on the head:\n%s", job.id, traceback.format_exc())
        with self._lock:
            slot.current_job = ""
            if lost is not None:
                slot.gone = True
            ending = self._settle(job, chunk, error, lost)
            self._lock.notify_all()
        if ending:
            self._conclude(job)
        return lost is None

    # ---- a job's outcome (under the lock) ---------------------------------------------------------

    def _settle(self, job: _Job, chunk: _Chunk, error: str, lost: BaseException | None) -> bool:
        """Books a chunk's end; True when the job is over on this head (conclude it)."""
        job.in_flight.pop(chunk.id, None)
        remaining = job.shot.missing(chunk.items)
        if error:
            self._end(job, pb.JOB_STATE_FAILED, error, "step")
        elif remaining and job.outcome is None:
            losses = chunk.losses + (1 if lost is not None else 0)
            if lost is not None:
                self.frames_rescheduled += len(remaining)
                log.warning(
                    "job %s: render actor lost (%s); %d frame(s) rescheduled",
                    job.id,
                    type(lost).__name__,
                    len(remaining),
                )
            if losses >= self.options.max_actor_losses:
                frames = f"{remaining[0].frame}-{remaining[-1].frame}"
                self._end(
                    job,
                    pb.JOB_STATE_FAILED,
                    f"render actors died {losses} times while making frames {frames} (last: {lost})",
                    "step",
                )
            else:
                job.pending.appendleft(_Chunk(remaining, losses))
        if job.in_flight:
            return False
        if job.outcome is None and job.pending and not self._ready_count():
            job.outcome = (pb.JOB_STATE_QUEUED, WAITING)
        if job.outcome is not None or not job.pending:
            self._jobs.pop(job.id, None)
            return True
        return False

    def _end(self, job: _Job, state: int, message: str, at: StopAt) -> bool:
        """Decides a job's outcome (the first decision stands) and stops its chunks; True when nothing of
        it is running any more (conclude it now; otherwise its last chunk's settle does)."""
        if job.outcome is None:
            job.outcome = (state, message)
            job.pending.clear()
        self._interrupt(job, at)
        if job.in_flight:
            return False
        self._jobs.pop(job.id, None)
        return True

    def _interrupt(self, job: _Job, at: StopAt) -> None:
        for chunk_id, slot in job.in_flight.items():
            slot.actor.interrupt.options(concurrency_group=CONTROL_GROUP).remote(chunk_id, at)

    def _release_idle_jobs(self) -> list[_Job]:
        """No actor is left: jobs with nothing running go back to the queue, to wait with a message."""
        idle = [j for j in self._jobs.values() if not j.in_flight]
        for job in idle:
            if job.outcome is None:
                job.outcome = (pb.JOB_STATE_QUEUED, WAITING)
            self._jobs.pop(job.id, None)
        return idle

    def _conclude(self, job: _Job) -> None:
        """Records how a job ended (outside the lock: the manifest reads every frame)."""
        state, message = job.outcome or (pb.JOB_STATE_SUCCEEDED, "")
        try:
            if state == pb.JOB_STATE_QUEUED:
                self.store.requeue(job.id, message)
                log.info("job %s back in the queue: %s", job.id, message)
            elif state != pb.JOB_STATE_SUCCEEDED:
                self.store.finish(job.id, state, message)
                log.info("job %s ended: %s", job.id, message)
            elif not job.shot.complete():
                self.store.requeue(job.id, "frames missing after every chunk ended; resuming")
            else:
                job.shot.finish()
                self.store.finish(job.id, pb.JOB_STATE_SUCCEEDED)
                log.info("job %s succeeded", job.id)
        except Exception as exc:
            log.error("job %s failed at the end:\n%s", job.id, traceback.format_exc())
            self.store.finish(job.id, pb.JOB_STATE_FAILED, f"{type(exc).__name__}: {exc}")
