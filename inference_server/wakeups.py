"""Wakes the coroutines watching a job when the job store publishes an event for it.

Events come from worker threads; watchers are coroutines on the server's event loop. A watcher holds no
thread while it waits: it subscribes, reads what it missed, then awaits its wake-up. Only the watchers
of the job that changed are woken.
"""

from __future__ import annotations

import asyncio

from genfx.proto import genfx_pb2 as pb


class JobWakeups:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._waiting: dict[str, set[asyncio.Event]] = {}

    def subscribe(self, job_id: str) -> asyncio.Event:
        """Call on the loop, before reading the job: whatever changes after the read wakes the event."""
        event = asyncio.Event()
        self._waiting.setdefault(job_id, set()).add(event)
        return event

    def unsubscribe(self, job_id: str, event: asyncio.Event) -> None:
        waiting = self._waiting.get(job_id)
        if waiting is not None:
            waiting.discard(event)
            if not waiting:
                del self._waiting[job_id]

    def on_event(self, event: pb.JobEvent) -> None:
        """A JobStore listener: called from any thread after the event is published."""
        # Unlocked membership test: a watcher that subscribes later reads the change itself.
        if event.job_id in self._waiting:
            self._loop.call_soon_threadsafe(self._wake, event.job_id)

    def _wake(self, job_id: str) -> None:
        for event in self._waiting.get(job_id, ()):
            event.set()
