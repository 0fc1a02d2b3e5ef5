"""Every network call the monitor makes, off the GUI thread.

Unary calls and downloads run on a small thread pool; each watched job has its own daemon thread
iterating `Client.watch` (which reattaches by itself when a stream breaks). Results come back as Qt
signals: the backend object lives on the GUI thread, so signals emitted from these Python threads are
queued and its slots run on the GUI thread. Nothing here touches a widget.
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from genfx.client import Client, GenFXError
from genfx.frames import local_path
from genfx.monitor.preview import load_preview
from genfx.proto import genfx_pb2 as pb

log = logging.getLogger("genfx.monitor")

SEED_RANGE = 1 << 32  # seeds the monitor picks: 32-bit, short enough to read out and type


def new_seed(old: int) -> int:
    """A random seed different from `old`."""
    while True:
        seed = secrets.randbelow(SEED_RANGE)
        if seed != old:
            return seed


def rerun_request(
    job: pb.Job, seed: int, loras: Sequence[tuple[str, float]] | None = None
) -> pb.GenerateRequest:
    """The job's request as the server accepted it (defaults filled in), with another seed and, when
    ``loras`` is given, those (name, weight) LoRAs instead of the job's."""
    request = pb.GenerateRequest()
    request.CopyFrom(job.request)
    request.seed = seed
    if loras is not None:
        del request.loras[:]
        request.loras.extend(pb.LoraRef(name=name, weight=weight) for name, weight in loras)
    return request


