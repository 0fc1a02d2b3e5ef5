"""Reliability under abuse (issue 16): no starvation, proper statuses where the contract promises one,
the queue limit under concurrency, paging, deletion and retention, one authorization header, metrics on
loopback. Each test fails on the server before these fixes."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from genfx.client import Client, GenFXError
from genfx.local_server import LocalServer
from genfx.proto import genfx_pb2 as pb
from genfx.proto import genfx_pb2_grpc as pb_grpc
from genfx.shot import Shot
from inference_server.jobs import JobStore

from .conftest import small_request

pytestmark = pytest.mark.slow

WATCHERS = 300
CHANNELS = 30  # 30 "monitor windows" with 10 open streams each
UPLOADS = 20  # and 20 AE panels uploading slowly


@pytest.fixture(scope="module")
def rel_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with LocalServer(tmp_path_factory.mktemp("reliability")) as srv:
        yield srv


TOKEN = "s3cret"
RETENTION_HOURS = 0.0005  # 1.8 s; the sweep looks every second


@pytest.fixture(scope="module")
def hardened(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """One server for the settings tests: beyond loopback with a token, metrics, a small queue limit,
    short retention and a short upload idle timeout (one start instead of five)."""
    args = (
        *("--host", "0.0.0.0", "--metrics-port", "0", "--max-queued-jobs", "3"),
        *("--job-retention-hours", str(RETENTION_HOURS), "--upload-idle-timeout", "1"),
    )
    with LocalServer(tmp_path_factory.mktemp("hardened"), token=TOKEN, extra_args=args) as srv:
        yield srv


@pytest.fixture()
def c(rel_server: LocalServer) -> Iterator[Client]:
    with Client(rel_server.address, timeout=60) as client:
        yield client


def _health(address: str, timeout: float) -> int:
    with grpc.insecure_channel(address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout)
    return int(reply.status)


def test_health_and_short_calls_answer_with_300_open_watchers(
    rel_server: LocalServer, c: Client, shot: Shot
) -> None:
    """32 open streams (watchers, slow uploads) used to take every RPC thread: health and
    GetServerInfo then timed out."""
    job = c.submit(small_request(shot, frames=2, steps=150, width=128, height=128, prompt="held open"))
    opened = threading.Event()
    answers: dict[str, object] = {}
    sent: list[int] = []

    async def slow_upload() -> AsyncIterator[pb.UploadAssetChunk]:
        """An upload that sends its header and a first chunk, then nothing until the test ends."""
        yield pb.UploadAssetChunk(header=pb.AssetHeader(filename="slow.bin", size=1 << 20))
        yield pb.UploadAssetChunk(data=bytes(1024))
        sent.append(1)
        while "done" not in answers:
            await asyncio.sleep(0.05)

    async def watchers() -> None:
        channels = [grpc.aio.insecure_channel(rel_server.address) for _ in range(CHANNELS)]
        calls: list[Any] = []
        try:
            for i in range(WATCHERS):
                stub = pb_grpc.GenFXStub(channels[i % CHANNELS])
                calls.append(stub.WatchJob(pb.WatchJobRequest(job_id=job.id)))
            await asyncio.gather(*(call.read() for call in calls))  # every stream has answered once
            uploads = [pb_grpc.GenFXStub(channels[i]).UploadAsset(slow_upload()) for i in range(UPLOADS)]
            calls += uploads
            while len(sent) < UPLOADS:
                await asyncio.sleep(0.05)
            opened.set()
            while "done" not in answers:
                await asyncio.sleep(0.05)
            assert not any(u.done() for u in uploads)  # still open, waiting for data, all along
        finally:
            for call in calls:
                call.cancel()
            for channel in channels:
                await channel.close(None)  # grpc-stubs make grace required; None is grpc's default

    def run() -> None:
        try:
            asyncio.run(watchers())
        except BaseException as exc:  # seen by the test thread below
            answers["error"] = exc

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    try:
        assert opened.wait(120), "the watchers did not open"
        # Generous deadlines (a shared CI box): before the fix these calls never got a thread at all.
        for _ in range(5):
            assert _health(rel_server.address, timeout=10) == health_pb2.HealthCheckResponse.SERVING
        assert c.info().version
        assert c.get_job(job.id).state in (pb.JOB_STATE_QUEUED, pb.JOB_STATE_RUNNING)
    finally:
        answers["done"] = True
        runner.join(60)
        c.cancel(job.id)
        c.wait(job.id)
    assert "error" not in answers, answers["error"]


def test_concurrent_submits_never_pass_the_queue_limit(hardened: LocalServer, shot: Shot) -> None:
    """30 concurrent submits with --max-queued-jobs 3 were accepted 5, 3 and 6 times."""
    accepted: list[str] = []
    refused: list[str] = []
    start = threading.Barrier(30)

    def submit(i: int) -> None:
        with Client(hardened.address, token=TOKEN, timeout=60) as client:
            req = small_request(shot, frames=1, steps=150, width=128, height=128, seed=i)
            start.wait()
            try:
                accepted.append(client.submit(req).id)
            except GenFXError as exc:
                refused.append(exc.code)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    with Client(hardened.address, token=TOKEN, timeout=60) as client:
        for job_id in accepted:
            client.cancel(job_id)
            client.wait(job_id)
    assert len(accepted) == 3, (accepted, refused)
    assert refused == ["RESOURCE_EXHAUSTED"] * 27


def test_two_authorization_headers_are_refused(hardened: LocalServer) -> None:
    with grpc.insecure_channel(hardened.address) as ch:
        stub = pb_grpc.GenFXStub(ch)
        good = ("authorization", f"Bearer {TOKEN}")
        assert stub.GetServerInfo(pb.GetServerInfoRequest(), metadata=(good,), timeout=30).auth_required
        for pair in ((good, ("authorization", "Bearer other")), (("authorization", "Bearer other"), good)):
            with pytest.raises(grpc.RpcError) as info:
                stub.GetServerInfo(pb.GetServerInfoRequest(), metadata=pair, timeout=30)
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert "2 authorization headers" in (info.value.details() or "")


def _finished(client: Client, req: pb.GenerateRequest) -> pb.Job:
    job = client.wait(client.submit(req).id)
    assert job.state == pb.JOB_STATE_SUCCEEDED, job.message
    return job


def test_fetch_of_a_vanished_or_truncated_frame(
    rel_server: LocalServer, c: Client, shot: Shot, tmp_path: Path
) -> None:
    """A vanished file was UNKNOWN with the server's path in the message; a truncated one streamed OK
    but never sent `last`."""
    job = _finished(c, small_request(shot, frames=2, prompt="frames to damage"))
    folder = rel_server.data_dir / "jobs" / job.id
    gone, cut = job.frame_infos
    (folder / gone.file_name).unlink()
    with pytest.raises(GenFXError) as info:
        c.fetch_frame(job.id, gone.frame, tmp_path / "gone.exr", retries=0)
    assert info.value.code == "NOT_FOUND"
    assert "no longer on the server" in info.value.message
    assert str(rel_server.data_dir) not in info.value.message and "/" not in info.value.message
    path = folder / cut.file_name
    path.write_bytes(path.read_bytes()[: cut.size_bytes // 2])
    with pytest.raises(GenFXError) as info:
        c.fetch_frame(job.id, cut.frame, tmp_path / "cut.exr", retries=0)
    assert info.value.code == "DATA_LOSS"
    assert "damaged" in info.value.message and str(rel_server.data_dir) not in info.value.message


def test_list_jobs_pages_abridges_and_survives_many_states(c: Client, shot: Shot) -> None:
    for i in range(3):
        c.submit(small_request(shot, frames=2, steps=1, seed=i, prompt=f"listed {i}"))
    newest = c.list_jobs(limit=3)
    paged = list(c.iter_jobs(page_size=1))[:3]
    assert [j.id for j in paged] == [j.id for j in newest]
    assert all(j.request_abridged and not j.request.camera.samples for j in newest)
    full = c.list_jobs(limit=1, full_requests=True)[0]
    assert not full.request_abridged and full.request.camera.samples
    # 300k states used to need 300k SQL variables (INTERNAL); the same state many times is one state.
    many = pb.ListJobsRequest(states=[pb.JOB_STATE_QUEUED] * 300_000, limit=5)
    with grpc.insecure_channel(c.address, options=[("grpc.max_send_message_length", 8 << 20)]) as ch:
        assert len(pb_grpc.GenFXStub(ch).ListJobs(many, timeout=60).jobs) <= 5
    with pytest.raises(GenFXError) as info:
        c._unary(c._stub.ListJobs, pb.ListJobsRequest(page_token="not-a-token"))
    assert info.value.code == "INVALID_ARGUMENT" and "page_token" in info.value.message


def test_full_listings_page_by_size(tmp_path: Path, shot: Shot) -> None:
    """54 jobs of 1000 frames with per-frame cameras passed the 8 MiB message limit in one ListJobs: a
    page also ends at its byte budget, and the next page goes on where it ended."""
    store = JobStore(tmp_path / "jobs.sqlite")
    req = small_request(shot, frames=2, prompt="x" * 20_000)  # ~20 KB per job
    for i in range(12):
        req.seed = i
        store.create(req, 2)
    one = store.list_page([], 1, abridged=False)[0][0].ByteSize()
    assert one > 20_000
    budget = int(2.5 * one)  # two jobs a page
    pages = []
    cursor = None
    while True:
        page, cursor = store.list_page([], 100, cursor, abridged=False, budget_bytes=budget)
        pages.append(page)
        assert sum(j.ByteSize() for j in page) <= budget
        if cursor is None:
            break
    assert [len(p) for p in pages] == [2] * 6
    assert len({j.id for p in pages for j in p}) == 12


def test_unknown_fields_are_not_stored(c: Client, shot: Shot) -> None:
    """Unknown fields were stored and echoed by every listing (7 MB of them broke ListJobs)."""
    req = small_request(shot, frames=1, steps=1, prompt="padded")
    padding = b"\xc2\x3e" + bytes([0x80, 0x80, 0x40]) + bytes(1 << 20)  # field 1000, 1 MiB of bytes
    padded = pb.GenerateRequest.FromString(req.SerializeToString() + padding)
    assert padded.ByteSize() > 1 << 20
    job = c.submit(padded)
    stored = c.get_job(job.id).request
    assert stored.ByteSize() < 64 << 10
    c.cancel(job.id)


def test_delete_job_removes_record_and_frames(rel_server: LocalServer, c: Client, shot: Shot) -> None:
    running = c.submit(small_request(shot, frames=3, steps=150, width=128, height=128, prompt="busy"))
    with pytest.raises(GenFXError) as info:
        c.delete_job(running.id)
    assert info.value.code == "FAILED_PRECONDITION" and "cancel" in info.value.message
    c.cancel(running.id)
    done = _finished(c, small_request(shot, frames=2, steps=1, prompt="delete me"))
    assert (rel_server.data_dir / "jobs" / done.id).is_dir()
    assert c.delete_job(done.id).frames_deleted == 2
    assert not (rel_server.data_dir / "jobs" / done.id).exists()
    with pytest.raises(GenFXError) as info:
        c.get_job(done.id)
    assert info.value.code == "NOT_FOUND"
    assert done.id not in {j.id for j in c.iter_jobs()}


def test_retention_deletes_ended_jobs(hardened: LocalServer, shot: Shot) -> None:
    with Client(hardened.address, token=TOKEN, timeout=60) as c:
        assert c.info().job_retention_hours == pytest.approx(RETENTION_HOURS)
        job = _finished(c, small_request(shot, frames=1, steps=1))
        folder = hardened.data_dir / "jobs" / job.id
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and folder.exists():
            time.sleep(0.5)
        assert not folder.exists()
        with pytest.raises(GenFXError) as info:
            c.get_job(job.id)
        assert info.value.code == "NOT_FOUND"


def _listening(port: int) -> set[str]:
    """Local addresses listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A = LISTEN
                found.add(address)
    return found


def test_metrics_listen_on_loopback_even_when_grpc_does_not(hardened: LocalServer) -> None:
    """/metrics has no auth: it used to bind the gRPC host (0.0.0.0 here)."""
    assert _listening(hardened.port) & {"00000000", "00000000000000000000000000000000"}
    assert _listening(hardened.metrics_port) == {"0100007F"}  # 127.0.0.1


def test_a_stalled_upload_is_ended(hardened: LocalServer) -> None:
    """A stream that sends a header and then nothing held a thread (and its temp file) for ever."""

    def stalled() -> Iterator[pb.UploadAssetChunk]:
        yield pb.UploadAssetChunk(header=pb.AssetHeader(filename="p.exr", size=1000))
        yield pb.UploadAssetChunk(data=b"x" * 10)
        time.sleep(30)

    metadata = (("authorization", f"Bearer {TOKEN}"),)
    with grpc.insecure_channel(hardened.address) as ch, pytest.raises(grpc.RpcError) as info:
        pb_grpc.GenFXStub(ch).UploadAsset(stalled(), metadata=metadata, timeout=20)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "nothing received for 1 s" in (info.value.details() or "")
    assert not [p for p in (hardened.data_dir / "assets").iterdir()]
