"""The network side of the node, on a worker thread: upload passes, submit, watch, download frames.

Nothing here touches ``hou``: the worker only sends plain-data Updates to a ``sink``. In graphical Houdini
the sink hands them to ``hdefereval.executeDeferred`` (applied on the main thread when Houdini is idle);
in hython/hbatch the modal driver drains them from a queue while it calls
``hou.InterruptableOperation.updateLongProgress`` (see node.py).

Every run ends with exactly one ``Finished`` update, after any ``Failed`` update it produced.
"""

from __future__ import annotations

import glob
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from genfx_houdini.errors import UserError, describe_server_error
from genfx_houdini.job import JobSpec, build_request

if TYPE_CHECKING:
    from genfx.client import Client
    from genfx.proto import genfx_pb2 as pb


@dataclass(frozen=True)
class Status:
    """Progress text for the node's Status parm; ``fraction`` (0..1) for Progress when known."""

    text: str
    fraction: float | None = None


@dataclass(frozen=True)
class Submitted:
    job_id: str
    seed: int
    frames_total: int


@dataclass(frozen=True)
class FrameReady:
    """One EXR is on local disk (downloaded and sha256-checked). ``file_pattern`` is the job's
    (Job.file_pattern, e.g. "name.####.exr"): the server names the frames, the node never does."""

    frame: int
    path: Path
    frames_done: int
    frames_total: int
    file_pattern: str


@dataclass(frozen=True)
class Recorded:
    """What the run's first frame on disk records of the trained weights that made it (its
    ``genfx/loras`` and ``genfx/controlnet`` header attributes, in words: genfx.provenance)."""

    text: str


@dataclass(frozen=True)
class Failed:
    """An error the artist must see (message says what to do; details hold the raw text)."""

    message: str
    details: str = ""


@dataclass(frozen=True)
class Finished:
    """The last update of a run. ``state``: succeeded, cancelled or failed."""

    state: str
    message: str


Update = Status | Submitted | FrameReady | Recorded | Failed | Finished
Sink = Callable[[Update], None]
ClientFactory = Callable[[str, str], "Client"]


def default_client_factory(address: str, token: str) -> Client:
    from genfx.client import Client

    return Client(address or None, token or None, timeout=30.0)


def _frame_is_from_job(path: Path, job_id: str) -> bool:
    """True when ``path`` is an EXR this job wrote (its header carries the job id)."""
    if not path.is_file():
        return False
    try:
        from genfx.exr import read_header

        return bool(read_header(path).get("genfx/jobId") == job_id)
    except Exception:  # unreadable or not ours: download it again
        return False


