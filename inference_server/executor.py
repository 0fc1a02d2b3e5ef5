"""Where jobs run: the interface the server starts, drains and asks about, and its local form (one
worker thread per device on this machine). The Ray form, one render actor per GPU across a cluster,
is ray_executor.py. Both claim jobs from the job store by priority, run the same frame loop
(frame_loop.py) and write every frame through the same ShotJob on this process (the head).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

from genfx.proto import genfx_pb2 as pb
from inference_server.devices import detect_devices, device_description, device_memory
from inference_server.frame_writer import WriterSettings
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
    """One worker thread per local device (the default). ``devices`` None: found in ``start`` (which the
    server calls off its start-up path: finding CUDA devices imports torch)."""

    def __init__(
        self,
        devices: list[str] | None,
        store: JobStore,
        registry: ModelRegistry,
        data: DataDir,
        writers: WriterSettings | None = None,
        step_times: StepTimes | None = None,
    ) -> None:
        self._devices = devices
        self._args = (store, registry, data, writers, step_times)
        self.workers: list[Worker] = []
        self._lock = threading.Lock()
        self._state: dict[str, bool] = {}  # device -> its worker can run now
        self._callbacks: list[Callable[[bool], None]] = []

    def start(self) -> None:
        devices = self._devices if self._devices else detect_devices()
        for device in devices:
            worker = Worker(device, *self._args, on_state=self._on_state)
            self.workers.append(worker)
            worker.start()

    def _on_state(self, device: str, can_run: bool, reason: str) -> None:
        with self._lock:
            before = any(self._state.values())
            self._state[device] = can_run
            now = any(self._state.values())
        if now != before:
            for callback in self._callbacks:
                callback(now)

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
        with self._lock:
            return any(self._state.values())

    def on_capacity_change(self, callback: Callable[[bool], None]) -> None:
        self._callbacks.append(callback)

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
        return "devices: " + (", ".join(w.device for w in self.workers) or "starting")
