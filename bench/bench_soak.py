"""Soak: 300 open watchers and 20 submitters against one server for 10 minutes; health latency, and the
server's memory and open files before and after.

The load runs in a child process (grpc.aio: 300 WatchJob streams over 30 channels, as 30 monitor
windows would hold them, and 20 clients that each submit a small job, watch it to the end, fetch its
first frame and submit the next). This process probes grpc.health.v1 Check and GetServerInfo every
100 ms on their own channel. The baseline is the same probe on the idle server, measured first.

    python -m bench.bench_soak [--minutes 10] [--watchers 300] [--submitters 20]

Prints health p50/p99/max idle and under load (and the ratio), GetServerInfo p99, jobs finished,
statuses the load got (UNKNOWN/INTERNAL must be 0), and the server's RSS and open files before, at the
end of the load and after it settles.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import grpc.aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from genfx.local_server import LocalServer
from genfx.proto import genfx_pb2 as pb
from genfx.proto import genfx_pb2_grpc as pb_grpc
from tests.fuzz_requests import valid_request

WATCH_CHANNELS = 30


def server_usage(pid: int) -> tuple[int, int]:
    """(resident set size in bytes, open file descriptors) of a process (Linux /proc)."""
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * 1024
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


# ---- the load (child process) --------------------------------------------------------------------


async def _load(
    address: str, watchers: int, submitters: int, seconds: float, out: mp.Queue[dict[str, int]]
) -> None:
    end = time.monotonic() + seconds
    active: list[str] = []  # jobs submitted and not yet seen to end
    counts: Counter[str] = Counter()
    channels = [grpc.aio.insecure_channel(address) for _ in range(WATCH_CHANNELS)]

    async def submitter(i: int) -> None:
        async with grpc.aio.insecure_channel(address) as channel:
            stub = pb_grpc.GenFXStub(channel)
            n = 0
            while time.monotonic() < end:
                request = valid_request()
                request.seed = i * 1_000_000 + n
                request.shot.frame_end = request.shot.frame_start  # one frame
                n += 1
                try:
                    job = await stub.SubmitJob(request, timeout=60)
                    active.append(job.id)
                    async for _ in stub.WatchJob(pb.WatchJobRequest(job_id=job.id)):
                        pass
                    active.remove(job.id)
                    counts["jobs finished"] += 1
                    async for _ in stub.FetchFrame(
                        pb.FetchFrameRequest(job_id=job.id, frame=1001), timeout=60
                    ):
                        pass
                except grpc.RpcError as exc:
                    counts[f"submitter {exc.code().name}"] += 1
                    await asyncio.sleep(1)

    async def watcher(i: int) -> None:
        stub = pb_grpc.GenFXStub(channels[i % WATCH_CHANNELS])
        while time.monotonic() < end:
            if not active:
                await asyncio.sleep(0.1)
                continue
            job_id = random.choice(active)
            try:
                call = stub.WatchJob(pb.WatchJobRequest(job_id=job_id))
                remaining = end - time.monotonic()
                async for _ in _until(call, remaining):
                    counts["events watched"] += 1
                counts["watches"] += 1
            except grpc.RpcError as exc:
                counts[f"watcher {exc.code().name}"] += 1
                await asyncio.sleep(0.5)

    await asyncio.gather(*(submitter(i) for i in range(submitters)), *(watcher(i) for i in range(watchers)))
    for channel in channels:
        await channel.close(None)  # grpc-stubs make grace required; None is grpc's default
    out.put(dict(counts))


async def _until(
    call: grpc.aio.UnaryStreamCall[pb.WatchJobRequest, pb.JobEvent], seconds: float
) -> AsyncIterator[object]:
    """The stream's messages until it ends or ``seconds`` pass (then it is cancelled)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            message = await asyncio.wait_for(call.read(), max(0.0, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            call.cancel()
            return
        if message is grpc.aio.EOF:  # type: ignore[attr-defined]  # grpc-stubs lack aio.EOF
            return
        yield message


def run_load(
    address: str, watchers: int, submitters: int, seconds: float, out: mp.Queue[dict[str, int]]
) -> None:
    asyncio.run(_load(address, watchers, submitters, seconds, out))


