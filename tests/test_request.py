"""genfx.request: the one request builder covers the whole contract and leaves defaults to the server;
genfx.frames: server-given file names and patterns on the client side; the CLI shows no copied defaults."""

from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path
from typing import cast

import pytest
from google.protobuf.message import Message

from genfx import client as client_module
from genfx.camera import CameraTrack, from_houdini
from genfx.cli import build_parser
from genfx.frames import local_path, split_pattern
from genfx.proto import genfx_pb2 as pb
from genfx.request import build_request, output_name, parse_lora
from genfx.wire import camera_track_to_proto


def _track() -> CameraTrack:
    world = (1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 2, 10, 1)
    sample = from_houdini(world, frame=1001, focal=35, aperture=36, resx=64, resy=36)
    return CameraTrack(width=64, height=36, samples=(sample,))


def _everything() -> pb.GenerateRequest:
    """A request with every argument of the builder away from its default."""
    return build_request(
        prompt="dust",
        camera=_track(),
        frame_start=1001,
        frame_end=1002,
        fps=Fraction(24000, 1001),
        keyframe_step=2,
        negative_prompt="cartoon",
        seed=42,
        steps=12,
        guidance=5.5,
        model="sd21",
        loras=[("dust_v2", 0.8)],
        width=128,
        height=72,
        compression="piz",
        colorspace="acescg",
        name="Shot 010",
        passes={
            1002: {"plate": "p2", "depth": "d2", "motion": "v2"},
            1001: {"plate": "p1", "mask": "m1", "depth": "d1", "motion": "v1"},
        },
        strength=0.35,
        plane_distance=12.5,
        controlnet_scale=0.7,
        temporal="reproject",
        priority=7,
        client_tag="script:test",
    )


def unset_fields(message: Message, prefix: str = "") -> list[str]:
    """Fields of ``message`` (recursively, first element of repeated fields) left at their zero value."""
    missing = []
    for field in message.DESCRIPTOR.fields:
        name = prefix + field.name
        if field.is_repeated:
            values = getattr(message, field.name)
            if not values:
                missing.append(name)
            elif field.message_type is not None:
                missing += unset_fields(values[0], name + "[0].")
        elif field.message_type is not None:
            if not message.HasField(field.name):
                missing.append(name)
            else:
                missing += unset_fields(getattr(message, field.name), name + ".")
        elif not getattr(message, field.name):
            missing.append(name)
    return missing


def test_the_builder_can_set_every_field_of_the_contract() -> None:
    req = _everything()
    # The camera comes from genfx.wire (whose fields a sample may leave at 0: "derived").
    assert req.camera == camera_track_to_proto(_track())
    req.ClearField("camera")
    assert unset_fields(req) == ["camera"]


def test_every_argument_lands_in_its_field() -> None:
    req = _everything()
    assert (req.prompt, req.negative_prompt, req.seed, req.steps, req.guidance) == (
        "dust",
        "cartoon",
        42,
        12,
        5.5,
    )
    assert (req.model, [(lo.name, lo.weight) for lo in req.loras]) == ("sd21", [("dust_v2", 0.8)])
    shot = req.shot
    assert (shot.frame_start, shot.frame_end, shot.keyframe_step) == (1001, 1002, 2)
    assert (shot.fps.numerator, shot.fps.denominator) == (24000, 1001)
    out = req.output
    assert (out.width, out.height, out.name) == (128, 72, "Shot_010")
    assert (out.compression, out.colorspace) == (pb.COMPRESSION_PIZ, pb.COLOR_SPACE_ACESCG)
    frames = [
        (f.frame, f.plate_asset_id, f.mask_asset_id, f.depth_asset_id, f.motion_asset_id)
        for f in req.conditioning.frames
    ]
    assert frames == [(1001, "p1", "m1", "d1", "v1"), (1002, "p2", "", "d2", "v2")]  # in frame order
    cond = req.conditioning
    assert (cond.strength, cond.plane_distance, cond.controlnet_conditioning_scale) == (0.35, 12.5, 0.7)
    assert (req.temporal, req.priority, req.client_tag) == (pb.TEMPORAL_MODE_REPROJECT, 7, "script:test")
    assert (
        build_request(prompt="x", camera=_track(), frame_start=1, frame_end=1, loras={"a": 1.0}).loras[0].name
        == "a"
    )
    # 0 is a scale a client may ask for (ControlNet off): set, not left to the server.
    zero = build_request(prompt="x", camera=_track(), frame_start=1, frame_end=1, controlnet_scale=0.0)
    assert zero.conditioning.HasField("controlnet_conditioning_scale")


