"""Start-up: health says SERVING only while a worker can run; a clean start (fresh data folder, the
tiny model built, a first job) writes nothing to the log but the server's own lines. About 30 s on 2
loaded cores (two server starts and one tiny job); how fast SERVING comes is bench/bench_start.py's."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from genfx.client import Client
from genfx.local_server import LocalServer
from genfx.proto import genfx_pb2 as pb
from genfx.shot import Shot
from inference_server.devices import version_may_have_gpu
from inference_server.health import Health

from .conftest import small_request
from .crash_harness import free_port

# Every line the server writes: our log format, from our loggers (inference_server/logs.py).
OUR_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR) genfx\.")


def test_health_follows_what_the_workers_report() -> None:
    h = Health()
    flips: list[bool] = []
    h.on_change(flips.append)
    assert not h.serving and h.why_not() == "starting: no worker yet"
    h.report("worker cuda:0", False, "no CUDA device visible to torch")
    assert not h.serving and "worker cuda:0: no CUDA device" in h.why_not()
    h.report("worker cuda:1", True)
    assert h.serving and h.wait_serving(0)
    h.report("worker cuda:1", False, "data folder not writable")  # anything that stops a worker
    assert not h.serving
    h.report("worker cuda:1", True)
    h.shutting_down()
    assert not h.serving and h.why_not() == "shutting down"
    h.report("worker cuda:0", True)
    assert not h.serving and not h.wait_serving(0)  # a shutdown is final
    assert flips == [True, False, True, False]


def test_cpu_only_torch_builds_are_recognised_without_importing_torch() -> None:
    cpu = "__version__ = '2.13.0+cpu'\ncuda: Optional[str] = None\nhip: Optional[str] = None\n"
    assert not version_may_have_gpu(cpu)
    assert version_may_have_gpu(cpu.replace("cuda: Optional[str] = None", "cuda: Optional[str] = '12.8'"))
    assert version_may_have_gpu(cpu.replace("hip: Optional[str] = None", "hip = '6.3.4'"))
    assert version_may_have_gpu("__version__ = '9.0'\n")  # unsure: import torch and ask it


@pytest.mark.slow
def test_not_serving_while_no_worker_can_run(tmp_path: Path) -> None:
    """Asked for a GPU this machine has not got: the port answers, but health stays NOT_SERVING."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    port = free_port()
    log = tmp_path / "server.log"
    cmd = [sys.executable, "-m", "inference_server", "serve", "--port", str(port), "--device", "cuda:0"]
    with log.open("w") as err:
        proc = subprocess.Popen([*cmd, "--data-dir", str(tmp_path)], stdout=subprocess.PIPE, stderr=err)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            deadline = time.monotonic() + 120
            while "cannot run" not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.2)
            assert "worker cuda:0 cannot run jobs: no CUDA device visible to torch" in log.read_text()
            reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
        with Client(f"127.0.0.1:{port}") as c:
            assert c.list_jobs() == []  # still answering
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=60)
    assert b"GENFX_READY" not in out  # ready means serving


@pytest.mark.slow
def test_a_clean_start_writes_only_our_own_lines(tmp_path: Path, shot: Shot) -> None:
    data = tmp_path / "fresh"
    with LocalServer(data) as server, Client(server.address, timeout=120) as c:
        with grpc.insecure_channel(server.address) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING  # GENFX_READY came after SERVING
        assert [m.name for m in c.info().models] == ["tiny"]  # builds the tiny model: diffusers, transformers
        job = c.wait(c.submit(small_request(shot, frames=2, keyframe_step=2, temporal="reproject")).id)
        assert job.state == pb.JOB_STATE_SUCCEEDED, job.message
    lines = server.log_path.read_text().splitlines()
    assert lines and [line for line in lines if not OUR_LINE.match(line)] == []
