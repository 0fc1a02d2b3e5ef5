"""gRPC servicer for genfx.v1.GenFX: validation, mapping to the job store, streaming.

Bad input never reaches a worker: it is answered here with a status code and a message naming the field.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import grpc

import genfx
from genfx.proto import genfx_pb2 as pb
from genfx.proto import genfx_pb2_grpc as pb_grpc
from inference_server import defaults
from inference_server.estimate import estimate
from inference_server.executor import Executor
from inference_server.frame_writer import file_pattern
from inference_server.jobs import TERMINAL_STATES, JobNotFound, JobStore
from inference_server.models import ModelRegistry, UnknownModelError
from inference_server.step_times import StepTimes
from inference_server.storage import ASSET_ID, AssetError, DataDir
from inference_server.validation import Limits, RequestError, invalid, validate_generate

log = logging.getLogger("genfx.service")

DEFAULT_CHUNK = 1 << 20
MIN_CHUNK = 64 << 10
MAX_CHUNK = 1 << 20
JOB_ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")
WATCH_POLL_S = 0.5

F = TypeVar("F", bound=Callable[..., Any])


def _handles_errors(method: F) -> F:
    """Maps our exceptions to status codes, so bad input is never UNKNOWN or INTERNAL."""

    @wraps(method)
    def wrapper(self: GenFXService, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            result = method(self, request, context)
            if hasattr(result, "__next__"):
                return _guard_stream(result, context)
            return result
        except RequestError as exc:
            context.abort(exc.code, exc.message)
        except JobNotFound as exc:
            context.abort(grpc.StatusCode.NOT_FOUND, str(exc))

    return wrapper  # type: ignore[return-value]


def _guard_stream(stream: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
    try:
        yield from stream
    except RequestError as exc:
        context.abort(exc.code, exc.message)
    except JobNotFound as exc:
        context.abort(grpc.StatusCode.NOT_FOUND, str(exc))


def _check_job_id(job_id: str) -> None:
    if not JOB_ID_PATTERN.match(job_id):
        raise invalid(f"job_id: must be 32 lowercase hex characters (got {job_id[:40]!r})")


def sniff_format(head: bytes) -> str:
    if head.startswith(b"\x76\x2f\x31\x01"):
        return "exr"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] in (b"SDPX", b"XPDS"):
        return "dpx"
    return "unknown"


class GenFXService(pb_grpc.GenFXServicer):
    def __init__(
        self,
        store: JobStore,
        registry: ModelRegistry,
        executor: Executor,
        data: DataDir,
        limits: Limits,
        auth_required: bool,
        step_times: StepTimes | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.executor = executor
        self.data = data
        self.limits = limits
        self.auth_required = auth_required
        self.step_times = step_times or StepTimes()

    def _output_dir(self, job_id: str) -> str:
        return str(self.data.job_dir(job_id))

    def _job(self, job_id: str) -> pb.Job:
        return with_file_pattern(self.store.get(job_id, self._output_dir(job_id)))

    # ---- info -------------------------------------------------------------------------------------

    @_handles_errors
    def GetServerInfo(self, request: pb.GetServerInfoRequest, context: grpc.ServicerContext) -> pb.ServerInfo:
        models = []
        for name in self.registry.names():
            info = self.registry.info(name)
            models.append(
                pb.ModelInfo(
                    name=info.name,
                    family=info.family,
                    native_width=info.native_width,
                    native_height=info.native_height,
                    capabilities=list(info.capabilities),
                    hash=info.hash,
                )
            )
        devices = self.executor.devices()
        return pb.ServerInfo(
            version=genfx.__version__,
            models=models,
            devices=devices,
            limits=self.limits.to_proto(),
            auth_required=self.auth_required,
            defaults=defaults.to_proto(),
            step_times=self.step_times.to_proto(),
        )

    # ---- assets -----------------------------------------------------------------------------------

    @_handles_errors
    def UploadAsset(
        self, request_iterator: Iterator[pb.UploadAssetChunk], context: grpc.ServicerContext
    ) -> pb.Asset:
        first = next(request_iterator, None)
        if first is None or first.WhichOneof("part") != "header":
            raise invalid("header: the first message of UploadAsset must carry the header")
        header = first.header
        if header.size <= 0:
            raise invalid(f"header.size: must be > 0 (got {header.size})")
        if header.size > self.limits.max_upload_bytes:
            raise invalid(
                f"header.size: {header.size} bytes exceeds the limit of {self.limits.max_upload_bytes} bytes"
            )
        if header.sha256 and not ASSET_ID.match(header.sha256):
            raise invalid("header.sha256: must be 64 lowercase hex characters")

        def blocks() -> Iterator[bytes]:
            for chunk in request_iterator:
                if chunk.WhichOneof("part") != "data":
                    raise invalid("data: only the first message may carry a header")
                yield chunk.data

        try:
            stored = self.data.assets.put(blocks(), header.size, header.sha256)
        except AssetError as exc:
            raise invalid(str(exc)) from exc
        return pb.Asset(
            id=stored.id, size=stored.size, deduplicated=stored.deduplicated, format=sniff_format(stored.head)
        )

    # ---- jobs -------------------------------------------------------------------------------------

    def _validated(self, request: pb.GenerateRequest) -> pb.GenerateRequest:
        names = self.registry.names()
        capabilities = {}
        for name in names:
            try:
                capabilities[name] = self.registry.info(name).capabilities
            except UnknownModelError:
                continue
        return validate_generate(
            request,
            self.limits,
            names,
            self.registry.default_name(),
            capabilities,
            assets=self.data.assets,
        )

    def _submit(self, request: pb.GenerateRequest) -> str:
        req = self._validated(request)
        if self.store.count_active() >= self.limits.max_queued_jobs:
            raise RequestError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"queue full: {self.limits.max_queued_jobs} jobs queued or running (max_queued_jobs);"
                " retry later",
            )
        frames = req.shot.frame_end - req.shot.frame_start + 1
        job_id = self.store.create(req, frames)
        log.info(
            "job %s queued: %d frames, model %s, %dx%d",
            job_id,
            frames,
            req.model,
            req.output.width,
            req.output.height,
            extra={"job_id": job_id},
        )
        return job_id

    @_handles_errors
    def SubmitJob(self, request: pb.GenerateRequest, context: grpc.ServicerContext) -> pb.Job:
        return self._job(self._submit(request))

    @_handles_errors
    def EstimateJob(self, request: pb.GenerateRequest, context: grpc.ServicerContext) -> pb.JobEstimate:
        req = self._validated(request)
        return estimate(req, self.registry.info(req.model), self.step_times)

    @_handles_errors
    def Generate(self, request: pb.GenerateRequest, context: grpc.ServicerContext) -> Iterator[pb.JobEvent]:
        job_id = self._submit(request)
        return self._watch(job_id, 0, context)

    @_handles_errors
    def WatchJob(self, request: pb.WatchJobRequest, context: grpc.ServicerContext) -> Iterator[pb.JobEvent]:
        _check_job_id(request.job_id)
        if request.from_seq < 0:
            raise invalid(f"from_seq: must be >= 0 (got {request.from_seq})")
        self.store.state(request.job_id)  # NOT_FOUND before the stream starts
        return self._watch(request.job_id, request.from_seq, context)

    def _watch(self, job_id: str, from_seq: int, context: grpc.ServicerContext) -> Iterator[pb.JobEvent]:
        """Stored events from ``from_seq``, then the latest live progress, then news as it happens."""
        next_seq = max(from_seq, 1)
        sent_progress: pb.JobEvent | None = None
        while context.is_active():
            state = self.store.state(job_id)  # read before the events: no terminal event can be missed
            for event in self.store.events_since(job_id, next_seq):
                yield event
                next_seq = event.seq + 1
            if state in TERMINAL_STATES:
                return
            progress = self.store.latest_progress(job_id)
            if progress is not None and progress is not sent_progress and progress.seq < next_seq:
                yield progress
                sent_progress = progress
            self.store.wait_for_change(WATCH_POLL_S)

    @_handles_errors
    def GetJob(self, request: pb.GetJobRequest, context: grpc.ServicerContext) -> pb.Job:
        _check_job_id(request.job_id)
        return self._job(request.job_id)

    @_handles_errors
    def ListJobs(self, request: pb.ListJobsRequest, context: grpc.ServicerContext) -> pb.ListJobsResponse:
        limit = request.limit or 100
        if not 1 <= limit <= 1000:
            raise invalid(f"limit: must be in 1..1000 (got {request.limit})")
        for i, state in enumerate(request.states):
            if state not in pb.JobState.values() or state == pb.JOB_STATE_UNSPECIFIED:
                raise invalid(f"states[{i}]: unknown job state {state}")
        jobs = self.store.list_jobs(list(request.states), limit, self._output_dir)
        return pb.ListJobsResponse(jobs=[with_file_pattern(j) for j in jobs])

    @_handles_errors
    def CancelJob(self, request: pb.CancelJobRequest, context: grpc.ServicerContext) -> pb.Job:
        _check_job_id(request.job_id)
        self.store.request_cancel(request.job_id)
        log.info("job %s: cancel requested", request.job_id, extra={"job_id": request.job_id})
        return self._job(request.job_id)

    # ---- frames -----------------------------------------------------------------------------------

    @_handles_errors
    def FetchFrame(
        self, request: pb.FetchFrameRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.FrameChunk]:
        _check_job_id(request.job_id)
        self.store.state(request.job_id)
        record = self.store.frame(request.job_id, request.frame)
        if record is None:
            raise RequestError(
                grpc.StatusCode.NOT_FOUND, f"frame: job {request.job_id} has no frame {request.frame} (yet)"
            )
        chunk = request.chunk_size or DEFAULT_CHUNK
        if not MIN_CHUNK <= chunk <= MAX_CHUNK:
            raise invalid(f"chunk_size: must be in {MIN_CHUNK}..{MAX_CHUNK} bytes (got {request.chunk_size})")
        if not 0 <= request.offset <= record.size_bytes:
            raise invalid(f"offset: must be in 0..{record.size_bytes} (the file size), got {request.offset}")
        path = self.data.job_dir(request.job_id) / record.file_name
        return self._stream_file(
            path, record.file_name, record.size_bytes, record.sha256, request.offset, chunk
        )

    @staticmethod
    def _stream_file(
        path: Path, name: str, size: int, sha256: str, offset: int, chunk: int
    ) -> Iterator[pb.FrameChunk]:
        with path.open("rb") as f:
            f.seek(offset)
            pos = offset
            while True:
                data = f.read(chunk)
                last = pos + len(data) >= size
                yield pb.FrameChunk(
                    offset=pos,
                    data=data,
                    total_size=size,
                    file_name=name,
                    sha256=sha256 if last else "",
                    last=last,
                )
                pos += len(data)
                if last or not data:
                    return


def with_file_pattern(job: pb.Job) -> pb.Job:
    job.file_pattern = file_pattern(job.request.output.name)
    return job
