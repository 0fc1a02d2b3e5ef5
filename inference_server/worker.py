"""One worker thread per device: claims the best queued job, runs it (shot_job.py), records how it
ended. It stops a job between two frames (drain, on shutdown) or between two denoising steps (cancel,
or a drain that took too long).
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable

from genfx.proto import genfx_pb2 as pb
from inference_server.devices import device_problem
from inference_server.engine.common import RenderCancelled
from inference_server.frame_writer import WriterSettings
from inference_server.jobs import JobStore
from inference_server.models import ModelRegistry
from inference_server.shot_job import ShotJob
from inference_server.step_times import StepTimes
from inference_server.storage import DataDir

log = logging.getLogger("genfx.worker")


class WorkerStopping(Exception):
    """Raised between frames or steps when the server shuts down: the job goes back to the queue."""


# Told whether a worker can run jobs: (device, can run, why not).
StateReport = Callable[[str, bool, str], None]


class Worker(threading.Thread):
    def __init__(
        self,
        device: str,
        store: JobStore,
        registry: ModelRegistry,
        data: DataDir,
        writers: WriterSettings | None = None,
        step_times: StepTimes | None = None,
        on_state: StateReport | None = None,
    ) -> None:
        super().__init__(name=f"genfx-worker-{device}", daemon=True)
        self.device = device
        self.store = store
        self.registry = registry
        self.data = data
        self.writers = writers
        self.step_times = step_times
        self.on_state = on_state
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
        problem = device_problem(self.device)
        if problem:
            log.error("worker %s cannot run: %s", self.device, problem)
            self._report(False, problem)
            return
        self._report(True)
        try:
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
        finally:
            self._report(False, "worker stopped")

    def _report(self, can_run: bool, reason: str = "") -> None:
        if self.on_state is not None:
            self.on_state(self.device, can_run, reason)

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

    def _run_job(self, job_id: str) -> None:
        started = time.time()
        try:
            job = ShotJob(
                job_id,
                self.store,
                self.registry,
                self.data.assets,
                self.data.job_dir(job_id),
                self.device,
                self.writers,
                self.step_times,
            )
            job.run(_Hooks(self, job))
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


class _Hooks:
    """The frame loop's hooks in a worker thread: progress straight to the store, interrupts from the
    worker (drain, stop) and the store's in-memory cancel flags."""

    def __init__(self, worker: Worker, job: ShotJob) -> None:
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
