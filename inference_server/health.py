"""The server's health, decided in one place: SERVING while it is not shutting down and at least one
worker can run jobs.

Whatever runs jobs reports here under its own name (a local worker thread per device; a start-up step
that loads models; a Ray actor): ``report(name, ready, reason)``. The gRPC health service (server.py) and
the logs follow ``on_change``. A worker whose storage fails (full disk, damaged database) reports itself
not ready until a probe write succeeds again, so a load balancer stops sending work to a server that
cannot do it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("genfx.health")


class ServingHealth:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Held while a flip is computed and announced: listeners hear the flips in the order they happen.
        self._announce = threading.Lock()
        self._ready: dict[str, bool] = {}
        self._reasons: dict[str, str] = {}
        self._shutting_down = False
        self._serving = False
        self._listeners: list[Callable[[bool], None]] = []

    def on_change(self, listener: Callable[[bool], None]) -> None:
        """Called with the new status (True = SERVING) each time it flips, from the reporting thread."""
        with self._lock:
            self._listeners.append(listener)

    def report(self, name: str, ready: bool, reason: str = "") -> None:
        """``name`` (a worker, a start-up step) can (``ready``) or cannot run jobs now, and why not."""
        with self._lock:
            was = self._ready.get(name)
            self._ready[name] = ready
            self._reasons[name] = "" if ready else reason
        if was != ready:
            if ready:
                log.info("%s can run jobs", name)
            else:
                log.warning("%s cannot run jobs: %s", name, reason or "not ready")
        self._update()

    def forget(self, name: str) -> None:
        """``name`` no longer takes part (a Ray actor removed from the pool)."""
        with self._lock:
            self._ready.pop(name, None)
            self._reasons.pop(name, None)
        self._update()

    def shutting_down(self) -> None:
        """NOT_SERVING for good: the server is draining."""
        with self._lock:
            self._shutting_down = True
        self._update()

    @property
    def serving(self) -> bool:
        with self._lock:
            return self._serving

    def reasons(self) -> dict[str, str]:
        """Why each reporter that is not ready is not."""
        with self._lock:
            return {name: reason for name, reason in self._reasons.items() if not self._ready[name]}

    def _update(self) -> None:
        with self._announce:
            with self._lock:
                serving = not self._shutting_down and any(self._ready.values())
                changed = serving != self._serving
                self._serving = serving
                listeners = list(self._listeners) if changed else []
            for listener in listeners:
                listener(serving)
