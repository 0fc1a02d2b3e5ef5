"""The one place that decides what ``grpc.health.v1`` answers.

SERVING while at least one worker can run jobs and the server is not shutting down; NOT_SERVING before
that, when no worker can run, and from the start of a shutdown. Whatever runs jobs reports here under
its own name (a local worker thread per device, a Ray actor, a start-up step): ``report(worker,
can_run, reason)``. A worker whose storage fails (full disk, damaged database) reports that it cannot
run until a probe write succeeds again, so a load balancer stops sending work to a server that cannot
do it.

The gRPC health service runs on the server's event loop (grpc.aio): it follows ``on_change``, which is
called from the reporting thread (server.py hands the change to the loop).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("genfx.health")


class Health:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        # Held while a flip is computed and announced: listeners hear the flips in the order they happen.
        self._announce = threading.Lock()
        self._workers: dict[str, str] = {}  # worker -> "" when it can run, else why it cannot
        self._shutting_down = False
        self._serving = False
        self._listeners: list[Callable[[bool], None]] = []

    def on_change(self, listener: Callable[[bool], None]) -> None:
        """Called with the new status (True = SERVING) each time it flips, from the reporting thread."""
        with self._lock:
            self._listeners.append(listener)

    def report(self, worker: str, can_run: bool, reason: str = "") -> None:
        """Whether ``worker`` (e.g. "worker cpu") can run jobs now; ``reason`` says why not."""
        why = "" if can_run else (reason or "cannot run")
        with self._lock:
            before = self._workers.get(worker)
            self._workers[worker] = why
        if before != why and (before == "" or why == "" or before is None):
            if can_run:
                log.info("%s can run jobs", worker)
            else:
                log.warning("%s cannot run jobs: %s", worker, why)
        self._update()

    def forget(self, worker: str) -> None:
        """``worker`` no longer takes part (a Ray actor removed from the pool)."""
        with self._lock:
            self._workers.pop(worker, None)
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
        """Waits until SERVING (True) or shutting down / ``timeout`` (False)."""
        with self._lock:
            self._changed.wait_for(lambda: self._serving or self._shutting_down, timeout)
            return self._serving

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
        with self._announce:
            with self._lock:
                serving = not self._shutting_down and any(why == "" for why in self._workers.values())
                changed = serving != self._serving
                self._serving = serving
                self._changed.notify_all()
                listeners = list(self._listeners) if changed else []
            for listener in listeners:
                listener(serving)
