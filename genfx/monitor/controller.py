"""Glue between the backend (network, worker threads) and the table model (GUI thread).

Decides what to poll, which jobs to watch and which frames to preview; runs the actions. Owns no
widget, so tests can drive it directly.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QObject, QStandardPaths, QTimer, Signal
from PySide6.QtGui import QImage

from genfx.client import Client
from genfx.monitor.backend import MonitorBackend
from genfx.monitor.jobs import JobRow, frame_info, preview_frames
from genfx.monitor.model import JobTableModel
from genfx.proto import genfx_pb2 as pb

ClientFactory = Callable[[str, str, bytes | None], Client]

POLL_MS = 2000  # ListJobs period: finds jobs other people submit, and refreshes finished ones
MAX_WATCHERS = 32  # WatchJob streams at once (running jobs first); the rest follow the polling
AUTO_PREVIEW_ROWS = 12  # newest jobs that get a table thumbnail without being selected


def default_client(address: str, token: str, root_certificates: bytes | None) -> Client:
    return Client(address, token, root_certificates=root_certificates)


def default_cache_dir() -> Path:
    """Where fetched frames go: $GENFX_MONITOR_CACHE, else the platform's cache folder + genfx/monitor."""
    env = os.environ.get("GENFX_MONITOR_CACHE")
    if env:
        return Path(env)
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.GenericCacheLocation)
    return Path(base or Path.home() / ".cache") / "genfx" / "monitor"


