"""The fuzz run at length: thousands of fuzzed calls to every RPC (tests/fuzz_requests.py, the same
strategies as tests/test_fuzz.py), counted by status. Passes when no call got UNKNOWN or INTERNAL and the
server still answers health checks SERVING.

    python -m bench.bench_fuzz [--calls 2000] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, Phase, given, seed, settings

from genfx.local_server import LocalServer
from genfx.proto import genfx_pb2_grpc as pb_grpc
from tests.fuzz_requests import FORBIDDEN, Call, calls, perform


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    counts: Counter[str] = Counter()
    by_method: Counter[str] = Counter()
    forbidden: list[tuple[str, Call]] = []
    with (
        tempfile.TemporaryDirectory(prefix="genfx-fuzz-") as tmp,
        LocalServer(Path(tmp)) as server,
        grpc.insecure_channel(server.address) as channel,
    ):
        stub = pb_grpc.GenFXStub(channel)

        @seed(args.seed)
        @settings(
            max_examples=args.calls,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(call=calls())
        def one(call: Call) -> None:
            code = perform(stub, call)
            counts[code.name] += 1
            by_method[call.method] += 1
            if code in FORBIDDEN:
                forbidden.append((code.name, call))

        started = time.perf_counter()
        one()
        seconds = time.perf_counter() - started
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=30)
    total = sum(counts.values())
    print(f"{total} fuzzed calls in {seconds:.0f} s ({total / seconds:.0f}/s)")
    print("by RPC:   ", dict(sorted(by_method.items())))
    print("statuses: ", dict(sorted(counts.items())))
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(health.status)
    print(f"UNKNOWN/INTERNAL: {len(forbidden)}; health afterwards: {status}")
    for name, call in forbidden[:10]:
        print(f"  {name}: {call.method} {str(call.request)[:300]!r}")
    ok = not forbidden and health.status == health_pb2.HealthCheckResponse.SERVING and total >= args.calls
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
