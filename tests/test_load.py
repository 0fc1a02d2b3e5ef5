"""Load: many concurrent clients, priorities, and the queue limit (nothing lost past it)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from genfx.client import Client, GenFXError
from genfx.local_server import LocalServer
from genfx.proto import genfx_pb2 as pb
from genfx.shot import Shot

from .conftest import small_request
from .event_order import event_order_problems

pytestmark = pytest.mark.slow
CLIENTS = 50
MAX_SERVER_RSS = 3 << 30  # a leak per job or per stream would show up well past this


def peak_rss_bytes(pid: int) -> int:
    """VmHWM: the process's peak resident set size (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc status")


def test_fifty_concurrent_clients_all_complete(
    tmp_path: Path, shot: Shot, record_property: Callable[[str, object], None]
) -> None:
    results: dict[int, tuple[str, int, list[str]]] = {}
    errors: list[BaseException] = []

    def one_client(i: int) -> None:
        try:
            with Client(server.address, timeout=120) as c:
                job = c.submit(small_request(shot, frames=1, steps=1, seed=i, prompt=f"client {i}"))
                events = list(c.watch(job.id))
                final = c.get_job(job.id)
                results[i] = (job.id, final.state, event_order_problems(events, final))
        except BaseException as exc:  # collected and reported below
            errors.append(exc)

    with LocalServer(tmp_path / "data") as server:
        started = time.monotonic()
        threads = [threading.Thread(target=one_client, args=(i,)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(600)
        assert not errors, errors[:3]
        assert len(results) == CLIENTS
        assert {state for _, state, _ in results.values()} == {pb.JOB_STATE_SUCCEEDED}
        # Every watcher saw its job's whole event log, in order, with no gap.
        for _, _, problems in results.values():
            assert problems == []
        with Client(server.address) as c:
            assert len({job_id for job_id, _, _ in results.values()}) == CLIENTS
            assert len(c.list_jobs([pb.JOB_STATE_SUCCEEDED], limit=1000)) == CLIENTS
        assert server.proc is not None
        rss = peak_rss_bytes(server.proc.pid)
        seconds = time.monotonic() - started
        print(f"\n{CLIENTS} clients: all done in {seconds:.1f} s; server peak RSS {rss / 2**20:.0f} MiB")
        record_property("server_peak_rss_mib", round(rss / 2**20))
        assert rss < MAX_SERVER_RSS


def test_priorities_and_queue_limit(tmp_path: Path, shot: Shot) -> None:
    with (
        LocalServer(tmp_path / "data", extra_args=("--max-queued-jobs", "5")) as server,
        Client(server.address, timeout=60) as c,
    ):
        blocker = c.submit(small_request(shot, frames=3, steps=10, prompt="blocker"))
        while c.get_job(blocker.id).state != pb.JOB_STATE_RUNNING:
            time.sleep(0.05)
        queued = {
            p: c.submit(small_request(shot, frames=1, steps=1, priority=p, prompt=f"p{p}")).id
            for p in (0, 50, -10, 100)
        }
        # Queue full (1 running + 4 queued = 5): refused with a clear message, nothing else disturbed.
        with pytest.raises(GenFXError) as info:
            c.submit(small_request(shot, frames=1, steps=1, prompt="one too many"))
        assert info.value.code == "RESOURCE_EXHAUSTED"
        assert "max_queued_jobs" in info.value.message
        finished = {p: c.wait(job_id) for p, job_id in queued.items()}
        assert all(j.state == pb.JOB_STATE_SUCCEEDED for j in finished.values())
        assert c.wait(blocker.id).state == pb.JOB_STATE_SUCCEEDED
        start_order = sorted(finished, key=lambda p: finished[p].started_at)
        assert start_order == [100, 50, 0, -10]
        # Room again once the queue drained.
        assert c.wait(c.submit(small_request(shot, frames=1, steps=1)).id).state == pb.JOB_STATE_SUCCEEDED
