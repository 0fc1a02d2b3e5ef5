"""Request validation of passes and modes: errors name the field, the frame and the pass."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import grpc
import numpy as np
import pytest

from genfx.client import build_request
from genfx.proto import genfx_pb2 as pb
from inference_server.engine.passes import PASSES
from inference_server.storage import AssetStore
from inference_server.validation import Limits, RequestError, validate_generate

from .synthetic import render, track, write_depth_exr, write_png

FRAMES = range(1001, 1003)
ALL_MODES = ("txt2img", "img2img", "inpaint", "depth", "temporal")


@pytest.fixture()
def assets(tmp_path: Path) -> dict[str, str]:
    """Asset files as the server stores them (named by id); ids are fake but well-formed."""
    colour, depth = render(track(FRAMES, 64, 32).samples[0], 64, 32)
    files = {
        "plate": write_png(tmp_path / "p.png", colour),
        "depth": write_depth_exr(tmp_path / "d.exr", depth),
        "small": write_png(tmp_path / "s.png", colour[::2, ::2]),
        "square": write_png(tmp_path / "q.png", colour[:, :32]),
    }
    (tmp_path / "junk").write_bytes(b"not an image at all" * 10)
    ids = {}
    for i, (name, path) in enumerate({**files, "junk": tmp_path / "junk"}.items()):
        asset_id = f"{i:x}" * 64
        path.rename(tmp_path / asset_id)
        ids[name] = asset_id
    ids["missing"] = "f" * 64
    return ids


def request(**passes: list[str]) -> pb.GenerateRequest:
    req = build_request(
        prompt="dust",
        camera=track(FRAMES, 64, 32),
        frame_start=FRAMES[0],
        frame_end=FRAMES[-1],
        fps=Fraction(24),
        model="tiny",
        width=64,
        height=32,
    )
    for i, frame in enumerate(FRAMES):
        entry = req.conditioning.frames.add(frame=frame)
        for kind, ids in passes.items():
            if i < len(ids) and ids[i]:
                setattr(entry, f"{kind}_asset_id", ids[i])
    return req


def check(
    req: pb.GenerateRequest, assets_dir: Path | None, modes: tuple[str, ...] = ALL_MODES
) -> pb.GenerateRequest:
    assets = AssetStore(assets_dir) if assets_dir is not None else None
    return validate_generate(req, Limits(), ["tiny"], "tiny", {"tiny": modes}, assets=assets)


def refused(
    req: pb.GenerateRequest, assets_dir: Path | None, modes: tuple[str, ...] = ALL_MODES
) -> RequestError:
    with pytest.raises(RequestError) as info:
        check(req, assets_dir, modes)
    return info.value


def test_good_passes_pass_and_strength_defaults(assets: dict[str, str], tmp_path: Path) -> None:
    req = check(request(plate=[assets["plate"]] * 2, depth=[assets["depth"]] * 2), tmp_path)
    assert req.conditioning.strength == pytest.approx(0.6)


@pytest.mark.parametrize(
    ("passes", "wants"),
    [
        ({"plate": ["plate", "missing"]}, "frame 1002, plate pass): asset"),
        ({"depth": ["depth", "junk"]}, "frame 1002, depth pass): unreadable image"),
        ({"plate": ["plate", "small"]}, "frame 1002, plate pass): 32x16 does not match"),
        ({"mask": ["square", "square"]}, "frame 1001, mask pass): 32x32 does not have the output's aspect"),
        ({"plate": ["plate", ""]}, "frame 1002, plate pass): missing"),
    ],
)
def test_bad_assets_are_invalid_argument_naming_frame_and_pass(
    assets: dict[str, str], tmp_path: Path, passes: dict[str, list[str]], wants: str
) -> None:
    err = refused(request(**{k: [assets[n] if n else "" for n in v] for k, v in passes.items()}), tmp_path)
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert wants in err.message, err.message
    assert "conditioning.frames[" in err.message


def test_request_shape_errors_without_touching_disk() -> None:
    req = request(plate=["x" * 10, "x" * 10])
    assert "plate_asset_id (frame 1001, plate pass)" in refused(req, None).message
    req = request()
    req.conditioning.frames[1].frame = 999
    assert "conditioning.frames[1].frame: 999 is outside" in refused(req, None).message
    req = request()
    req.conditioning.strength = 1.5
    assert "conditioning.strength" in refused(req, None).message


def test_mode_the_model_lacks_is_failed_precondition_naming_model_and_mode(assets: dict[str, str]) -> None:
    err = refused(request(depth=[assets["depth"]] * 2), None, modes=("txt2img", "img2img", "inpaint"))
    assert err.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "'tiny'" in err.message and "'depth'" in err.message
    req = request()
    req.shot.keyframe_step = 4
    err = refused(req, None, modes=("txt2img",))
    assert err.code == grpc.StatusCode.FAILED_PRECONDITION and "'temporal'" in err.message


def test_acescg_output_is_accepted_with_opencolorio() -> None:
    req = request()
    req.output.colorspace = pb.COLOR_SPACE_ACESCG
    assert check(req, None).output.colorspace == pb.COLOR_SPACE_ACESCG


def test_depth_pass_reader_takes_z_and_marks_sky_far(tmp_path: Path) -> None:
    from inference_server.engine.passes import PassError, read_depth, read_mask

    z = np.array([[1.0, 0.0], [np.inf, 5.0]], np.float32)
    got = read_depth(write_depth_exr(tmp_path / "z.exr", z), 7)
    assert got[0, 0] == 1.0 and got[1, 1] == 5.0 and np.isinf(got[0, 1]) and np.isinf(got[1, 0])
    rgba = np.zeros((2, 2, 4), np.float32)
    rgba[..., 3] = [[0, 1], [1, 0]]
    assert read_mask(write_png(tmp_path / "m.png", rgba), 7).tolist() == [[0, 1], [1, 0]]
    with pytest.raises(PassError, match=r"frame 7, depth pass"):
        read_depth(tmp_path / "nothing.exr", 7)


def test_a_pass_declaring_too_many_pixels_is_refused_before_any_read(tmp_path: Path) -> None:
    """A 97 KB PNG declaring 10000x10000 was accepted as a plate and took the server to 4.2 GB."""
    from .test_bad_input import BOMB

    (tmp_path / ("b" * 64)).write_bytes(BOMB)  # stored before uploads were checked
    err = refused(request(plate=["b" * 64] * 2), tmp_path)
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "frame 1001, plate pass): 10000x10000 (100000000 pixels) exceeds the limit" in err.message


def _largest_request(limits: Limits) -> pb.GenerateRequest:
    """The biggest request the other limits allow: every frame with its own camera and four passes,
    the most LoRAs (longest names), prompts at their limit in 4-byte characters."""
    frames = range(1001, 1001 + limits.max_frames_per_job)
    loras = [(f"{i}" + "l" * 63, 1.0) for i in range(limits.max_loras_per_job)]
    return build_request(
        prompt="\U0001f525" * limits.max_prompt_chars,
        negative_prompt="\U0001f525" * limits.max_prompt_chars,
        camera=track(frames, limits.max_width, limits.max_height),
        frame_start=frames[0],
        frame_end=frames[-1],
        model="tiny",
        loras=loras,
        passes={f: {k: f"{i % 16:x}" * 64 for i, k in enumerate(PASSES)} for f in frames},
        client_tag="t" * 200,
    )


def _validate_largest(limits: Limits) -> pb.GenerateRequest:
    req = _largest_request(limits)
    return validate_generate(
        req,
        limits,
        ["tiny"],
        "tiny",
        {"tiny": ("sim", "depth", "temporal")},
        loras={lora.name: ("tiny",) for lora in req.loras},
        lora_modes={"tiny": ("sim", "depth")},
    )


def test_the_stored_size_cap_leaves_room_for_every_request_the_other_limits_allow() -> None:
    stored = _validate_largest(Limits())
    assert stored.ByteSize() < Limits().max_request_bytes


def test_a_request_over_the_stored_size_cap_is_refused_naming_the_limit() -> None:
    """ListJobs and every GetJob echo the stored request: its size is what a listing page costs."""
    limits = Limits(max_request_bytes=200_000)
    with pytest.raises(RequestError) as info:
        _validate_largest(limits)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "exceeds the limit of 200000 bytes (Limits.max_request_bytes)" in info.value.message
