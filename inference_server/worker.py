"""One worker thread per device: claims the best queued job, runs it (shot_job.py), records how it
ended. It stops a job between two frames (drain, on shutdown) or between two denoising steps (cancel,
or a drain that took too long).

A worker never dies of an error. A job that fails is recorded FAILED; a job that hits a storage failure
(full disk, damaged database) goes back to the queue with the reason (FAILED after
MAX_STORAGE_FAILURES), and the worker reports itself not ready (health.py: the server goes
NOT_SERVING) until a probe write to the data folder and the database succeeds again. An outcome the
database refuses to record is retried until it is recorded, so no job is left RUNNING by a live worker.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from genfx.proto import genfx_pb2 as pb
from inference_server.devices import device_problem
from inference_server.engine.common import RenderCancelled
from inference_server.frame_loop import FrameHooks
from inference_server.frame_writer import WriterSettings
from inference_server.health import Health
from inference_server.jobs import JobStore
from inference_server.models import ModelRegistry
from inference_server.shot_job import ShotJob
from inference_server.step_times import StepTimes
from inference_server.storage import AssetStore, DataDir, describe_failure, storage_failure

log = logging.getLogger("genfx.worker")

MAX_STORAGE_FAILURES = 3  # a job that fills the disk again after it was freed fails instead of looping
BACKOFF_S = (0.5, 1.0, 2.0, 5.0)  # between retries of a refused write or a storage probe (1 MiB)


class RunnableJob(Protocol):
    """What a worker runs: shot_job.ShotJob (a test may give a stand-in that fails like it)."""

    job_id: str

    def run(self, hooks: FrameHooks) -> None: ...

    def progress(self, frame: int, step: int, steps: int) -> None: ...


# (job id, store, registry, assets, output folder, device) -> the job
JobFactory = Callable[[str, JobStore, ModelRegistry, AssetStore, Path, str], RunnableJob]


class WorkerStopping(Exception):
    """Raised between frames or steps when the server shuts down: the job goes back to the queue."""


@dataclass(frozen=True)
class Outcome:
    state: int  # final state, or QUEUED to requeue
    message: str = ""
    storage: bool = False  # ended by a storage failure: wait for storage before the next job


def backoff(attempt: int) -> float:
    return BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]


class Worker(threading.Thread):
    def __init__(
        self,
        device: str,
        store: JobStore,
        registry: ModelRegistry,
        data: DataDir,
        health: Health | None = None,
        job_factory: JobFactory | None = None,
        *,
        writers: WriterSettings | None = None,
        step_times: StepTimes | None = None,
    ) -> None:
        """``job_factory``: ShotJob with ``writers`` (its frame writer pool) and ``step_times`` unless
        given."""
        super().__init__(name=f"genfx-worker-{device}", daemon=True)
        self.device = device
        self.store = store
        self.registry = registry
        self.data = data
        self.health = health or Health()
        self.job_factory: JobFactory = job_factory or (
            lambda job_id, store, registry, assets, folder, device: ShotJob(
                job_id, store, registry, assets, folder, device, writers, step_times
            )
        )
        self._problem = ""  # why this worker's device cannot run (found when it starts)
        self.label = f"worker {device}"
        self.current_job = ""
        self._draining = threading.Event()  # finish the current frame, then requeue and stop
        self._stop_requested = threading.Event()  # stop between two steps
        self._storage_failures: dict[str, int] = {}

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

    def start(self) -> None:
        # Before the thread runs: health is SERVING once started, unless torch cannot see the device (a
        # worker for it would fail every job).
        self._problem = device_problem(self.device) or ""
        self.health.report(self.label, not self._problem, self._problem)
        super().start()

    def run(self) -> None:
        if self._problem:
            return  # health says why, and keeps saying it
        try:
            while not self._draining.is_set():
                try:
                    self._next_job()
                except Exception as exc:  # the store failed outside a job (claiming): wait for it
                    log.error("%s: %s", self.label, describe_failure(exc, self.data))
                    self._wait_for_storage(exc)
        finally:
            self.health.report(self.label, False, "worker stopped")

    def _next_job(self) -> None:
        job_id = self.store.claim_next()
        if job_id is None:
            self.store.wait_for_change(1.0)
            return
        self.current_job = job_id
        try:
            outcome = self._run_job(job_id)
        finally:
            self.current_job = ""
        self._record(job_id, outcome)
        if outcome.storage:
            self._wait_for_storage(None)

    # ---- interrupts ------------------------------------------------------------------------------

    def check_before_frame(self, job_id: str, frame: int) -> None:
        if self._draining.is_set():
            raise WorkerStopping()
        self.check_between_steps(job_id, frame, 0)

    def check_between_steps(self, job_id: str, frame: int, step: int) -> None:
        if self._stop_requested.is_set():
            raise WorkerStopping()
        if self.store.cancel_requested(job_id):
            where = f"frame {frame}" + (f" after step {step}" if step else " before it started")
            raise RenderCancelled(f"cancelled by CancelJob at {where}")

    # ---- one job ----------------------------------------------------------------------------------

    def _run_job(self, job_id: str) -> Outcome:
        started = time.time()
        try:
            job = self.job_factory(
                job_id, self.store, self.registry, self.data.assets, self.data.job_dir(job_id), self.device
            )
            job.run(_Hooks(self, job))
        except RenderCancelled as exc:
            log.info("job %s cancelled: %s", job_id, exc)
            return Outcome(pb.JOB_STATE_CANCELLED, str(exc) or "cancelled")
        except WorkerStopping:
            log.info("job %s requeued at shutdown", job_id)
            return Outcome(pb.JOB_STATE_QUEUED, "server shutting down; the job resumes when it starts again")
        except Exception as exc:  # a failed job must never take the worker down
            kind = storage_failure(exc)
            if kind is None:
                log.error("job %s failed:\n%s", job_id, traceback.format_exc())
                message = f"{type(exc).__name__}: {describe_failure(exc, self.data)}"
                return Outcome(pb.JOB_STATE_FAILED, message)
            return self._storage_outcome(job_id, kind, exc)
        log.info("job %s succeeded in %.1f s", job_id, time.time() - started)
        return Outcome(pb.JOB_STATE_SUCCEEDED)

    def _storage_outcome(self, job_id: str, kind: str, exc: BaseException) -> Outcome:
        failures = self._storage_failures.get(job_id, 0) + 1
        self._storage_failures[job_id] = failures
        what = f"the server's storage is {kind} ({describe_failure(exc, self.data)})"
        log.error("job %s: %s (storage failure %d of %d)", job_id, what, failures, MAX_STORAGE_FAILURES)
        if failures >= MAX_STORAGE_FAILURES:
            message = f"{what}, {failures} times; frames written so far are kept"
            return Outcome(pb.JOB_STATE_FAILED, message, storage=True)
        message = f"{what}; the job resumes at its first missing frame once storage works again"
        return Outcome(pb.JOB_STATE_QUEUED, message, storage=True)

    def _record(self, job_id: str, outcome: Outcome) -> None:
        """Records the outcome; while the store refuses (a full disk), retries with backoff and reports
        this worker not ready. Gives up only at shutdown: the next start requeues a RUNNING job."""
        attempt = 0
        while True:
            try:
                if outcome.state == pb.JOB_STATE_QUEUED:
                    self.store.requeue(job_id, outcome.message)
                else:
                    self.store.finish(job_id, outcome.state, outcome.message)
                    self._storage_failures.pop(job_id, None)
                break
            except Exception as exc:
                reason = f"cannot record job {job_id}: {describe_failure(exc, self.data)}"
                self.health.report(self.label, False, reason)
                if self._stop_requested.is_set() or self._draining.wait(backoff(attempt)):
                    log.error("%s: %s; left for the next start to requeue", self.label, reason)
                    return
                attempt += 1
        if not outcome.storage:
            self.health.report(self.label, True)

    def _wait_for_storage(self, failure: BaseException | None) -> None:
        """Not ready until a probe write to the data folder and to the database both succeed."""
        reason = describe_failure(failure, self.data) if failure else "storage failed during a job"
        attempt = 0
        while not self._draining.is_set():
            self.health.report(self.label, False, reason)
            if self._draining.wait(backoff(attempt)):
                return
            attempt += 1
            try:
                self.data.probe_writable()
                self.store.probe_write()
            except Exception as exc:
                reason = describe_failure(exc, self.data)
                continue
            break
        self.health.report(self.label, True)


class _Hooks:
    """The frame loop's hooks in a worker thread: progress straight to the store, interrupts from the
    worker (drain, stop) and the store's in-memory cancel flags."""

    def __init__(self, worker: Worker, job: RunnableJob) -> None:
        self.worker = worker
        self.job = job

    def before_frame(self, frame: int) -> None:
        self.worker.check_before_frame(self.job.job_id, frame)

    def after_step(self, frame: int, step: int, steps: int) -> None:
        self.job.progress(frame, step, steps)
        # Checked after every step: cancel stops the job before the next step starts.
        self.worker.check_between_steps(self.job.job_id, frame, step)

    def tick(self, frame: int) -> None:
        self.worker.check_between_steps(self.job.job_id, frame, 0)