# ---- the probe (this process) --------------------------------------------------------------------


class Probe(threading.Thread):
    """Health Check and GetServerInfo every 100 ms; latencies in ms."""

    def __init__(self, address: str) -> None:
        super().__init__(daemon=True)
        self.channel = grpc.insecure_channel(address)
        self.health: list[float] = []
        self.info: list[float] = []
        self.failures: Counter[str] = Counter()
        self.done = threading.Event()

    def run(self) -> None:
        health = health_pb2_grpc.HealthStub(self.channel)
        genfx = pb_grpc.GenFXStub(self.channel)
        while not self.done.wait(0.1):
            for name, call, into in (
                ("health", lambda: health.Check(health_pb2.HealthCheckRequest(), timeout=5), self.health),
                ("info", lambda: genfx.GetServerInfo(pb.GetServerInfoRequest(), timeout=5), self.info),
            ):
                started = time.perf_counter()
                try:
                    call()
                except grpc.RpcError as exc:
                    self.failures[f"{name} {exc.code().name}"] += 1
                    continue
                into.append((time.perf_counter() - started) * 1000)


def probe_for(address: str, seconds: float) -> Probe:
    probe = Probe(address)
    probe.start()
    time.sleep(seconds)
    probe.done.set()
    probe.join()
    return probe


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--watchers", type=int, default=300)
    parser.add_argument("--submitters", type=int, default=20)
    parser.add_argument("--baseline-seconds", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="genfx-soak-") as tmp, LocalServer(Path(tmp)) as server:
        assert server.proc is not None
        pid = server.proc.pid
        with grpc.insecure_channel(server.address) as channel:  # builds the tiny model: not a probe
            pb_grpc.GenFXStub(channel).GetServerInfo(pb.GetServerInfoRequest(), timeout=600)
        idle = probe_for(server.address, args.baseline_seconds)
        rss_before, fds_before = server_usage(pid)
        spawn = mp.get_context("spawn")  # a fresh interpreter: no grpc state forked from this one
        results: mp.Queue[dict[str, int]] = spawn.Queue()
        load = spawn.Process(
            target=run_load,
            args=(server.address, args.watchers, args.submitters, args.minutes * 60, results),
        )
        started = time.monotonic()
        load.start()
        loaded = probe_for(server.address, args.minutes * 60)
        rss_loaded, fds_loaded = server_usage(pid)
        counts = results.get(timeout=300)
        load.join(60)
        wall = time.monotonic() - started
        time.sleep(10)  # streams closed, the server settles
        rss_after, fds_after = server_usage(pid)
    p99_idle, p99_loaded = percentile(idle.health, 0.99), percentile(loaded.health, 0.99)
    print(
        f"soak: {args.watchers} watchers + {args.submitters} submitters for {args.minutes:g} min"
        f" ({wall / 60:.1f} min with the last jobs draining)"
    )
    for label, probe in (("idle", idle), ("loaded", loaded)):
        h = probe.health
        print(
            f"  health {label:<6}: n={len(h)} p50={statistics.median(h):.1f} ms"
            f" p99={percentile(h, 0.99):.1f} ms max={max(h):.1f} ms;"
            f" GetServerInfo p99={percentile(probe.info, 0.99):.1f} ms;"
            f" probe failures {dict(probe.failures) or 0}"
        )
    print(f"  health p99 loaded / idle: {p99_loaded / p99_idle:.2f}")
    print(f"  load: {counts}")
    print(
        f"  server RSS: {rss_before >> 20} MiB before, {rss_loaded >> 20} MiB at the end of the load,"
        f" {rss_after >> 20} MiB after; open files: {fds_before} / {fds_loaded} / {fds_after}"
    )
    forbidden = sum(n for k, n in counts.items() if k.endswith(("UNKNOWN", "INTERNAL")))
    ok = p99_loaded < 100 and not loaded.failures and forbidden == 0
    verdict = "met" if ok else "NOT met"
    print(f"  target health p99 < 100 ms, no probe failure, no UNKNOWN/INTERNAL: {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
