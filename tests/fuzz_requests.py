"""Fuzzed calls to every GenFX RPC, through a raw stub (no SDK retries or checks in between): shared by
tests/test_fuzz.py (a few hundred in CI) and bench/bench_fuzz.py (thousands).

Whatever a client sends, the answer is OK or one of the statuses the contract lists: never UNKNOWN or
INTERNAL (``FORBIDDEN``)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import grpc
from hypothesis import strategies as st

from genfx.proto import genfx_pb2 as pb
from genfx.proto import genfx_pb2_grpc as pb_grpc

FORBIDDEN = frozenset({grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL})

edge_floats = st.sampled_from(
    [0.0, -0.0, 1.0, 35.0, 1e308, -1e308, 1e-308, 5e-324, 3.5e38, 1e38, math.inf, -math.inf, math.nan]
)
floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True), edge_floats)
ints = st.one_of(st.integers(-(2**31), 2**31 - 1), st.sampled_from([0, 1, 64, 1001, 1002, 4096]))
int64s = st.one_of(st.integers(-(2**63), 2**63 - 1), st.sampled_from([0, 1, 24, 1001, 24000, 2**63 - 1]))
text = st.one_of(
    st.text(max_size=50),
    st.sampled_from(["", " ", "../../x", "a" * 3000, "dust\x00null", "\x00", "\u200b", "genfx\n", "a."]),
)
hex_ids = st.one_of(text, st.text("0123456789abcdef", min_size=32, max_size=32), st.just("f" * 64))
lora_names = st.one_of(text, st.sampled_from(["dust", "alien", "tiny"]))
# LoraRef lists: names a server may or may not have, any weight, repeats, more than the limit.
loras = st.lists(st.builds(lambda n, w: pb.LoraRef(name=n, weight=w), lora_names, floats), max_size=10)
# Mostly names a LoRA-configured server has (tests/test_fuzz.py), so the checks behind the name run.
known_loras = st.lists(
    st.builds(
        lambda n, w: pb.LoraRef(name=n, weight=w),
        st.sampled_from(["dust", "dust", "alien", "smoke"]),
        st.one_of(st.sampled_from([0.0, 0.5, -2.0, 2.5]), floats),
    ),
    max_size=9,
)
unknown_padding = st.sampled_from([b"", b"\xc2\x3e\x04abcd", b"\xc2\x3e\x80\x80\x04" + bytes(65536)])


@st.composite
def generate_requests(draw: st.DrawFn) -> pb.GenerateRequest:
    samples = [
        pb.CameraSample(
            frame=draw(st.one_of(ints, st.sampled_from([1001, 1002]))),
            camera_to_world=draw(
                st.one_of(st.lists(floats, max_size=17), st.just([1.0, 0, 0, 0] * 3 + [0, 0, 0, 1]))
            ),
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
            fps=pb.Rational(numerator=draw(int64s), denominator=draw(int64s)),
        ),
        output=pb.Output(
            width=draw(ints),
            height=draw(ints),
            name=draw(text),
            compression=pb.Compression.ValueType(draw(st.integers(-2, 7))),
            colorspace=pb.ColorSpace.ValueType(draw(st.integers(-2, 5))),
        ),
        camera=pb.CameraTrack(samples=samples, width=draw(ints), height=draw(ints)),
        temporal=pb.TemporalMode.ValueType(draw(st.integers(-1, 4))),
        priority=draw(ints),
        client_tag=draw(text),
    )
    if draw(st.booleans()):
        req.seed = draw(st.integers(0, 2**64 - 1))
    if draw(st.booleans()):
        req.guidance = draw(floats)
    if draw(st.booleans()):
        req.conditioning.strength = draw(floats)
        req.conditioning.plane_distance = draw(floats)
    if draw(st.booleans()):
        req.conditioning.controlnet_conditioning_scale = draw(floats)
    for _ in range(draw(st.integers(0, 2))):
        req.conditioning.frames.add(
            frame=draw(ints),
            plate_asset_id=draw(hex_ids),
            depth_asset_id=draw(hex_ids),
            motion_asset_id=draw(st.one_of(st.just(""), hex_ids)),
        )
    req.loras.extend(draw(loras))
    padding = draw(unknown_padding)
    return pb.GenerateRequest.FromString(req.SerializeToString() + padding) if padding else req


def valid_request() -> pb.GenerateRequest:
    """A request the server accepts: one 64x64 frame, one step, a static camera 10 units back."""
    return pb.GenerateRequest(
        prompt="fuzz",
        steps=1,
        model="tiny",
        shot=pb.Shot(frame_start=1001, frame_end=1002, fps=pb.Rational(numerator=24, denominator=1)),
        output=pb.Output(width=64, height=64),
        camera=pb.CameraTrack(
            samples=[
                pb.CameraSample(
                    frame=1001,
                    camera_to_world=[1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 10, 0, 0, 0, 1],
                    focal_length_mm=35,
                    horizontal_aperture_mm=36,
                )
            ]
        ),
    )


# (field path, values): one or two of these applied to a valid request reach the deeper checks.
_MUTATIONS: list[tuple[str, st.SearchStrategy[object]]] = [
    ("prompt", text),
    ("negative_prompt", text),
    ("client_tag", text),
    ("steps", ints),
    ("guidance", floats),
    ("priority", ints),
    ("shot.frame_start", ints),
    ("shot.frame_end", ints),
    ("shot.keyframe_step", ints),
    ("shot.fps.numerator", int64s),
    ("shot.fps.denominator", int64s),
    ("output.width", ints),
    ("output.height", ints),
    ("output.name", text),
    ("camera.width", ints),
    ("camera.height", ints),
    ("camera.samples.0.focal_length_mm", floats),
    ("camera.samples.0.horizontal_aperture_mm", floats),
    ("camera.samples.0.vertical_aperture_mm", floats),
    ("camera.samples.0.pixel_aspect", floats),
    ("camera.samples.0.near_clip", floats),
    ("camera.samples.0.far_clip", floats),
    ("camera.samples.0.camera_to_world.3", floats),
    ("camera.samples.0.camera_to_world.0", floats),
    ("conditioning.strength", floats),
    ("conditioning.plane_distance", floats),
    ("conditioning.controlnet_conditioning_scale", floats),
    ("temporal", st.integers(-1, 4)),
]


def _set(message: object, path: str, value: object) -> None:
    *parents, last = path.split(".")
    for part in parents:
        message = message[int(part)] if part.isdigit() else getattr(message, part)  # type: ignore[index]
    if last.isdigit():
        message[int(last)] = value  # type: ignore[index]
    else:
        setattr(message, last, value)


@st.composite
def mutated_requests(draw: st.DrawFn) -> pb.GenerateRequest:
    req = valid_request()
    for path, values in draw(st.lists(st.sampled_from(_MUTATIONS), min_size=1, max_size=2)):
        value = draw(values)
        with contextlib.suppress(TypeError, ValueError, OverflowError):  # the wire type cannot hold it
            _set(req, path, value)
    req.loras.extend(draw(st.one_of(st.just([]), known_loras, loras)))
    return req


@dataclass
class Call:
    """One RPC: its method name on the stub and its request (a list of messages for UploadAsset)."""

    method: str
    request: object
    streaming_request: bool = False
    chunks: list[pb.UploadAssetChunk] = field(default_factory=list)


@st.composite
def upload_calls(draw: st.DrawFn) -> Call:
    chunks: list[pb.UploadAssetChunk] = []
    if draw(st.booleans()):
        chunks.append(
            pb.UploadAssetChunk(
                header=pb.AssetHeader(filename=draw(text), size=draw(int64s), sha256=draw(hex_ids))
            )
        )
    for _ in range(draw(st.integers(0, 3))):
        if draw(st.integers(0, 9)) == 0:
            chunks.append(pb.UploadAssetChunk(header=pb.AssetHeader(size=draw(int64s))))
        else:
            size = draw(st.sampled_from([0, 1, 100, 1 << 20, (1 << 20) + 1, 3 << 20]))
            chunks.append(pb.UploadAssetChunk(data=bytes(size)))
    return Call("UploadAsset", None, streaming_request=True, chunks=chunks)


def calls() -> st.SearchStrategy[Call]:
    states = st.lists(st.integers(-3, 8), max_size=40)
    return st.one_of(
        generate_requests().map(lambda r: Call("SubmitJob", r)),
        mutated_requests().map(lambda r: Call("SubmitJob", r)),
        st.builds(
            lambda s, limit, token, full: Call(
                "ListJobs", pb.ListJobsRequest(states=s, limit=limit, page_token=token, full_requests=full)
            ),
            states,
            ints,
            st.one_of(text, st.just("eyJ2IjoxLCJjIjowLCJpIjoiIiwicyI6W119")),
            st.booleans(),
        ),
        hex_ids.map(lambda j: Call("GetJob", pb.GetJobRequest(job_id=j))),
        hex_ids.map(lambda j: Call("CancelJob", pb.CancelJobRequest(job_id=j))),
        hex_ids.map(lambda j: Call("DeleteJob", pb.DeleteJobRequest(job_id=j))),
        st.builds(lambda j, s: Call("WatchJob", pb.WatchJobRequest(job_id=j, from_seq=s)), hex_ids, int64s),
        st.builds(
            lambda j, f, o, c: Call(
                "FetchFrame", pb.FetchFrameRequest(job_id=j, frame=f, offset=o, chunk_size=c)
            ),
            hex_ids,
            ints,
            int64s,
            ints,
        ),
        upload_calls(),
        st.just(Call("GetServerInfo", pb.GetServerInfoRequest())),
    )


def perform(stub: pb_grpc.GenFXStub, call: Call, timeout: float = 60.0) -> grpc.StatusCode:
    """Makes the call and returns its status code (OK included). Accepted jobs are cancelled at once
    (their CancelJob counted as part of the call), so a fuzz run never loads the workers."""
    method = getattr(stub, call.method)
    try:
        if call.streaming_request:
            method(iter(call.chunks), timeout=timeout)
        elif call.method in ("WatchJob", "FetchFrame"):
            for _ in _take(method(call.request, timeout=timeout), 3):
                pass
        else:
            reply = method(call.request, timeout=timeout)
            if call.method == "SubmitJob":
                stub.CancelJob(pb.CancelJobRequest(job_id=reply.id), timeout=timeout)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def _take(stream: Iterator[object], n: int) -> Iterator[object]:
    """The first ``n`` messages of a stream, then the stream is cancelled (a watcher that leaves)."""
    for i, item in enumerate(stream):
        yield item
        if i + 1 >= n:
            stream.cancel()  # type: ignore[attr-defined]
            return
