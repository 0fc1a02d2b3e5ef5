"""Server start: seconds from launch to the port answering and to health SERVING (target <= 3 s here),
against what the start used to wait for before listening (importing torch, diffusers and transformers
in a fresh interpreter), interleaved in one run; and the log lines that are not the server's own.

    python -m bench.bench_start [--repeats 5]
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.crash_harness import free_port
from tests.test_start import OUR_LINE


def _launch(data: Path) -> tuple[float, float, list[str]]:
    """(seconds to the first health answer, seconds to SERVING, foreign log lines)."""
    port = free_port()
    log = data / "server.log"
    started = time.monotonic()
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "inference_server", "serve", "--port", str(port), "--data-dir", str(data)],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    answered = 0.0
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                try:
                    reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=0.5)
                except grpc.RpcError:
                    time.sleep(0.01)
                    continue
                answered = answered or time.monotonic() - started
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    serving = time.monotonic() - started
                    break
                time.sleep(0.01)
    finally:
        proc.terminate()
        proc.wait(60)
    foreign = [line for line in log.read_text().splitlines() if not OUR_LINE.match(line)]
    return answered, serving, foreign


def _old_critical_path() -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "import torch, diffusers, transformers"], check=True)
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    answered, serving, imports, foreign = [], [], [], []
    for _ in range(args.repeats):  # interleaved: the machine's load hits both alike
        data = Path(tempfile.mkdtemp(prefix="genfx-start-"))
        try:
            a, s, f = _launch(data)
        finally:
            shutil.rmtree(data, ignore_errors=True)
        answered.append(a)
        serving.append(s)
        foreign += f
        imports.append(_old_critical_path())
    med = statistics.median
    print(f"server start, median of {args.repeats} launches (fresh data folder each):")
    print(f"  port answers (health NOT_SERVING until a worker can run): {med(answered):5.2f} s")
    print(
        f"  health SERVING:                                           {med(serving):5.2f} s  (target <= 3 s)"
    )
    print(
        f"  before, the start imported torch + diffusers + transformers before listening:"
        f" {med(imports):5.2f} s for those imports alone; SERVING now takes"
        f" {med(serving) / med(imports):.2f}x that"
    )
    lines = sorted(set(re.sub(r"\d+", "N", line) for line in foreign))
    print(
        f"  log lines not from the server's own loggers: {len(foreign)}"
        + "".join(f"\n    {x}" for x in lines)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
