"""Bad input gets the right status code and a message naming the field; the server keeps serving."""

from __future__ import annotations

import math
import os
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from genfx.client import Client, GenFXError
from genfx.local_server import LocalServer
from genfx.proto import genfx_pb2 as pb
from genfx.shot import Shot

from .conftest import small_request

pytestmark = pytest.mark.slow

Mutation = Callable[[pb.GenerateRequest], object]  # what it returns (an added message) is unused


def _set_matrix(i: int, value: float) -> Mutation:
    def mutate(r: pb.GenerateRequest) -> None:
        r.camera.samples[0].camera_to_world[i] = value

    return mutate


def _singular(r: pb.GenerateRequest) -> None:
    m = r.camera.samples[0].camera_to_world
    for i in (0, 1, 2):
        m[i] = 0.0


def _drop_sample(r: pb.GenerateRequest) -> None:
    del r.camera.samples[1]


def _duplicate_sample(r: pb.GenerateRequest) -> None:
    """A second sample for frame 1001: which one would win was never said (the last did, silently)."""
    extra = r.camera.samples.add()
    extra.CopyFrom(r.camera.samples[0])
    extra.focal_length_mm = 85.0


def _set_lens(name: str, value: float) -> Mutation:
    def mutate(r: pb.GenerateRequest) -> None:
        for sample in r.camera.samples:
            setattr(sample, name, value)

    return mutate


CASES: list[tuple[str, Mutation, str, str]] = [
    ("empty prompt", lambda r: setattr(r, "prompt", "   "), "INVALID_ARGUMENT", "prompt"),
    ("huge prompt", lambda r: setattr(r, "prompt", "x" * 5000), "INVALID_ARGUMENT", "prompt"),
    ("nan in matrix", _set_matrix(3, math.nan), "INVALID_ARGUMENT", "camera_to_world"),
    ("inf in matrix", _set_matrix(5, math.inf), "INVALID_ARGUMENT", "camera_to_world"),
    ("singular matrix", _singular, "INVALID_ARGUMENT", "singular"),
    (
        "negative focal",
        lambda r: setattr(r.camera.samples[0], "focal_length_mm", -35.0),
        "INVALID_ARGUMENT",
        "focal_length_mm",
    ),
    (
        "zero aperture",
        lambda r: setattr(r.camera.samples[0], "horizontal_aperture_mm", 0.0),
        "INVALID_ARGUMENT",
        "horizontal_aperture_mm",
    ),
    (
        "short matrix",
        lambda r: r.camera.samples[0].ClearField("camera_to_world"),
        "INVALID_ARGUMENT",
        "camera_to_world",
    ),
    ("no camera", lambda r: r.ClearField("camera"), "INVALID_ARGUMENT", "camera.samples"),
    ("missing frame sample", _drop_sample, "INVALID_ARGUMENT", "camera.samples"),
    ("duplicate frame sample", _duplicate_sample, "INVALID_ARGUMENT", "frame 1001 already has a sample"),
    # Values the float32 EXR header cannot hold (they were accepted, then written as inf or failed).
    ("huge pixel aspect", _set_lens("pixel_aspect", 1e308), "INVALID_ARGUMENT", "pixel_aspect"),
    ("tiny pixel aspect", _set_lens("pixel_aspect", 1e-308), "INVALID_ARGUMENT", "pixel_aspect"),
    ("huge focal", _set_lens("focal_length_mm", 1e308), "INVALID_ARGUMENT", "focal_length_mm"),
    (
        "huge aperture",
        _set_lens("horizontal_aperture_mm", 1e308),
        "INVALID_ARGUMENT",
        "horizontal_aperture_mm",
    ),
    ("huge translation", _set_matrix(3, 1e308), "INVALID_ARGUMENT", "camera_to_world"),
    ("only NUL prompt", lambda r: setattr(r, "prompt", "\x00"), "INVALID_ARGUMENT", "prompt"),
    ("zero-width prompt", lambda r: setattr(r, "prompt", "\u200b\u200b"), "INVALID_ARGUMENT", "prompt"),
    ("control char in tag", lambda r: setattr(r, "client_tag", "a\x1bb"), "INVALID_ARGUMENT", "client_tag"),
    (
        "fps 1/(2^63-1)",
        lambda r: r.shot.fps.CopyFrom(pb.Rational(numerator=1, denominator=2**63 - 1)),
        "INVALID_ARGUMENT",
        "shot.fps",
    ),
    ("negative width", lambda r: setattr(r.output, "width", -5), "INVALID_ARGUMENT", "output.width"),
    ("oversize width", lambda r: setattr(r.output, "width", 10000), "INVALID_ARGUMENT", "output.width"),
    ("oversize height", lambda r: setattr(r.output, "height", 5000), "INVALID_ARGUMENT", "output.height"),
    (
        "end before start",
        lambda r: setattr(r.shot, "frame_end", r.shot.frame_start - 1),
        "INVALID_ARGUMENT",
        "shot.frame_end",
    ),
    (
        "too many frames",
        lambda r: setattr(r.shot, "frame_end", r.shot.frame_start + 5000),
        "INVALID_ARGUMENT",
        "frames",
    ),
    ("zero fps denominator", lambda r: setattr(r.shot.fps, "denominator", 0), "INVALID_ARGUMENT", "shot.fps"),
    ("unknown model", lambda r: setattr(r, "model", "sdxl-nope"), "INVALID_ARGUMENT", "model"),
    ("too many steps", lambda r: setattr(r, "steps", 10_000), "INVALID_ARGUMENT", "steps"),
    ("nan guidance", lambda r: setattr(r, "guidance", math.nan), "INVALID_ARGUMENT", "guidance"),
    (
        "path traversal name",
        lambda r: setattr(r.output, "name", "../../etc/x"),
        "INVALID_ARGUMENT",
        "output.name",
    ),
    ("unknown lora", lambda r: r.loras.add(name="dust"), "INVALID_ARGUMENT", "loras[0]"),
    ("priority range", lambda r: setattr(r, "priority", 1000), "INVALID_ARGUMENT", "priority"),
    (
        # A mode the model lacks (FAILED_PRECONDITION naming model and mode) needs a model without that
        # variant: see test_shot_aware_e2e.test_mode_the_model_cannot_run_is_failed_precondition.
        "malformed plate asset id",
        lambda r: r.conditioning.frames.add(frame=1001, plate_asset_id="a" * 12),
        "INVALID_ARGUMENT",
        "frame 1001, plate pass",
    ),
    (
        "pass for some frames only",
        lambda r: r.conditioning.frames.add(frame=1001, depth_asset_id="a" * 64),
        "INVALID_ARGUMENT",
        "frame 1002, depth pass",
    ),
]


