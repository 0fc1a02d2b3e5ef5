"""Fuzzed calls to every RPC (tests/fuzz_requests.py): whatever a client sends, the answer is a proper
status (never INTERNAL or UNKNOWN) and the server stays up. About 300 calls here; bench/bench_fuzz.py
makes thousands."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genfx.local_server import LocalServer
from genfx.proto import genfx_pb2 as pb
from genfx.proto import genfx_pb2_grpc as pb_grpc
from inference_server.engine import modes
from inference_server.validation import Limits, RequestError, validate_generate

from .fuzz_requests import FORBIDDEN, Call, calls, generate_requests, mutated_requests, perform

pytestmark = pytest.mark.slow

SEEN: Counter[str] = Counter()


@pytest.fixture(scope="module")
def stub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pb_grpc.GenFXStub]:
    with LocalServer(tmp_path_factory.mktemp("fuzz")) as server, grpc.insecure_channel(server.address) as ch:
        yield pb_grpc.GenFXStub(ch)
        reply = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=30)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    print(f"\nfuzz statuses: {dict(SEEN)}")


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(req=st.one_of(generate_requests(), mutated_requests()))
def test_fuzzed_submits_get_a_proper_status(stub: pb_grpc.GenFXStub, req: pb.GenerateRequest) -> None:
    code = perform(stub, Call("SubmitJob", req))
    SEEN[code.name] += 1
    assert code not in FORBIDDEN, req


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(call=calls())
def test_fuzzed_calls_to_every_rpc_get_a_proper_status(stub: pb_grpc.GenFXStub, call: Call) -> None:
    code = perform(stub, call)
    SEEN[code.name] += 1
    assert code not in FORBIDDEN, call
    assert stub.GetServerInfo(pb.GetServerInfoRequest(), timeout=30).version


# The server above has no LoRAs, so every LoraRef stops at "unknown LoRA"; here the checks behind it
# (repeats, weights, another base model, modes without the model's UNet) get the fuzzed requests.
LORAS = {"dust": ("tiny",), "alien": ()}
LORA_MODES = {"tiny": ("txt2img", "img2img", "inpaint")}


@settings(max_examples=300, deadline=None, database=None)
@given(req=st.one_of(generate_requests(), mutated_requests()))
def test_fuzzed_requests_against_configured_loras_are_refused_by_name(req: pb.GenerateRequest) -> None:
    """Anything but a RequestError would reach the client as INTERNAL."""
    try:
        validate_generate(
            req, Limits(), ["tiny"], "tiny", {"tiny": modes.NAMES}, loras=LORAS, lora_modes=LORA_MODES
        )
    except RequestError as exc:
        SEEN[f"validation {exc.code.name}"] += 1
        assert exc.code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION)
