"""gRPC servicer for genfx.v1.GenFX (grpc.aio): validation, mapping to the job store, streaming.

Bad input never reaches a worker: it is answered here with a status code and a message naming the field.

Every handler is a coroutine on the server's event loop; anything that blocks (SQLite, file reads and
writes, image header probes, model hashing) runs on the ``blocking`` executor, so a health check never
waits behind it. A stream that waits (WatchJob between events, a slow upload, a slow fetch reader)
holds no thread.

Errors map to statuses in one place (``status_for``): our exceptions to the contract's codes, storage
failures to RESOURCE_EXHAUSTED (full) or UNAVAILABLE, anything else to INTERNAL with a reference to the
log. Never UNKNOWN; messages never show server paths.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent import futures
from pathlib import Path
from typing import IO, Any, ParamSpec, TypeVar

import grpc
import grpc.aio

import genfx
from genfx.proto import genfx_pb2 as pb
from genfx.proto import genfx_pb2_grpc as pb_grpc
from inference_server import defaults, page_tokens
from inference_server.engine.passes import PassError, probe
from inference_server.estimate import estimate
from inference_server.executor import Executor
from inference_server.frame_writer import file_pattern
from inference_server.jobs import TERMINAL_STATES, JobNotEnded, JobNotFound, JobStore, QueueFull
from inference_server.models import ModelRegistry, UnknownModelError
from inference_server.step_times import StepTimes
from inference_server.storage import ASSET_ID, AssetError, DataDir, describe_failure, storage_failure
from inference_server.validation import Limits, RequestError, check_pass_pixels, invalid, validate_generate
from inference_server.wakeups import JobWakeups

log = logging.getLogger("genfx.service")

DEFAULT_CHUNK = 1 << 20
MIN_CHUNK = 64 << 10
MAX_CHUNK = 1 << 20
MAX_UPLOAD_CHUNK = 1 << 20  # UploadAssetChunk.data, as documented
JOB_ID_PATTERN = re.compile(r"[0-9a-f]{32}")
WATCH_REFRESH_S = 5.0  # a watcher re-reads its job this often even without a wake-up (belt and braces)
LIST_PAGE_BYTES = 4 << 20  # a ListJobs answer stays well under the 8 MiB message limit

P = ParamSpec("P")
T = TypeVar("T")
Context = grpc.aio.ServicerContext[Any, Any]


def status_for(exc: BaseException, data: DataDir | None = None) -> tuple[grpc.StatusCode, str]:
    """The status and message a failed call answers with (see the module doc)."""
    if isinstance(exc, RequestError):
        return exc.code, exc.message
    if isinstance(exc, JobNotFound):
        return grpc.StatusCode.NOT_FOUND, str(exc)
    if isinstance(exc, QueueFull):
        return grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc)
    if isinstance(exc, JobNotEnded):
        return grpc.StatusCode.FAILED_PRECONDITION, str(exc)
    if isinstance(exc, AssetError):
        return grpc.StatusCode.INVALID_ARGUMENT, str(exc)
    kind = storage_failure(exc)
    if kind == "full":
        what = describe_failure(exc, data)
        return grpc.StatusCode.RESOURCE_EXHAUSTED, f"the server's storage is full ({what}); retry later"
    if kind == "unavailable":
        log.error("storage failure: %s", describe_failure(exc, data))
        what = describe_failure(exc, data)
        return (
            grpc.StatusCode.UNAVAILABLE,
            f"the server's storage cannot be used right now ({what}); retry later",
        )
    reference = uuid.uuid4().hex[:12]
    log.error("internal error %s", reference, exc_info=exc)
    return grpc.StatusCode.INTERNAL, f"internal error (reference {reference} in the server log)"


UnaryMethod = Callable[[Any, Any, Context], Awaitable[Any]]
StreamMethod = Callable[[Any, Any, Context], AsyncIterator[Any]]


def _answers(method: UnaryMethod) -> UnaryMethod:
    """A unary (or client-streaming) handler whose exceptions become statuses (status_for)."""

    @functools.wraps(method)
    async def wrapper(self: GenFXService, request: Any, context: Context) -> Any:
        try:
            return await method(self, request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await context.abort(*status_for(exc, self.data))

    return wrapper


def _streams(method: StreamMethod) -> StreamMethod:
    """A server-streaming handler whose exceptions become statuses (status_for)."""

    @functools.wraps(method)
    async def wrapper(self: GenFXService, request: Any, context: Context) -> AsyncIterator[Any]:
        try:
            async for item in method(self, request, context):
                yield item
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await context.abort(*status_for(exc, self.data))

    return wrapper


def _check_job_id(job_id: str) -> None:
    if not JOB_ID_PATTERN.fullmatch(job_id):
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
        *,
        blocking: futures.Executor,
        wakeups: JobWakeups,
        job_retention_hours: float = 0.0,
        upload_idle_timeout_s: float = 60.0,
        step_times: StepTimes | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.executor = executor
        self.data = data
        self.limits = limits
        self.auth_required = auth_required
        self.step_times = step_times or StepTimes()
        self.blocking = blocking
        self.wakeups = wakeups
        self.job_retention_hours = job_retention_hours
        self.upload_idle_timeout_s = upload_idle_timeout_s

    async def _run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn`` on the blocking executor: the event loop never waits on SQL or files."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.blocking, functools.partial(fn, *args, **kwargs))

    def _output_dir(self, job_id: str) -> str:
        return str(self.data.job_dir(job_id))

    def _job(self, job_id: str) -> pb.Job:
        return with_file_pattern(self.store.get(job_id, self._output_dir(job_id)))

    # ---- info -------------------------------------------------------------------------------------

    @_answers
    async def GetServerInfo(self, request: pb.GetServerInfoRequest, context: Context) -> pb.ServerInfo:
        return await self._run(self._server_info)

    def _server_info(self) -> pb.ServerInfo:
        models = []
        for name in self.registry.names():
            info = self.registry.info(name)
            model = pb.ModelInfo(
                name=info.name,
                family=info.family,
                native_width=info.native_width,
                native_height=info.native_height,
                capabilities=list(info.capabilities),
                hash=info.hash,
            )
            if info.sim_controlnet is not None:
                cn = info.sim_controlnet
                model.sim_controlnet.CopyFrom(
                    pb.ControlNetInfo(
                        hash=cn.hash, base_model_hash=cn.base_model_hash, dataset_hash=cn.dataset_hash
                    )
                )
            models.append(model)
        loras = [
            pb.LoraInfo(
                name=lora.name,
                hash=lora.hash,
                base_model_hash=lora.base_model_hash,
                models=list(lora.models),
                dataset_hash=lora.dataset_hash,
            )
            for lora in self.registry.loras()
        ]
        devices = self.executor.devices()
        return pb.ServerInfo(
            version=genfx.__version__,
            models=models,
            devices=devices,
            limits=self.limits.to_proto(),
            auth_required=self.auth_required,
            defaults=defaults.to_proto(),
            loras=loras,
            job_retention_hours=self.job_retention_hours,
            step_times=self.step_times.to_proto(),
        )

    # ---- assets -----------------------------------------------------------------------------------

    async def _next_chunk(self, chunks: AsyncIterator[pb.UploadAssetChunk]) -> pb.UploadAssetChunk | None:
        """The next message, None at the end; DEADLINE_EXCEEDED when the client sends nothing for
        upload_idle_timeout_s (a stalled or half-open upload must not hold its temp file for ever)."""
        try:
            return await asyncio.wait_for(chunks.__anext__(), self.upload_idle_timeout_s)
        except StopAsyncIteration:
            return None
        except asyncio.TimeoutError:
            raise RequestError(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"data: nothing received for {self.upload_idle_timeout_s:g} s; upload again",
            ) from None

    @_answers
    async def UploadAsset(
        self, request_iterator: AsyncIterator[pb.UploadAssetChunk], context: Context
    ) -> pb.Asset:
        chunks = aiter(request_iterator)
        first = await self._next_chunk(chunks)
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
        upload = await self._run(self.data.assets.begin, header.size, header.sha256)
        try:
            while (chunk := await self._next_chunk(chunks)) is not None:
                if chunk.WhichOneof("part") != "data":
                    raise invalid("data: only the first message may carry a header")
                if len(chunk.data) > MAX_UPLOAD_CHUNK:
                    raise invalid(
                        f"data: a chunk of {len(chunk.data)} bytes exceeds the limit of {MAX_UPLOAD_CHUNK}"
                        " bytes per message"
                    )
                await self._run(upload.write, chunk.data)
            stored = await self._run(upload.finish, self._check_image_size)
        finally:
            await self._run(upload.abort)
        return pb.Asset(
            id=stored.id, size=stored.size, deduplicated=stored.deduplicated, format=sniff_format(stored.head)
        )

    def _check_image_size(self, path: Path) -> None:
        """Refuses an image whose header declares more pixels than a pass may have. Bytes that are no
        image OIIO reads are stored as they are: submit says what is wrong with them."""
        try:
            info = probe(path, 0, "upload")
        except PassError:
            return
        check_pass_pixels(info.width, info.height, self.limits, "data")

    # ---- jobs -------------------------------------------------------------------------------------

    def _validated(self, request: pb.GenerateRequest) -> pb.GenerateRequest:
        names = self.registry.names()
        capabilities = {}
        lora_modes = {}
        for name in names:
            try:
                info = self.registry.info(name)
            except UnknownModelError:
                continue
            capabilities[name] = info.capabilities
            lora_modes[name] = info.lora_modes
        return validate_generate(
            request,
            self.limits,
            names,
            self.registry.default_name(),
            capabilities,
            assets=self.data.assets,
            loras={lora.name: lora.models for lora in self.registry.loras()},
            lora_modes=lora_modes,
        )

    def _submit(self, request: pb.GenerateRequest) -> str:
        req = self._validated(request)
        frames = req.shot.frame_end - req.shot.frame_start + 1
        job_id = self.store.create(req, frames, max_active=self.limits.max_queued_jobs)
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

    @_answers
    async def SubmitJob(self, request: pb.GenerateRequest, context: Context) -> pb.Job:
        return await self._run(lambda: self._job(self._submit(request)))

    @_answers
    async def EstimateJob(self, request: pb.GenerateRequest, context: Context) -> pb.JobEstimate:
        def run() -> pb.JobEstimate:
            req = self._validated(request)
            return estimate(req, self.registry.info(req.model), self.step_times)

        return await self._run(run)

    @_streams
    async def Generate(self, request: pb.GenerateRequest, context: Context) -> AsyncIterator[pb.JobEvent]:
        job_id = await self._run(self._submit, request)
        async for event in self._watch(job_id, 0):
            yield event

    @_streams
    async def WatchJob(self, request: pb.WatchJobRequest, context: Context) -> AsyncIterator[pb.JobEvent]:
        _check_job_id(request.job_id)
        if request.from_seq < 0:
            raise invalid(f"from_seq: must be >= 0 (got {request.from_seq})")
        await self._run(self.store.state, request.job_id)  # NOT_FOUND before the stream starts
        async for event in self._watch(request.job_id, request.from_seq):
            yield event

    async def _watch(self, job_id: str, from_seq: int) -> AsyncIterator[pb.JobEvent]:
        """Stored events from ``from_seq``, then the latest live progress, then news as it happens. The
        database is read only when the store says there are stored events this watcher has not seen."""
        next_seq = max(from_seq, 1)
        sent_progress: pb.JobEvent | None = None
        wake = self.wakeups.subscribe(job_id)
        try:
            while True:
                wake.clear()
                known = self.store.stored_up_to(job_id)
                if known is None or known >= next_seq:
                    state, events = await self._run(self.store.watch_snapshot, job_id, next_seq)
                    for event in events:
                        yield event
                        next_seq = event.seq + 1
                    if state in TERMINAL_STATES:
                        return
                progress = self.store.latest_progress(job_id)
                if progress is not None and progress is not sent_progress and progress.seq < next_seq:
                    yield progress
                    sent_progress = progress
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(wake.wait(), WATCH_REFRESH_S)
        finally:
            self.wakeups.unsubscribe(job_id, wake)

    @_answers
    async def GetJob(self, request: pb.GetJobRequest, context: Context) -> pb.Job:
        _check_job_id(request.job_id)
        return await self._run(self._job, request.job_id)

    @_answers
    async def ListJobs(self, request: pb.ListJobsRequest, context: Context) -> pb.ListJobsResponse:
        limit = request.limit or 100
        if not 1 <= limit <= 1000:
            raise invalid(f"limit: must be in 1..1000 (got {request.limit})")
        states = set(request.states)  # a state named many times is one state: no SQL variable per entry
        for state in sorted(states):
            if state not in pb.JobState.values() or state == pb.JOB_STATE_UNSPECIFIED:
                raise invalid(f"states: unknown job state {state}")
        after = page_tokens.decode(request.page_token, sorted(states)) if request.page_token else None
        jobs, cursor = await self._run(
            self.store.list_page,
            sorted(states),
            limit,
            after,
            abridged=not request.full_requests,
            budget_bytes=LIST_PAGE_BYTES,
            output_dir_for=self._output_dir,
        )
        return pb.ListJobsResponse(
            jobs=[with_file_pattern(j) for j in jobs],
            next_page_token=page_tokens.encode(cursor, sorted(states)) if cursor else "",
        )

    @_answers
    async def CancelJob(self, request: pb.CancelJobRequest, context: Context) -> pb.Job:
        _check_job_id(request.job_id)
        await self._run(self.store.request_cancel, request.job_id)
        log.info("job %s: cancel requested", request.job_id, extra={"job_id": request.job_id})
        return await self._run(self._job, request.job_id)

    @_answers
    async def DeleteJob(self, request: pb.DeleteJobRequest, context: Context) -> pb.DeleteJobResponse:
        _check_job_id(request.job_id)
        frames = await self._run(self.store.delete, request.job_id)
        log.info("job %s deleted (%d frames)", request.job_id, frames, extra={"job_id": request.job_id})
        return pb.DeleteJobResponse(job_id=request.job_id, frames_deleted=frames)

    # ---- frames -----------------------------------------------------------------------------------

    @_streams
    async def FetchFrame(
        self, request: pb.FetchFrameRequest, context: Context
    ) -> AsyncIterator[pb.FrameChunk]:
        _check_job_id(request.job_id)
        await self._run(self.store.state, request.job_id)
        record = await self._run(self.store.frame, request.job_id, request.frame)
        if record is None:
            raise RequestError(
                grpc.StatusCode.NOT_FOUND, f"frame: job {request.job_id} has no frame {request.frame} (yet)"
            )
        chunk = request.chunk_size or DEFAULT_CHUNK
        if not MIN_CHUNK <= chunk <= MAX_CHUNK:
            raise invalid(f"chunk_size: must be in {MIN_CHUNK}..{MAX_CHUNK} bytes (got {request.chunk_size})")
        if not 0 <= request.offset <= record.size_bytes:
            raise invalid(f"offset: must be in 0..{record.size_bytes} (the file size), got {request.offset}")
        where = f"frame {record.frame} of job {request.job_id}"
        f = await self._run(open_frame, self.data.job_dir(request.job_id) / record.file_name, record, where)
        try:
            await self._run(f.seek, request.offset)
            pos = request.offset
            while True:
                data = await self._run(f.read, chunk)
                if not data and pos < record.size_bytes:
                    raise damaged(where, f"it ended at {pos} of {record.size_bytes} bytes")
                last = pos + len(data) >= record.size_bytes
                yield pb.FrameChunk(
                    offset=pos,
                    data=data,
                    total_size=record.size_bytes,
                    file_name=record.file_name,
                    sha256=record.sha256 if last else "",
                    last=last,
                )
                pos += len(data)
                if last:
                    return
        finally:
            await self._run(f.close)


def damaged(where: str, detail: str) -> RequestError:
    return RequestError(
        grpc.StatusCode.DATA_LOSS, f"{where}: the file on the server is damaged ({detail}); re-run the job"
    )


def open_frame(path: Path, record: pb.FrameInfo, where: str) -> IO[bytes]:
    """The frame's file, open, with the size that was recorded; NOT_FOUND when it is gone (deleted by
    hand), DATA_LOSS when its size changed (truncated)."""
    try:
        f = path.open("rb")
    except FileNotFoundError:
        raise RequestError(
            grpc.StatusCode.NOT_FOUND, f"{where}: its file is no longer on the server (deleted or lost)"
        ) from None
    size = os.fstat(f.fileno()).st_size
    if size != record.size_bytes:
        f.close()
        raise damaged(where, f"{size} bytes, {record.size_bytes} were written")
    return f


def with_file_pattern(job: pb.Job) -> pb.Job:
    job.file_pattern = file_pattern(job.request.output.name)
    return job