@pytest.mark.parametrize(("label", "mutate", "code", "field"), CASES, ids=[c[0] for c in CASES])
def test_bad_request_names_the_field(
    client: Client, shot: Shot, label: str, mutate: Mutation, code: str, field: str
) -> None:
    req = small_request(shot, frames=2)
    mutate(req)
    with pytest.raises(GenFXError) as info:
        client.submit(req)
    assert info.value.code == code, info.value
    assert field in info.value.message, info.value.message
    with pytest.raises(GenFXError) as info:  # validated exactly like SubmitJob
        client.estimate(req)
    assert info.value.code == code and field in info.value.message, info.value
    # The server is still serving everyone else.
    assert client.info().models


@pytest.mark.parametrize("call", ["get", "cancel", "watch", "fetch"])
def test_unknown_job_is_not_found(client: Client, call: str, tmp_path: object) -> None:
    job_id = "0" * 32
    with pytest.raises(GenFXError) as info:
        if call == "get":
            client.get_job(job_id)
        elif call == "cancel":
            client.cancel(job_id)
        elif call == "watch":
            list(client.watch(job_id))
        else:
            client.fetch_frame(job_id, 1001, f"{tmp_path}/x.exr")
    assert info.value.code == "NOT_FOUND"
    assert "job_id" in info.value.message


def test_malformed_job_id_is_invalid(client: Client) -> None:
    with pytest.raises(GenFXError) as info:
        client.get_job("../../etc/passwd")
    assert info.value.code == "INVALID_ARGUMENT"
    assert "job_id" in info.value.message