class MonitorController(QObject):
    connected = Signal(object)  # pb.ServerInfo
    status = Signal(str, bool)  # message, is_error
    preview_updated = Signal(str, int)  # job id, frame
    folder_ready = Signal(str, str)  # job id, local folder
    rerun_submitted = Signal(str, str)  # new job id, id of the job it re-runs

    def __init__(
        self,
        *,
        client_factory: ClientFactory = default_client,
        cache_dir: Path | None = None,
        poll_ms: int = POLL_MS,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.model = JobTableModel(self)
        self.client_factory = client_factory
        self.cache_dir = cache_dir or default_cache_dir()
        self.backend: MonitorBackend | None = None
        self.address = ""
        self.info: pb.ServerInfo | None = None
        self._selected = ""
        self._pending: set[tuple[str, int]] = set()  # previews being fetched
        self._failed: set[tuple[str, int]] = set()  # previews that failed (not retried until reconnect)
        self._list_error = False
        self._timer = QTimer(self)
        self._timer.setInterval(poll_ms)
        self._timer.timeout.connect(self.refresh)

    # ---- connection -------------------------------------------------------------------------------

    def connect_to(self, address: str, token: str = "", tls_ca: str | os.PathLike[str] | None = None) -> bool:
        """Drops any current connection and connects to `address`. Returns False (with a status
        message) if the TLS CA file cannot be read; network errors arrive later as status messages."""
        try:
            root = Path(tls_ca).read_bytes() if tls_ca else None
        except OSError as exc:
            self.status.emit(f"Cannot read the TLS CA file: {exc}", True)
            return False
        self.disconnect_from_server()
        client = self.client_factory(address, token, root)
        backend = MonitorBackend(client, self.cache_dir, parent=self)
        backend.info_ready.connect(self._on_info)
        backend.jobs_listed.connect(self._on_jobs)
        backend.job_changed.connect(self._on_job_changed)
        backend.job_event.connect(self._on_event)
        backend.watch_ended.connect(self._on_watch_ended)
        backend.preview_ready.connect(self._on_preview)
        backend.preview_failed.connect(self._on_preview_failed)
        backend.submitted.connect(self._on_submitted)
        backend.folder_ready.connect(self.folder_ready)
        backend.failed.connect(self._on_failed)
        self.backend = backend
        self.address = client.address
        self.status.emit(f"Connecting to {client.address}{' (TLS)' if root else ''} …", False)
        backend.fetch_info()
        self.refresh()
        self._timer.start()
        return True

    def disconnect_from_server(self) -> None:
        self._timer.stop()
        if self.backend is not None:
            backend, self.backend = self.backend, None
            backend.close()
            backend.deleteLater()
        self.info = None
        self._pending.clear()
        self._failed.clear()
        self.model.clear()

    def shutdown(self) -> None:
        """Stops polling and every network thread (the widget calls this when it closes)."""
        self._timer.stop()
        if self.backend is not None:
            self.backend.close()

    def refresh(self) -> None:
        if self.backend is not None:
            self.backend.list_jobs()

    # ---- selection and previews -------------------------------------------------------------------

    def select(self, job_id: str) -> None:
        """The job shown in the detail pane: it gets its first and latest keyframes fetched."""
        self._selected = job_id
        row = self.model.book.get(job_id)
        if row is not None:
            self._want_previews(row)

    def _want_previews(self, row: JobRow) -> None:
        if self.backend is None:
            return
        first, latest = preview_frames(row)
        wanted = [latest]
        if row.id == self._selected:
            wanted.append(first)
        have = self.model.previewed_frames(row.id)
        for frame in wanted:
            info = None if frame is None or frame in have else frame_info(row.job, frame)
            if info is None:
                continue
            key = (row.id, info.frame)
            if key in self._failed or any(p[0] == row.id for p in self._pending):
                continue  # one download per job at a time; the newest frame is asked for when it ends
            self._pending.add(key)
            self.backend.fetch_preview(row.id, info.frame, info.file_name)

    def _auto_preview(self, row: JobRow) -> bool:
        i = self.model.row_of(row.id)
        return row.id == self._selected or row.active or (i is not None and i < AUTO_PREVIEW_ROWS)

    # ---- backend signals --------------------------------------------------------------------------

    def _on_info(self, info: pb.ServerInfo) -> None:
        self.info = info
        self.connected.emit(info)
        self._report_connected()

    def _report_connected(self) -> None:
        if self.info is not None:
            auth = "token" if self.info.auth_required else "no auth"
            self.status.emit(f"Connected to GenFX {self.info.version} at {self.address} ({auth})", False)

    def _on_jobs(self, jobs: list[pb.Job]) -> None:
        for job in reversed(jobs):  # oldest first: each insert lands at the top
            self.model.upsert(job)
        self._watch_active()
        for row in self.model.book.rows():
            if row.job.frame_infos and self._auto_preview(row):
                self._want_previews(row)
        if self._list_error:
            self._list_error = False
            self._report_connected()

    def _watch_active(self) -> None:
        if self.backend is None:
            return
        watching = self.backend.watching()
        active = [r for r in self.model.book.rows() if r.active and r.id not in watching]
        active.sort(key=lambda r: r.job.state != pb.JOB_STATE_RUNNING)  # running first
        for row in active[: max(0, MAX_WATCHERS - len(watching))]:
            self.backend.watch(row.id, row.job.last_seq + 1)

    def _on_event(self, event: pb.JobEvent) -> None:
        row = self.model.apply_event(event)
        if row is not None and event.WhichOneof("kind") == "frame_done":
            self._want_previews(row)

    def _on_job_changed(self, job: pb.Job) -> None:
        self.model.upsert(job)

    def _on_watch_ended(self, job_id: str) -> None:
        self.refresh()  # the final snapshot (and restarts the watch if the job is somehow still active)

    def _on_preview(self, job_id: str, frame: int, image: QImage) -> None:
        self._pending.discard((job_id, frame))
        self.model.set_preview(job_id, frame, image)
        self.preview_updated.emit(job_id, frame)
        row = self.model.book.get(job_id)
        if row is not None:
            self._want_previews(row)  # a newer frame may have landed meanwhile

    def _on_preview_failed(self, job_id: str, frame: int, message: str) -> None:
        self._pending.discard((job_id, frame))
        self._failed.add((job_id, frame))
        self.status.emit(f"Preview of job {job_id[:8]} frame {frame} failed: {message}", True)

    def _on_submitted(self, job: pb.Job, original_id: str) -> None:
        self.model.upsert(job)
        self._watch_active()
        self.status.emit(f"Re-ran job {original_id[:8]} as {job.id[:8]} with seed {job.seed}", False)
        self.rerun_submitted.emit(job.id, original_id)

    def _on_failed(self, what: str, message: str) -> None:
        if what == "list jobs":
            self._list_error = True
        self.status.emit(f"{what}: {message}", True)

    # ---- actions ----------------------------------------------------------------------------------

    def cancel(self, job_id: str) -> None:
        if self.backend is not None:
            self.status.emit(f"Cancelling job {job_id[:8]} …", False)
            self.backend.cancel(job_id)

    def rerun(
        self, job_id: str, seed: int | None = None, loras: Sequence[tuple[str, float]] | None = None
    ) -> None:
        row = self.model.book.get(job_id)
        if self.backend is not None and row is not None:
            self.backend.rerun(row.job, seed, loras)

    def fetch_folder(self, job_id: str) -> None:
        if self.backend is not None:
            self.status.emit(f"Fetching the frames of job {job_id[:8]} …", False)
            self.backend.fetch_folder(job_id)

    def job_folder(self, job_id: str) -> Path | None:
        return self.backend.job_folder(job_id) if self.backend is not None else None
