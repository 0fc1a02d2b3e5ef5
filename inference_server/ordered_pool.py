"""A bounded thread pool whose tasks finish in the order they were submitted.

Each task has two parts: ``work`` runs on one of the pool's threads, concurrently with other tasks (they
start in submission order); ``finish`` (given the work's result) runs strictly in submission order, one
at a time, as soon as every earlier task has finished. The frame writer uses it to encode and write
frames beside the denoising loop while recording them (frame-done events) in plan order.

- Backpressure: ``submit`` blocks while ``max_pending`` tasks are submitted but not yet finished.
- Failure: the first error (from a ``work`` or a ``finish``) stops the pool: tasks not yet started are
  skipped, no later ``finish`` runs, and ``submit`` / ``drain`` raise it in the submitting thread, so an
  error never vanishes in a thread.
- ``threads=0`` runs each task inline in ``submit`` (no thread, no overlap).

A task's ``work`` may wait for an earlier task's result: tasks start in submission order, so an earlier
task is always running or done by then (no deadlock).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any


class PoolStopped(RuntimeError):
    """A task that was skipped because an earlier one failed."""


@dataclass(eq=False)
class _Task:
    work: Callable[[], Any] | None
    finish: Callable[[Any], None] | None
    skipped: Callable[[BaseException], None] | None
    ran: bool = False
    value: Any = None
    error: BaseException | None = None


class OrderedPool:
    def __init__(self, threads: int, max_pending: int, name: str = "ordered-pool") -> None:
        if threads < 0 or max_pending < 1:
            raise ValueError(f"threads must be >= 0 and max_pending >= 1 (got {threads}, {max_pending})")
        self.threads = threads
        self.max_pending = max_pending
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix=name) if threads else None
        self._slots = threading.Semaphore(max_pending)
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)  # notified whenever a task is finished
        self._order: deque[_Task] = deque()  # submitted, not yet finished, in submission order
        self._finishing = False  # one thread at a time walks the head of the queue
        self._error: BaseException | None = None

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._order)

    def submit(
        self,
        work: Callable[[], Any],
        finish: Callable[[Any], None],
        skipped: Callable[[BaseException], None] | None = None,
    ) -> None:
        """Queues ``work`` (then ``finish(result)``, in order); blocks while the pool is full.

        ``skipped(error)`` is called instead of ``work`` when an earlier task failed first (so whoever
        waits on this task hears of it). Raises the pool's first error, if any task has failed."""
        self._raise_error()
        if self._executor is None:
            finish(work())
            return
        self._slots.acquire()
        task = _Task(work, finish, skipped)
        with self._lock:
            if self._error is not None:
                self._slots.release()
                raise self._error
            self._order.append(task)
        self._executor.submit(self._run, task)

    def drain(self) -> None:
        """Waits until every submitted task is finished (or skipped); raises the first error, if any."""
        with self._lock:
            while self._order:
                self._settled.wait()
        self._raise_error()

    def close(self) -> None:
        """Drains, then stops the threads. Raises the first error, if any (the threads stop anyway)."""
        try:
            self.drain()
        finally:
            if self._executor is not None:
                self._executor.shutdown(wait=True)

    # ---- pool threads -----------------------------------------------------------------------------

    def _run(self, task: _Task) -> None:
        try:
            if self._error is not None:
                task.error = PoolStopped("skipped: an earlier task failed")
                if task.skipped is not None:
                    task.skipped(task.error)
            else:
                assert task.work is not None
                task.value = task.work()
        except BaseException as exc:  # handed to the submitting thread by submit/drain
            task.error = exc
        task.work = task.skipped = None  # drop what the work held (frames are big)
        with self._lock:
            task.ran = True
            if self._finishing:
                return  # the thread walking the queue will get to it
            self._finishing = True
        self._finish_ready()

    def _finish_ready(self) -> None:
        """Finishes tasks from the head of the queue while they have run, in submission order."""
        while True:
            with self._lock:
                if not self._order or not self._order[0].ran:
                    self._finishing = False
                    return
                task = self._order[0]
                failed = self._error is not None
            if task.error is None and not failed:
                try:
                    assert task.finish is not None
                    task.finish(task.value)
                except BaseException as exc:
                    task.error = exc
            with self._lock:
                if task.error is not None and self._error is None:
                    self._error = task.error
                self._order.popleft()
                task.finish = task.value = None
                self._settled.notify_all()
            self._slots.release()

    def _raise_error(self) -> None:
        with self._lock:
            error = self._error
        if error is not None:
            raise error
