"""GenFX client: everything a TD, a DCC plug-in or the CLI needs to talk to a GenFX server.

    from genfx.client import Client
    from genfx.request import build_request  # also importable from here
    with Client("gpu-box:50051", token="...") as c:
        req = build_request(prompt="dust", camera=shot.camera, frame_start=1001, frame_end=1048)
        job = c.submit(req)
        for event in c.watch(job.id):
            ...
        c.fetch_job(job.id, "out/")  # under the file names the server gave the frames

Errors from the server come out as GenFXError with the gRPC status name and the server's message.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import grpc

from genfx.frames import local_path
from genfx.hashing import sha256_of
from genfx.proto import genfx_pb2 as pb
from genfx.proto import genfx_pb2_grpc as pb_grpc
from genfx.request import build_request as build_request  # re-exported: the one request builder

DEFAULT_SERVER = "127.0.0.1:50051"
UPLOAD_CHUNK = 1 << 20
TERMINAL = frozenset({pb.JOB_STATE_SUCCEEDED, pb.JOB_STATE_FAILED, pb.JOB_STATE_CANCELLED})
# Streams that break for these reasons are reattached (WatchJob) or resumed (FetchFrame).
RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN})

T = TypeVar("T")


class GenFXError(Exception):
    """A call the server refused or could not finish. `code` is the gRPC status name."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def state_name(state: int) -> str:
    return pb.JobState.Name(pb.JobState.ValueType(state)).removeprefix("JOB_STATE_").lower()


def _as_error(exc: grpc.RpcError) -> GenFXError:
    code = exc.code() if hasattr(exc, "code") else None
    details = exc.details() if hasattr(exc, "details") else str(exc)
    return GenFXError(code.name if code else "UNKNOWN", details or "")


