"""Where jobs run: the interface the server starts, drains and asks about, and its local form (one
worker thread per device on this machine). The Ray form, one render actor per GPU across a cluster,
is ray_executor.py. Both claim jobs from the job store by priority, run the same frame loop
(frame_loop.py) and write every frame through the same ShotJob on this process (the head).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from genfx.proto import genfx_pb2 as pb
from inference_server.devices import device_description, device_memory
from inference_server.frame_writer import WriterSettings
from inference_server.health import Health
from inference_server.jobs import JobStore
from inference_server.models import ModelRegistry
from inference_server.step_times import StepTimes
from inference_server.storage import DataDir
from inference_server.worker import Worker


class Executor(Protocol):
    def start(self) -> None: ...

    def drain(self) -> None:
        """Takes no new job; running frames finish, then their jobs go back to the queue."""

    def stop(self) -> None:
        """Stops running frames between two denoising steps (after a drain that took too long)."""

    def join(self, timeout: float) -> bool:
        """Waits up to ``timeout`` s for everything to stop; True when it has."""

    def can_run(self) -> bool:
        """At least one worker or actor can take a job (health answers SERVING only then)."""

    def on_capacity_change(self, callback: Callable[[bool], None]) -> None:
        """``callback(can_run)`` whenever ``can_run`` changes."""

    def devices(self) -> list[pb.DeviceInfo]: ...

    def describe(self) -> str:
        """One line for the start-up log."""


class LocalExecutor:
    """One worker thread per local device (the default)."""

    def __init__(
        self,
        devices: list[str],
        store: JobStore,
        registry: ModelRegistry,
        data: DataDir,
        health: Health | None = None,
        *,
        writers: WriterSettings | None = None,
        step_times: StepTimes | None = None,
    ) -> None:
        """Each worker reports to ``health`` whether it can run jobs (it cannot on a device torch does
        not see, nor while storage fails); ``writers``: each worker's frame writer pool."""
        self.workers = [
            Worker(d, store, registry, data, health, writers=writers, step_times=step_times) for d in devices
        ]

    def start(self) -> None:
        for worker in self.workers:
            worker.start()

    def drain(self) -> None:
        for worker in self.workers:
            worker.drain()

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()

    def join(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        for worker in self.workers:
            worker.join(timeout=max(0.0, deadline - time.monotonic()))
        return not any(w.is_alive() for w in self.workers)

    def can_run(self) -> bool:
        return bool(self.workers)

    def on_capacity_change(self, callback: Callable[[bool], None]) -> None:
        pass  # worker threads don't come and go; each reports to Health when storage stops it

    def devices(self) -> list[pb.DeviceInfo]:
        return [
            pb.DeviceInfo(
                name=w.device,
                description=device_description(w.device),
                memory_bytes=device_memory(w.device),
                running_job_id=w.current_job,
            )
            for w in self.workers
        ]

    def describe(self) -> str:
        return "devices: " + ", ".join(w.device for w in self.workers)
