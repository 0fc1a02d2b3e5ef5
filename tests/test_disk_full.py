"""A full disk never kills a worker silently. Before: a progress write hit `database or disk is full`, the
failure handler failed the same way, the worker thread died, the job stayed RUNNING and health said
SERVING until a restart.

Two tests: a real server whose data folder is a small tmpfs made in the test (needs root and mount;
skipped where the machine does not allow it), and an in-process worker fed the same failures the
operating system and SQLite raise (runs everywhere)."""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from genfx.client import Client, GenFXError
from genfx.local_server import LocalServer
from genfx.proto import genfx_pb2 as pb
from genfx.shot import Shot
from inference_server import worker as worker_module
from inference_server.health import Health
from inference_server.jobs import JobStore
from inference_server.models import ModelRegistry
from inference_server.storage import DataDir
from inference_server.worker import MAX_STORAGE_FAILURES, Worker

from .conftest import small_request

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


# ---- a real server on a small filesystem -------------------------------------------------------------


@contextlib.contextmanager
def small_filesystem(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the in-process test covers the worker")
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({made.stderr.decode().strip()})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(folder: Path) -> Path:
    """Writes a ballast file until the filesystem says ENOSPC; returns it."""
    ballast = folder / "ballast"
    with ballast.open("wb", buffering=0) as f:
        for block in (1 << 20, 4096, 512):
            with contextlib.suppress(OSError):
                while True:
                    f.write(bytes(block))
    return ballast


def _health(address: str) -> int:
    with grpc.insecure_channel(address) as channel:
        return int(
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10).status
        )


@pytest.mark.slow
def test_a_full_disk_requeues_the_job_and_health_follows(tmp_path: Path, shot: Shot) -> None:
    models = tmp_path / "models"  # the built-in model stays off the small filesystem
    models.mkdir()
    with small_filesystem(tmp_path / "data", "24m") as data:
        (data / "models").symlink_to(models)
        with LocalServer(data) as server, Client(server.address, timeout=60) as c:
            job = c.submit(
                small_request(shot, frames=6, steps=2, width=64, height=64, prompt="fills the disk")
            )
            for event in c.watch(job.id):
                if event.WhichOneof("kind") == "frame_done":
                    break
            ballast = fill(data)
            _wait_until(lambda: _health(server.address) == NOT_SERVING, 120, "health NOT_SERVING")
            # What clients get meanwhile: the contract's statuses, never UNKNOWN.
            with pytest.raises(GenFXError) as info:
                c.submit(small_request(shot, frames=1, steps=1))
            assert info.value.code in ("RESOURCE_EXHAUSTED", "UNAVAILABLE"), info.value
            assert "storage" in info.value.message
            plate = tmp_path / "plate.bin"
            plate.write_bytes(os.urandom(256 << 10))
            with pytest.raises(GenFXError) as info:
                c.upload(plate)
            assert info.value.code == "RESOURCE_EXHAUSTED", info.value
            assert str(data) not in info.value.message
            assert c.get_job(job.id).state in (pb.JOB_STATE_RUNNING, pb.JOB_STATE_QUEUED)
            ballast.unlink()  # space again: the worker notices by itself, the job resumes
            _wait_until(lambda: _health(server.address) == SERVING, 120, "health SERVING again")
            final = c.wait(job.id)
            assert final.state == pb.JOB_STATE_SUCCEEDED, final.message
            assert [i.frame for i in final.frame_infos] == list(range(1001, 1007))
            requeues = [
                e.state.message
                for e in c.watch(job.id)
                if e.WhichOneof("kind") == "state"
                and e.state.state == pb.JOB_STATE_QUEUED
                and e.state.message
            ]
            assert any("storage is full" in m for m in requeues), requeues
            assert all(str(data) not in m for m in requeues)


# ---- the same failures, in process ---------------------------------------------------------------