class Run:
    """One Generate (``spec`` given) or Load Results (``job_id`` + ``out_dir`` given) on a worker thread."""

    def __init__(
        self,
        *,
        address: str,
        token: str,
        sink: Sink,
        spec: JobSpec | None = None,
        job_id: str = "",
        out_dir: Path | None = None,
        client_factory: ClientFactory = default_client_factory,
        progress_interval: float = 0.1,
    ) -> None:
        if spec is None and not (job_id and out_dir is not None):
            raise ValueError("Run needs a JobSpec, or a job id and an output folder")
        self.address = address
        self._token = token
        self._sink = sink
        self.spec = spec
        self._job_id = job_id
        self.out_dir = spec.out_dir if spec is not None else out_dir
        self._client_factory = client_factory
        self._progress_interval = progress_interval
        self._cancel = threading.Event()
        self._done = threading.Event()
        self._recorded = False  # worker thread only: a Recorded update was sent
        self._lock = threading.Lock()
        self._client: Client | None = None
        self._thread = threading.Thread(target=self._main, name="genfx-houdini", daemon=True)

    # ---- called from Houdini's main thread ----------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    @property
    def job_id(self) -> str:
        with self._lock:
            return self._job_id

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def cancel(self) -> None:
        """Asks the server to cancel (CancelJob) without blocking the caller. Before the job exists
        (passes still uploading) the worker cancels right after submitting, or never submits."""
        self._cancel.set()
        job_id = self.job_id
        if job_id:
            threading.Thread(target=self._send_cancel, args=(job_id,), daemon=True).start()

    # ---- worker thread ------------------------------------------------------------------------------

    def _emit(self, update: Update) -> None:
        self._sink(update)

    def _frame_ready(self, frame: int, path: Path, done: int, total: int, file_pattern: str) -> None:
        """A frame is on disk: FrameReady, and (once per run) what its header records."""
        self._emit(FrameReady(frame, path, done, total, file_pattern))
        if self._recorded:
            return
        self._recorded = True
        from genfx.exr import read_header
        from genfx.provenance import describe, recorded

        try:
            text = describe(recorded(read_header(path)))
        except (OSError, RuntimeError, ValueError, KeyError) as exc:  # not worth failing the run over
            text = f"Unreadable header in {path.name}: {exc}"
        self._emit(Recorded(text))

    def _send_cancel(self, job_id: str) -> None:
        from genfx.client import GenFXError

        try:
            with self._client_factory(self.address, self._token) as client:
                client.cancel(job_id)
            self._emit(Status("Cancelling: the server stops between two denoising steps"))
        except GenFXError as exc:
            err = describe_server_error(exc.code, exc.message, self._address_text)
            self._emit(Failed(f"Could not cancel job {job_id}. {err.message}", err.details))

    @property
    def _address_text(self) -> str:
        return self.address or "the default address (GENFX_SERVER)"

    def _fail(self, message: str, details: str = "") -> Finished:
        self._emit(Failed(message, details))
        return Finished("failed", message)

    def _main(self) -> None:
        final = Finished("failed", "Failed")
        try:
            final = self._guarded()
        finally:
            client, self._client = self._client, None
            if client is not None:
                client.close()
            self._emit(final)
            self._done.set()

    def _guarded(self) -> Finished:
        try:
            from genfx.client import GenFXError
        except ImportError as exc:
            return self._fail(f"The GenFX client cannot be imported: {exc}", traceback.format_exc())
        try:
            return self._work()
        except UserError as exc:
            return self._fail(exc.message, exc.details)
        except GenFXError as exc:
            err = describe_server_error(exc.code, exc.message, self._address_text)
            return self._fail(err.message, err.details)
        except OSError as exc:
            return self._fail(f"Could not write frames to {self.out_dir}: {exc}", traceback.format_exc())
        except Exception as exc:
            return self._fail(f"Unexpected error: {type(exc).__name__}: {exc}", traceback.format_exc())

    def _work(self) -> Finished:
        self._client = client = self._client_factory(self.address, self._token)
        if self.spec is not None:
            return self._generate(client, self.spec)
        return self._load(client)

    def _generate(self, client: Client, spec: JobSpec) -> Finished:
        files = spec.pass_files
        asset_ids: dict[str, str] = {}
        for i, path in enumerate(files):
            if self._cancel.is_set():
                return Finished("cancelled", "Cancelled before the job was submitted")
            self._emit(Status(f"Uploading passes: {i + 1}/{len(files)} ({Path(path).name})"))
            try:
                asset_ids[path] = client.upload(path).id
            except OSError as exc:
                raise UserError(f"Cannot read the pass file {path}: {exc}") from exc
        if self._cancel.is_set():
            return Finished("cancelled", "Cancelled before the job was submitted")
        self._emit(Status("Submitting the job"))
        job = client.submit(build_request(spec, asset_ids))
        with self._lock:
            self._job_id = job.id
        self._emit(Submitted(job.id, job.seed, job.frames_total))
        if self._cancel.is_set():
            client.cancel(job.id)
        # A new job: stale partial downloads of this node's sequence belong to an older job.
        from genfx.frames import split_pattern

        before, _, after = split_pattern(job.file_pattern)
        for stale in spec.out_dir.glob(f"{glob.escape(before)}*{glob.escape(after)}.part"):
            stale.unlink(missing_ok=True)
        return self._follow(client, job, spec.out_dir, from_seq=0)

    def _load(self, client: Client) -> Finished:
        from genfx.client import TERMINAL
        from genfx.frames import local_path

        assert self.out_dir is not None
        job_id = self.job_id
        job = client.get_job(job_id)
        for info in job.frame_infos:
            dest = local_path(self.out_dir, info.file_name)
            if not _frame_is_from_job(dest, job_id):
                client.fetch_frame(job_id, info.frame, dest)
            self._frame_ready(info.frame, dest, len(job.frame_infos), job.frames_total, job.file_pattern)
        if job.state not in TERMINAL:
            self._emit(Status(f"Reattached to job {job_id}: still running on the server"))
        return self._follow(client, job, self.out_dir, from_seq=job.last_seq + 1)

    def _follow(self, client: Client, submitted: pb.Job, out_dir: Path, *, from_seq: int) -> Finished:
        from genfx.client import state_name
        from genfx.frames import local_path
        from genfx.proto import genfx_pb2 as pb

        job_id, file_pattern = submitted.id, submitted.file_pattern
        last_progress = 0.0
        for event in client.watch(job_id, from_seq=from_seq):
            kind = event.WhichOneof("kind")
            if kind == "state":
                text = state_name(event.state.state).capitalize()
                if event.state.message:
                    text += f": {event.state.message}"
                self._emit(Status(text))
            elif kind == "progress":
                p = event.progress
                now = time.monotonic()
                if now - last_progress >= self._progress_interval or p.step == p.steps:
                    last_progress = now
                    self._emit(
                        Status(
                            f"Frame {p.frame}: step {p.step}/{p.steps}"
                            f" ({p.frames_done}/{p.frames_total} frames done)",
                            p.fraction,
                        )
                    )
            elif kind == "frame_done":
                d = event.frame_done
                path = client.fetch_frame(job_id, d.frame, local_path(out_dir, d.file_name))
                self._frame_ready(d.frame, path, d.frames_done, d.frames_total, file_pattern)

        job = client.get_job(job_id)
        if job.state == pb.JOB_STATE_SUCCEEDED:
            # Frames whose events were missed (a reattached stream replays them, but be sure).
            done = len(job.frame_infos)
            for info in job.frame_infos:
                dest = local_path(out_dir, info.file_name)
                if not dest.exists():
                    client.fetch_frame(job_id, info.frame, dest)
                    self._frame_ready(info.frame, dest, done, job.frames_total, job.file_pattern)
            return Finished("succeeded", f"Done: {done} frames in {out_dir}")
        if job.state == pb.JOB_STATE_CANCELLED:
            return Finished(
                "cancelled", f"Cancelled on the server ({job.frames_done} of {job.frames_total} frames made)"
            )
        message = f"The server failed job {job_id}: {job.message or 'no reason given'}"
        self._emit(Failed(message, f"job state {state_name(job.state)}: {job.message}"))
        return Finished("failed", message)