class Client:
    """A connection to one GenFX server. Thread-safe; reuse one per process."""

    def __init__(
        self,
        address: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        root_certificates: bytes | None = None,
        private_key: bytes | None = None,
        certificate_chain: bytes | None = None,
    ) -> None:
        """`root_certificates` (PEM) connects with TLS; `private_key` + `certificate_chain` add a client
        certificate for servers that require mutual TLS."""
        self.address = address or os.environ.get("GENFX_SERVER") or DEFAULT_SERVER
        token = token if token is not None else os.environ.get("GENFX_TOKEN", "")
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self.timeout = timeout
        options = [
            ("grpc.max_receive_message_length", 8 << 20),
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_permit_without_calls", 1),
        ]
        if root_certificates is not None or certificate_chain is not None:
            creds = grpc.ssl_channel_credentials(
                root_certificates=root_certificates,
                private_key=private_key,
                certificate_chain=certificate_chain,
            )
            self._channel = grpc.secure_channel(self.address, creds, options=options)
        else:
            self._channel = grpc.insecure_channel(self.address, options=options)
        self._stub = pb_grpc.GenFXStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _unary(self, method: Callable[..., T], request: Any) -> T:
        try:
            return method(request, timeout=self.timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise _as_error(exc) from None

    # ---- unary calls ------------------------------------------------------------------------------

    def info(self) -> pb.ServerInfo:
        return self._unary(self._stub.GetServerInfo, pb.GetServerInfoRequest())

    def submit(self, request: pb.GenerateRequest) -> pb.Job:
        return self._unary(self._stub.SubmitJob, request)

    def estimate(self, request: pb.GenerateRequest) -> pb.JobEstimate:
        """What the request would cost on this server (validated like submit; queues nothing)."""
        return self._unary(self._stub.EstimateJob, request)

    def get_job(self, job_id: str) -> pb.Job:
        return self._unary(self._stub.GetJob, pb.GetJobRequest(job_id=job_id))

    def list_jobs(
        self, states: Sequence[int] = (), limit: int = 100, *, full_requests: bool = False
    ) -> list[pb.Job]:
        """The newest `limit` jobs (in `states`, if given), newest first, over as many pages as that
        takes. Without `full_requests` each request leaves out its camera samples and per-frame passes
        (`job.request_abridged`); `get_job` has them."""
        jobs: list[pb.Job] = []
        for job in self.iter_jobs(states, full_requests=full_requests, page_size=min(limit, 1000)):
            jobs.append(job)
            if len(jobs) >= limit:
                break
        return jobs

    def iter_jobs(
        self, states: Sequence[int] = (), *, full_requests: bool = False, page_size: int = 100
    ) -> Iterator[pb.Job]:
        """Every job (in `states`, if given), newest first, a page at a time (ListJobs page tokens)."""
        request = pb.ListJobsRequest(
            states=[pb.JobState.ValueType(s) for s in states], limit=page_size, full_requests=full_requests
        )
        while True:
            page = self._unary(self._stub.ListJobs, request)
            yield from page.jobs
            if not page.next_page_token:
                return
            request.page_token = page.next_page_token

    def cancel(self, job_id: str) -> pb.Job:
        return self._unary(self._stub.CancelJob, pb.CancelJobRequest(job_id=job_id))

    def delete_job(self, job_id: str) -> pb.DeleteJobResponse:
        """Deletes a job that has ended, with its frames on the server (FAILED_PRECONDITION otherwise)."""
        return self._unary(self._stub.DeleteJob, pb.DeleteJobRequest(job_id=job_id))

    # ---- assets -----------------------------------------------------------------------------------

    def upload(self, path: str | os.PathLike[str], *, chunk_size: int = UPLOAD_CHUNK) -> pb.Asset:
        """Uploads an image file; returns the asset (id = sha256). The server dedupes by content."""
        path = Path(path)
        size = path.stat().st_size
        # Sent in the header so the server can refuse corrupted bytes.
        digest = sha256_of(path)

        def chunks() -> Iterator[pb.UploadAssetChunk]:
            yield pb.UploadAssetChunk(
                header=pb.AssetHeader(filename=path.name, size=size, sha256=digest.hexdigest())
            )
            with path.open("rb") as f:
                for block in iter(lambda: f.read(chunk_size), b""):
                    yield pb.UploadAssetChunk(data=block)

        try:
            return self._stub.UploadAsset(chunks(), metadata=self._metadata)
        except grpc.RpcError as exc:
            raise _as_error(exc) from None

    # ---- streams ----------------------------------------------------------------------------------

    def generate(self, request: pb.GenerateRequest) -> Iterator[pb.JobEvent]:
        """Submits and streams events. If the stream breaks, reattaches with WatchJob where it left off."""
        job_id, last_seq = "", 0
        try:
            for event in self._stub.Generate(request, metadata=self._metadata):
                job_id, last_seq = event.job_id, event.seq
                yield event
            return
        except grpc.RpcError as exc:
            if not job_id or exc.code() not in RETRYABLE:
                raise _as_error(exc) from None
        yield from self.watch(job_id, from_seq=last_seq + 1)

    def watch(
        self, job_id: str, from_seq: int = 0, *, retries: int = 30, retry_delay: float = 1.0
    ) -> Iterator[pb.JobEvent]:
        """Events of a job from `from_seq` until it ends. Survives server restarts: it reattaches
        from the last event seen (up to `retries` times, `retry_delay` seconds apart)."""
        next_seq = from_seq
        attempts = 0
        while True:
            try:
                for event in self._stub.WatchJob(
                    pb.WatchJobRequest(job_id=job_id, from_seq=next_seq), metadata=self._metadata
                ):
                    attempts = 0
                    next_seq = event.seq + 1
                    yield event
                return
            except grpc.RpcError as exc:
                if exc.code() not in RETRYABLE or attempts >= retries:
                    raise _as_error(exc) from None
                attempts += 1
                time.sleep(retry_delay)

    def wait(self, job_id: str, on_event: Callable[[pb.JobEvent], None] | None = None) -> pb.Job:
        """Blocks until the job ends; returns its final state."""
        for event in self.watch(job_id):
            if on_event is not None:
                on_event(event)
        return self.get_job(job_id)

    def fetch_frame(
        self, job_id: str, frame: int, dest: str | os.PathLike[str], *, chunk_size: int = 0, retries: int = 5
    ) -> Path:
        """Downloads one frame to `dest` (a file path). Resumable: a partial `<dest>.part` is continued
        from its size; the result is checked against the server's sha256 before it is renamed into place."""
        dest = Path(dest)
        part = dest.with_name(dest.name + ".part")
        dest.parent.mkdir(parents=True, exist_ok=True)
        attempts = 0
        while True:
            offset = part.stat().st_size if part.exists() else 0
            try:
                sha, actual = self._fetch_into(part, job_id, frame, offset, chunk_size)
                break
            except grpc.RpcError as exc:
                code = exc.code()
                if code == grpc.StatusCode.INVALID_ARGUMENT and offset:
                    part.unlink()  # the partial file is longer than the frame: start over
                elif code not in RETRYABLE or attempts >= retries:
                    raise _as_error(exc) from None
                attempts += 1
                time.sleep(0.5)
        if actual != sha:
            part.unlink()
            raise GenFXError(
                "DATA_LOSS",
                f"frame {frame} of job {job_id}: sha256 mismatch "
                f"(server {sha}, received {actual}); fetch again",
            )
        os.replace(part, dest)
        return dest

    def frame_chunks(
        self, job_id: str, frame: int, *, offset: int = 0, chunk_size: int = 0
    ) -> Iterator[pb.FrameChunk]:
        """The raw FetchFrame stream (for consumers that keep frames in memory). Unverified:
        fetch_frame() is the checked, resumable download to disk."""
        request = pb.FetchFrameRequest(job_id=job_id, frame=frame, offset=offset, chunk_size=chunk_size)
        yield from self._stub.FetchFrame(request, metadata=self._metadata)

    def _fetch_into(
        self, part: Path, job_id: str, frame: int, offset: int, chunk_size: int
    ) -> tuple[str, str]:
        """Appends the frame's bytes from `offset` to `part`; returns (server sha256, sha256 of `part`).
        The hash is computed as the bytes arrive, so the file is never read back."""
        digest = sha256_of(part) if offset else hashlib.sha256()
        sha = ""
        position = offset
        with part.open("ab") as f:
            for chunk in self.frame_chunks(job_id, frame, offset=offset, chunk_size=chunk_size):
                if chunk.offset != position:
                    raise GenFXError("DATA_LOSS", f"chunk at offset {chunk.offset}, expected {position}")
                f.write(chunk.data)
                digest.update(chunk.data)
                position += len(chunk.data)
                if chunk.last:
                    sha = chunk.sha256
            f.flush()
            os.fsync(f.fileno())  # the frame is durable before it is renamed into place
        if not sha:
            raise GenFXError("DATA_LOSS", f"frame {frame}: stream ended before the last chunk")
        return sha, digest.hexdigest()

    def fetch_job(
        self,
        job_id: str,
        out_dir: str | os.PathLike[str],
        *,
        on_frame: Callable[[Path], None] | None = None,
        skip_existing: bool = True,
    ) -> list[Path]:
        """Downloads every frame the job has so far into out_dir, under the names the server gave them."""
        out = Path(out_dir)
        job = self.get_job(job_id)
        paths = []
        for info in job.frame_infos:
            dest = local_path(out, info.file_name)
            if not (skip_existing and dest.exists()):
                self.fetch_frame(job_id, info.frame, dest)
            paths.append(dest)
            if on_frame is not None:
                on_frame(dest)
        return paths