class FlakyStore(JobStore):
    """A real store whose next writes fail the way SQLite fails on a full disk."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.full_writes = 0

    def _full(self) -> None:
        if self.full_writes:
            self.full_writes -= 1
            raise sqlite3.OperationalError("database or disk is full")

    def requeue(self, job_id: str, message: str) -> None:
        self._full()
        super().requeue(job_id, message)

    def finish(self, job_id: str, state: int, message: str = "") -> None:
        self._full()
        super().finish(job_id, state, message)


class FullDisk(DataDir):
    """A data folder whose probe write fails with ENOSPC while ``full`` is set."""

    full = threading.Event()

    def probe_writable(self) -> None:
        if self.full.is_set():
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.root / ".probe"))
        super().probe_writable()


class DiskFillingJob:
    """Stands in for shot_job.ShotJob: its frame writes raise ENOSPC (as write_atomic does) while the
    disk is full; runs is how many times it was started."""

    runs = 0
    fail_times = 1

    def __init__(self, job_id: str, *args: Any) -> None:
        self.job_id = job_id

    def progress(self, frame: int, step: int, steps: int) -> None:
        pass

    def run(self, hooks: Any) -> None:
        hooks.before_frame(1001)
        DiskFillingJob.runs += 1
        if DiskFillingJob.runs <= DiskFillingJob.fail_times:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/srv/genfx/jobs/x/.genfx.1002.exr.tmp")


@pytest.fixture()
def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FlakyStore, Worker, Health]]:
    monkeypatch.setattr(worker_module, "BACKOFF_S", (0.02,))
    DiskFillingJob.runs = 0
    FullDisk.full.clear()
    store = FlakyStore(tmp_path / "jobs.sqlite")
    health = Health()
    w = Worker(
        "cpu", store, cast(ModelRegistry, None), FullDisk(tmp_path), health, job_factory=DiskFillingJob
    )
    w.start()
    yield store, w, health
    w.drain()
    w.join(10)


def test_the_worker_survives_a_full_disk_and_its_failure_handler_failing(
    rig: tuple[FlakyStore, Worker, Health],
) -> None:
    store, w, health = rig
    FullDisk.full.set()
    store.full_writes = 2  # recording the requeue fails too, twice
    job_id = store.create(pb.GenerateRequest(prompt="x"), 1)
    _wait_until(lambda: DiskFillingJob.runs == 1 and not health.serving, 10, "NOT_SERVING")
    time.sleep(0.2)
    assert w.is_alive() and not health.serving
    assert store.state(job_id) == pb.JOB_STATE_QUEUED  # recorded once the store took it: not RUNNING
    assert "probe" not in health.why_not()  # no server path in the reason
    FullDisk.full.clear()
    _wait_until(lambda: store.state(job_id) == pb.JOB_STATE_SUCCEEDED, 10, "the job to resume and finish")
    assert health.serving and w.is_alive()
    messages = [e.state.message for e in store.events_since(job_id, 1) if e.WhichOneof("kind") == "state"]
    assert any("storage is full (No space left on device)" in m for m in messages), messages
    assert not any("/srv" in m for m in messages)


def test_a_job_that_keeps_filling_the_disk_fails_with_the_reason(
    rig: tuple[FlakyStore, Worker, Health],
) -> None:
    store, w, health = rig
    DiskFillingJob.fail_times = MAX_STORAGE_FAILURES
    try:
        job_id = store.create(pb.GenerateRequest(prompt="x"), 1)
        _wait_until(lambda: store.state(job_id) == pb.JOB_STATE_FAILED, 10, "the job to fail")
    finally:
        DiskFillingJob.fail_times = 1
    assert DiskFillingJob.runs == MAX_STORAGE_FAILURES
    job = store.get(job_id)
    assert "storage is full" in job.message and f"{MAX_STORAGE_FAILURES} times" in job.message
    _wait_until(lambda: health.serving, 10, "SERVING after the probe succeeds")
    assert w.is_alive()
