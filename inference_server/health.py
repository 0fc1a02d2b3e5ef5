"""The one place that decides what ``grpc.health.v1`` answers.

SERVING while at least one worker can run jobs and the server is not shutting down; NOT_SERVING before
that (the server answers RPCs while its workers start), when no worker can run, and from the start of a
shutdown. Workers report whether they can run; anything else that can stop a worker (a device lost, the
data folder unwritable) reports into the same place under the worker's name.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from grpc_health.v1 import health, health_pb2

log = logging.getLogger("genfx.server")

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Health:
    def __init__(self, servicer: health.HealthServicer, services: Sequence[str]) -> None:
        """``services``: the service names the status is published under ("" = the whole server)."""
        self._servicer = servicer
        self._services = tuple(services)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._workers: dict[str, str] = {}  # worker -> "" when it can run, else why it cannot
        self._shutting_down = False
        self._serving = False
        self._publish()

    def report(self, worker: str, can_run: bool, reason: str = "") -> None:
        """Whether ``worker`` (e.g. "cpu", "cuda:1") can run jobs now; ``reason`` says why not."""
        with self._lock:
            self._workers[worker] = "" if can_run else (reason or "cannot run")
            self._update()

    def shutting_down(self) -> None:
        """NOT_SERVING from now on, whatever the workers report (load balancers drain first)."""
        with self._lock:
            self._shutting_down = True
            self._update()

    @property
    def serving(self) -> bool:
        with self._lock:
            return self._serving

    def wait_serving(self, timeout: float | None = None) -> bool:
        with self._lock:
            return self._changed.wait_for(lambda: self._serving or self._shutting_down, timeout) and (
                self._serving
            )

    def why_not(self) -> str:
        """Why the server is not serving, in words ("" when it is)."""
        with self._lock:
            if self._shutting_down:
                return "shutting down"
            if not self._workers:
                return "starting: no worker yet"
            if self._serving:
                return ""
            return "; ".join(f"{w}: {why}" for w, why in sorted(self._workers.items()))

    def _update(self) -> None:
        serving = not self._shutting_down and any(why == "" for why in self._workers.values())
        if serving != self._serving:
            self._serving = serving
            self._publish()
            self._changed.notify_all()
        elif self._shutting_down:
            self._changed.notify_all()

    def _publish(self) -> None:
        status = SERVING if self._serving else NOT_SERVING
        for name in self._services:
            self._servicer.set(name, status)