def test_lora_fields_parse_name_and_weight() -> None:
    assert parse_lora("collapse") == ("collapse", 0.0)  # 0 = the server's 1.0
    assert parse_lora(" dust=0.5") == ("dust", 0.5)
    assert parse_lora("dust=-1") == ("dust", -1.0)
    with pytest.raises(ValueError, match="LoRA 'dust': weight 'heavy' is not a number"):
        parse_lora("dust=heavy")
    with pytest.raises(ValueError, match="expected NAME or NAME=WEIGHT"):
        parse_lora("=1")


def test_what_is_not_given_is_left_to_the_server() -> None:
    req = build_request(prompt="dust", camera=_track(), frame_start=1001, frame_end=1001)
    for field in ("seed", "guidance", "conditioning"):
        assert not req.HasField(field), field
    assert not req.shot.HasField("fps")  # the server's 24/1
    assert (req.steps, req.model, req.shot.keyframe_step, req.priority) == (0, "", 0, 0)
    assert (req.output.width, req.output.height, req.output.name) == (0, 0, "")
    assert (req.output.compression, req.output.colorspace, req.temporal) == (0, 0, 0)
    assert unset_fields(req) == [
        "negative_prompt",
        "seed",
        "steps",
        "guidance",
        "model",
        "loras",
        "shot.fps",
        "shot.keyframe_step",
        "output.width",
        "output.height",
        "output.compression",
        "output.colorspace",
        "output.name",
        "conditioning",
        "temporal",
        "priority",
        "client_tag",
    ]


def test_names_go_through_the_one_sanitiser_and_tags_are_cut_to_the_limit() -> None:
    req = build_request(
        prompt="x", camera=_track(), frame_start=1, frame_end=1, name="../my comp.", client_tag="t" * 300
    )
    assert req.output.name == output_name("../my comp.") == "my_comp"
    assert req.client_tag == "t" * 256


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"compression": "lzw"}, "compression: must be one of zip, piz, dwaa, none"),
        ({"colorspace": "srgb"}, "colorspace: must be one of linear_rec709, acescg"),
        ({"temporal": "smooth"}, "temporal: must be one of none, reproject"),
        ({"passes": {1: {"normal": "n"}}}, "frame 1: unknown pass 'normal'"),
    ],
)
def test_bad_options_name_the_field(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_request(prompt="x", camera=_track(), frame_start=1, frame_end=1, **kwargs)  # type: ignore[arg-type]


def test_the_client_module_re_exports_the_one_builder() -> None:
    assert client_module.build_request is build_request


def test_local_path_takes_only_plain_file_names(tmp_path: Path) -> None:
    assert local_path(tmp_path, "shot.1001.exr") == tmp_path / "shot.1001.exr"
    for bad in ("", ".hidden.exr", "..", "../up.1001.exr", "a/b.exr", "a\\b.exr", "/abs.exr"):
        with pytest.raises(ValueError, match="unusable frame file name"):
            local_path(tmp_path, bad)


def test_split_pattern() -> None:
    assert split_pattern("genfx.####.exr") == ("genfx.", 4, ".exr")
    assert split_pattern("a.b_v2.######.exr") == ("a.b_v2.", 6, ".exr")
    with pytest.raises(ValueError, match="no '#'"):
        split_pattern("genfx.exr")


def test_generate_help_points_at_the_servers_defaults() -> None:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    generate = cast(dict[str, argparse.ArgumentParser], sub.choices)["generate"]  # a subparsers action
    helps = {a.dest: a.help or "" for a in generate._actions}
    for dest in ("steps", "guidance", "strength", "keyframe_step"):
        assert "default: the server's (see genfx info)" in helps[dest], dest
    defaults = {a.dest: a.default for a in generate._actions}
    assert (defaults["steps"], defaults["guidance"], defaults["strength"], defaults["keyframe_step"]) == (
        0,
        None,
        0.0,
        0,
    )