def test_token_is_required_when_set(tmp_path: object, shot: Shot) -> None:
    with LocalServer(f"{tmp_path}/data", token="s3cret") as srv:
        for token, expected in (("", "missing"), ("wrong", "invalid")):
            with Client(srv.address, token=token) as c, pytest.raises(GenFXError) as info:
                c.info()
            assert info.value.code == "UNAUTHENTICATED"
            assert expected in info.value.message
        with Client(srv.address, token="wrong") as c, pytest.raises(GenFXError) as info:
            list(c.watch("0" * 32, retries=0))
        assert info.value.code == "UNAUTHENTICATED"
        with Client(srv.address, token="s3cret") as c:
            assert c.info().auth_required
        # Health checks need no token (load balancers).
        with grpc.insecure_channel(srv.address) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_services(server: LocalServer) -> None:
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

    with grpc.insecure_channel(server.address) as channel:
        services = set(ProtoReflectionDescriptorDatabase(channel).get_services())
    assert {"genfx.v1.GenFX", "grpc.health.v1.Health"} <= services


def test_refuses_to_listen_beyond_loopback_without_token(tmp_path: object) -> None:
    env = {k: v for k, v in os.environ.items() if k != "GENFX_TOKEN"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "inference_server",
            "serve",
            "--host",
            "0.0.0.0",
            "--port",
            "0",
            "--data-dir",
            f"{tmp_path}/d",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 2
    assert "--token" in result.stderr and "--insecure" in result.stderr


def _raw_upload(address: str, chunks: list[pb.UploadAssetChunk]) -> grpc.RpcError:
    from genfx.proto import genfx_pb2_grpc as pb_grpc

    with grpc.insecure_channel(address) as channel, pytest.raises(grpc.RpcError) as info:
        pb_grpc.GenFXStub(channel).UploadAsset(iter(chunks), timeout=30)
    return info.value


def _header(size: int, sha256: str = "") -> pb.UploadAssetChunk:
    return pb.UploadAssetChunk(header=pb.AssetHeader(filename="plate.exr", size=size, sha256=sha256))


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` in a few dozen bytes (a decompression bomb's header)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (1 + 3 * width) * 8)  # the first rows only
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


BOMB = _png_header(10000, 10000)
SEVEN_MB = 7 << 20

UPLOAD_CASES = [
    ("no header", [pb.UploadAssetChunk(data=b"abc")], "header"),
    ("7 MB chunk (1 MiB documented)", [_header(SEVEN_MB), pb.UploadAssetChunk(data=bytes(SEVEN_MB))], "data"),
    ("decompression bomb", [_header(len(BOMB)), pb.UploadAssetChunk(data=BOMB)], "100000000 pixels"),
    ("empty stream", [], "header"),
    ("zero size", [_header(0)], "header.size"),
    ("oversize", [_header(10**15)], "header.size"),
    ("fewer bytes than said", [_header(10), pb.UploadAssetChunk(data=b"abc")], "data"),
    ("more bytes than said", [_header(2), pb.UploadAssetChunk(data=b"abc")], "data"),
    ("second header", [_header(3), _header(3)], "data"),
    ("corrupt (sha mismatch)", [_header(3, "0" * 64), pb.UploadAssetChunk(data=b"abc")], "header.sha256"),
    ("malformed sha", [_header(3, "xyz"), pb.UploadAssetChunk(data=b"abc")], "header.sha256"),
]


@pytest.mark.parametrize(("label", "chunks", "field"), UPLOAD_CASES, ids=[c[0] for c in UPLOAD_CASES])
def test_bad_upload_is_refused_and_leaves_nothing(
    server: LocalServer, label: str, chunks: list[pb.UploadAssetChunk], field: str
) -> None:
    before = sorted(p.name for p in (server.data_dir / "assets").iterdir())
    error = _raw_upload(server.address, chunks)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
    assert field in (error.details() or "")
    assert sorted(p.name for p in (server.data_dir / "assets").iterdir()) == before


@pytest.mark.parametrize(
    "name", ["/etc/passwd", "a/b", "..", ".hidden", "-rf", "x" * 65, "frame\x00", "genfx\n", "a.", "a..b"]
)
def test_output_names_cannot_leave_the_job_folder(client: Client, shot: Shot, name: str) -> None:
    req = small_request(shot, frames=1)
    req.output.name = name
    with pytest.raises(GenFXError) as info:
        client.submit(req)
    assert info.value.code == "INVALID_ARGUMENT"
    assert "output.name" in info.value.message
