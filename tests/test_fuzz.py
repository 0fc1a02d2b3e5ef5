"""Fuzzed requests: whatever a client sends, the answer is a proper status (never INTERNAL or UNKNOWN)
and the server stays up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genfx.client import Client, GenFXError
from genfx.local_server import LocalServer
from genfx.proto import genfx_pb2 as pb

pytestmark = pytest.mark.slow

ACCEPTABLE = {"INVALID_ARGUMENT", "FAILED_PRECONDITION", "RESOURCE_EXHAUSTED", "NOT_FOUND"}
floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, 1.0, 35.0, 1e300]))
ints = st.one_of(st.integers(-(2**31), 2**31 - 1), st.sampled_from([0, 1, 64, 1001, 4096]))
text = st.one_of(st.text(max_size=50), st.sampled_from(["", " ", "../../x", "a" * 3000, "dust\x00null"]))


@st.composite
def requests(draw: st.DrawFn) -> pb.GenerateRequest:
    samples = [
        pb.CameraSample(
            frame=draw(ints),
            camera_to_world=draw(st.lists(floats, max_size=17)),
            focal_length_mm=draw(floats),
            horizontal_aperture_mm=draw(floats),
            vertical_aperture_mm=draw(floats),
            pixel_aspect=draw(floats),
            near_clip=draw(floats),
            far_clip=draw(floats),
        )
        for _ in range(draw(st.integers(0, 3)))
    ]
    req = pb.GenerateRequest(
        prompt=draw(text),
        negative_prompt=draw(text),
        steps=draw(ints),
        model=draw(st.sampled_from(["", "tiny", "x"])),
        shot=pb.Shot(
            frame_start=draw(ints),
            frame_end=draw(ints),
            keyframe_step=draw(ints),
            fps=pb.Rational(numerator=draw(ints), denominator=draw(ints)),
        ),
        output=pb.Output(
            width=draw(ints),
            height=draw(ints),
            name=draw(text),
            compression=draw(st.integers(-2, 7)),
            colorspace=draw(st.integers(-2, 5)),
        ),
        camera=pb.CameraTrack(samples=samples, width=draw(ints), height=draw(ints)),
        temporal=draw(st.integers(-1, 4)),
        priority=draw(ints),
        client_tag=draw(text),
    )
    if draw(st.booleans()):
        req.seed = draw(st.integers(0, 2**64 - 1))
    if draw(st.booleans()):
        req.guidance = draw(floats)
    for _ in range(draw(st.integers(0, 2))):
        req.conditioning.frames.add(frame=draw(ints), plate_asset_id=draw(text), depth_asset_id=draw(text))
    return req


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    with LocalServer(tmp_path_factory.mktemp("fuzz")) as server, Client(server.address, timeout=60) as c:
        yield c


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(req=requests())
def test_fuzzed_requests_get_a_proper_status(fuzz_client: Client, req: pb.GenerateRequest) -> None:
    try:
        job = fuzz_client.submit(req)
    except GenFXError as exc:
        assert exc.code in ACCEPTABLE, exc
        assert exc.message
    else:
        fuzz_client.cancel(job.id)  # a valid request: don't let it use the CPU
    assert fuzz_client.info().version


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(job_id=text, frame=ints, offset=st.integers(-(2**40), 2**40), chunk=ints)
def test_fuzzed_fetch_and_watch(
    fuzz_client: Client,
    job_id: str,
    frame: int,
    offset: int,
    chunk: int,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    for call in (
        lambda: fuzz_client.get_job(job_id),
        lambda: list(fuzz_client.watch(job_id, offset, retries=0)),
        lambda: fuzz_client.fetch_frame(
            job_id, frame, Path(tmp_path_factory.mktemp("f")) / "x.exr", chunk_size=chunk, retries=0
        ),
    ):
        with pytest.raises(GenFXError) as info:
            call()
        assert info.value.code in ACCEPTABLE, info.value