def server_folder_name(address: str) -> str:
    """'gpu-box:50051' -> 'gpu-box_50051' (a folder name for the per-server cache)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", address).strip("_") or "server"


class MonitorBackend(QObject):
    """One connection's network work. `close()` stops it; signals stop once it is closed."""

    info_ready = Signal(object)  # pb.ServerInfo
    jobs_listed = Signal(object)  # list[pb.Job], newest first
    job_changed = Signal(object)  # pb.Job: a fresh snapshot (after CancelJob)
    job_event = Signal(object)  # pb.JobEvent
    watch_ended = Signal(str)  # job id: its WatchJob stream ended (job over, or an error)
    preview_ready = Signal(str, int, object)  # job id, frame, QImage
    preview_failed = Signal(str, int, str)  # job id, frame, message
    submitted = Signal(object, str)  # pb.Job (the re-run), id of the job it re-runs
    folder_ready = Signal(str, str)  # job id, local folder holding its fetched frames
    failed = Signal(str, str)  # what was being done, error message

    def __init__(
        self, client: Client, cache_dir: Path, *, workers: int = 4, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.client = client
        self.cache_dir = Path(cache_dir) / server_folder_name(client.address)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="genfx-monitor")
        self._lock = threading.Lock()
        self._watchers: dict[str, threading.Thread] = {}
        self._download_locks: dict[str, threading.Lock] = {}
        self._listing = False
        self._closed = threading.Event()

    # ---- plumbing ---------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def _emit(self, signal: Any, *args: object) -> None:
        if self._closed.is_set():
            return
        # RuntimeError: the QObject was deleted under us (panel closed); nobody is left to tell.
        with contextlib.suppress(RuntimeError):
            signal.emit(*args)

    def _submit(self, what: str, fn: Callable[[], None]) -> None:
        def run() -> None:
            try:
                fn()
            except GenFXError as exc:
                self._emit(self.failed, what, str(exc))
            except Exception as exc:  # noqa: BLE001 - a worker must report, never die silently
                if not self._closed.is_set():
                    log.exception("%s failed", what)
                    self._emit(self.failed, what, f"{type(exc).__name__}: {exc}")

        if self._closed.is_set():
            return
        with contextlib.suppress(RuntimeError):  # the pool was shut down by close() in between
            self._pool.submit(run)

    def _download_lock(self, job_id: str) -> threading.Lock:
        """One download at a time per job: two fetches of one frame would share its `.part` file."""
        with self._lock:
            return self._download_locks.setdefault(job_id, threading.Lock())

    def job_folder(self, job_id: str) -> Path:
        return self.cache_dir / job_id

    # ---- calls ------------------------------------------------------------------------------------

    def fetch_info(self) -> None:
        self._submit("connect", lambda: self._emit(self.info_ready, self.client.info()))

    def list_jobs(self, limit: int = 100) -> bool:
        """ListJobs; returns False (and does nothing) while the previous listing is still out."""
        with self._lock:
            if self._listing:
                return False
            self._listing = True

        def run() -> None:
            try:
                self._emit(self.jobs_listed, self.client.list_jobs(limit=limit))
            finally:
                with self._lock:
                    self._listing = False

        self._submit("list jobs", run)
        return True

    def watch(self, job_id: str, from_seq: int) -> bool:
        """Streams the job's events from `from_seq` on a thread of its own; False if already watched."""
        with self._lock:
            if self._closed.is_set() or job_id in self._watchers:
                return False
            thread = threading.Thread(
                target=self._watch, args=(job_id, from_seq), name=f"genfx-watch-{job_id[:8]}", daemon=True
            )
            self._watchers[job_id] = thread
        thread.start()
        return True

    def watching(self) -> set[str]:
        with self._lock:
            return set(self._watchers)

    def _watch(self, job_id: str, from_seq: int) -> None:
        try:
            for event in self.client.watch(job_id, from_seq=from_seq):
                if self._closed.is_set():
                    return
                self._emit(self.job_event, event)
        except Exception as exc:  # noqa: BLE001 - closing the channel ends streams with an error too
            if not self._closed.is_set():
                self._emit(self.failed, f"watch {job_id[:8]}", str(exc))
        finally:
            with self._lock:
                self._watchers.pop(job_id, None)
            self._emit(self.watch_ended, job_id)

    def cancel(self, job_id: str) -> None:
        self._submit(f"cancel {job_id[:8]}", lambda: self._emit(self.job_changed, self.client.cancel(job_id)))

    def rerun(
        self, job: pb.Job, seed: int | None = None, loras: Sequence[tuple[str, float]] | None = None
    ) -> None:
        """Submits the job's request again with `seed` (default: a new random one) and `loras`
        (default: the job's). A job from a listing has an abridged request (no camera samples): the
        whole one is fetched first."""
        chosen = new_seed(job.seed) if seed is None else seed

        def run() -> None:
            full = self.client.get_job(job.id) if job.request_abridged else job
            self._emit(self.submitted, self.client.submit(rerun_request(full, chosen, loras)), job.id)

        self._submit(f"re-run {job.id[:8]}", run)

    def fetch_preview(self, job_id: str, frame: int, file_name: str) -> None:
        """Downloads one frame into the job's cache folder (once) and sends its preview image."""

        def run() -> None:
            try:
                path = local_path(self.job_folder(job_id), file_name)
                with self._download_lock(job_id):
                    if not path.exists():
                        self.client.fetch_frame(job_id, frame, path)
                image = load_preview(path)
            except Exception as exc:  # noqa: BLE001 - reported as a signal; the row keeps its old preview
                self._emit(self.preview_failed, job_id, frame, str(exc))
                return
            self._emit(self.preview_ready, job_id, frame, image)

        self._submit(f"preview {job_id[:8]} frame {frame}", run)

    def fetch_folder(self, job_id: str) -> None:
        """Downloads every frame the job has so far (skipping those already here), then reports the
        local folder."""

        def run() -> None:
            folder = self.job_folder(job_id)
            folder.mkdir(parents=True, exist_ok=True)
            with self._download_lock(job_id):
                self.client.fetch_job(job_id, folder)
            self._emit(self.folder_ready, job_id, str(folder))

        self._submit(f"fetch {job_id[:8]}", run)

    def close(self) -> None:
        """Stops everything: closing the channel ends the watch streams and any call in flight."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()
