"""Passes made from the sim (the Mantra ROP the node builds and runs) and the LoRA rows, through the fake
hou and a recording client: what the ROP is set to, what it writes, what the node uploads and sends."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import OpenEXR
import pytest

from genfx.proto import genfx_pb2 as pb
from inference_server.engine.passes import read_depth, read_mask, read_motion
from tests.houdini.fakes import mantra
from tests.houdini.test_units import ScriptedClient

if TYPE_CHECKING:
    from hou import OpNode, Parm  # types-houdini: genfx_houdini returns real-typed nodes

FRAMES = (1, 3)
ROP = "/out/genfx_passes_geo1_generate_collapse1"


class RecordingClient(ScriptedClient):
    """Accepts the job at once; remembers what was uploaded (path -> its asset id, the file's bytes)."""

    def __init__(self, frames: tuple[int, ...] = FRAMES) -> None:
        super().__init__(steps=1, frames=frames, pause=0.0)
        self.bytes: dict[str, bytes] = {}

    def upload(self, path: str) -> Any:
        self.bytes[path] = Path(path).read_bytes()
        return super().upload(path)


def _parm(node: OpNode, name: str) -> Parm:
    """A parameter the node must have (Node.parm is None for an unknown name, as in Houdini)."""
    parm = node.parm(name)
    assert parm is not None, f"{node.path()} has no parameter {name}"
    return parm


def _scene(hou: ModuleType) -> Any:
    obj = hou.node("/obj")
    cam = obj.createNode("cam", "shotcam")
    cam.parm("tz").set(10.0)
    cam.parm("resx").set(32)
    cam.parm("resy").set(18)
    geo = obj.createNode("geo")
    node = geo.createNode("genfx::generate_collapse::1.0")
    node.setInput(0, geo.createNode("null"))
    node.parm("camera").set("/obj/shotcam")
    node.parm("frame_start").set(FRAMES[0])
    node.parm("frame_end").set(FRAMES[-1])
    node.parm("prompt").set("dust")
    node.parm("pass_source").set(1)  # Render From the Sim
    hou._session.shader_exports = {"motion_vector"}  # the debris material exports motion (Help says so)
    return node


def _generate(hou: ModuleType, hdefereval: ModuleType, node: Any, client: Any, monkeypatch: Any) -> None:
    from genfx_houdini import node as node_mod

    monkeypatch.setattr(node_mod, "client_factory", lambda address, token: client)
    node.parm("generate").pressButton()
    assert hdefereval.run_until(lambda: not node_mod._RUNS, timeout=30)


def _channels(path: Path) -> set[str]:
    with OpenEXR.File(str(path)) as f:
        return set(f.channels())


def test_the_node_builds_a_mantra_rop_for_the_shot_camera_range_and_passes(hou: ModuleType) -> None:
    from genfx_houdini import node as node_mod

    node = _scene(hou)
    rop = node_mod.render_passes(node)
    assert rop is not None and rop.path() == ROP and rop.type().name() == "ifd"
    assert node.parm("pass_rop").eval() == ROP
    assert _parm(rop, "camera").eval() == "/obj/shotcam"
    assert _parm(rop, "trange").evalAsString() == "normal"  # Render Frame Range, not the current frame
    assert (_parm(rop, "f1").eval(), _parm(rop, "f2").eval(), _parm(rop, "f3").eval()) == (1.0, 3.0, 1.0)
    assert (_parm(rop, "vobject").eval(), _parm(rop, "forceobject").eval()) == ("", "/obj/geo1")
    planes = [
        tuple(
            _parm(rop, f"vm_{what}_plane{n}").unexpandedString()
            if what == "filename"
            else _parm(rop, f"vm_{what}_plane{n}").eval()
            for what in ("variable", "vextype", "channel", "quantize", "usefile", "filename")
        )
        for n in range(1, int(_parm(rop, "vm_numaux").eval()) + 1)
    ]
    folder = "$HIP/genfx/passes/generate_collapse1"  # the default Pass Folder, kept relative to $HIP
    assert planes == [
        ("Pz", "float", "Z", "float", 1, f"{folder}/depth.$F4.exr"),
        ("motion_vector", "vector", "motionvector", "float", 1, f"{folder}/motion.$F4.exr"),
        ("Af", "float", "A", "float", 1, f"{folder}/mask.$F4.exr"),
    ]
    assert [(r.rop, r.frame_range) for r in hou._session.renders] == [(ROP, (1.0, 3.0, 1.0))]
    # What Mantra wrote is what the server reads: depth Z, motion in pixels, the objects' coverage.
    out = Path(hou.hipFile.path()).parent / "genfx" / "passes" / "generate_collapse1"
    for frame in range(FRAMES[0], FRAMES[1] + 1):
        depth = read_depth(out / f"depth.{frame:04d}.exr", frame)
        motion = read_motion(out / f"motion.{frame:04d}.exr", frame)
        mask = read_mask(out / f"mask.{frame:04d}.exr", frame)
        assert depth.shape == mask.shape == (18, 32) and motion.shape == (18, 32, 2)
        assert depth[9, 16] == pytest.approx(10.0) and mask[9, 16] == 1.0 and mask[0, 0] == 0.0
        assert tuple(motion[9, 16]) == mantra.MOTION
        assert _channels(out / f"depth.{frame:04d}.exr") == {"Z"}


def test_building_again_follows_the_node_and_keeps_one_rop(hou: ModuleType) -> None:
    from genfx_houdini import node as node_mod

    node = _scene(hou)
    node_mod.render_passes(node)
    node.parm("frame_end").set(2)
    node.parm("motion_export").set("")  # no motion-vector export: two planes, depth and mask
    node.parm("pass_objects").set("/obj/geo*")
    rop = node_mod.render_passes(node)
    assert rop is not None and [c.path() for c in hou.node("/out").children()] == [ROP]
    assert _parm(rop, "f2").eval() == 2.0 and _parm(rop, "forceobject").eval() == "/obj/geo*"
    assert _parm(rop, "vm_numaux").eval() == 2
    assert [_parm(rop, f"vm_variable_plane{n}").eval() for n in (1, 2)] == ["Pz", "Af"]
    assert rop.parm("vm_variable_plane3") is None  # the third plane is gone, as in Houdini
    assert hou._session.renders[-1].frame_range == (1.0, 2.0, 1.0)


def test_generate_renders_then_uploads_each_pass_per_frame(
    hou: ModuleType, hdefereval: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = _scene(hou)
    plates = Path(hou.hipFile.path()).parent / "plates"
    plates.mkdir()
    for frame in range(FRAMES[0], FRAMES[1] + 1):
        (plates / f"plate.{frame:04d}.png").write_bytes(b"png")
    node.parm("plate").set("$HIP/plates/plate.$F4.png")  # the plate stays a file sequence
    client = RecordingClient()
    _generate(hou, hdefereval, node, client, monkeypatch)
    assert hou._session.messages == [], hou._session.messages
    assert len(hou._session.renders) == 1
    (request,) = client.submitted
    out = Path(hou.hipFile.path()).parent / "genfx" / "passes" / "generate_collapse1"
    sent = [
        (f.frame, f.plate_asset_id, f.depth_asset_id, f.motion_asset_id, f.mask_asset_id)
        for f in request.conditioning.frames
    ]
    assert sent == [
        (
            f,
            f"sha-plate.{f:04d}.png",
            f"sha-depth.{f:04d}.exr",
            f"sha-motion.{f:04d}.exr",
            f"sha-mask.{f:04d}.exr",
        )
        for f in range(FRAMES[0], FRAMES[1] + 1)
    ]
    # The uploads are the files the render wrote.
    for f in range(FRAMES[0], FRAMES[1] + 1):
        for kind in ("depth", "motion", "mask"):
            path = (out / f"{kind}.{f:04d}.exr").as_posix()
            assert client.bytes[path] == Path(path).read_bytes()


def test_a_failed_render_is_reported_and_nothing_is_sent(
    hou: ModuleType, hdefereval: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = _scene(hou)
    hou._session.render_failure = "No licenses could be found to run this application"
    client = RecordingClient()
    _generate(hou, hdefereval, node, client, monkeypatch)
    (message,) = hou._session.messages
    assert message["text"].startswith(f"Rendering the passes with {ROP} failed")
    assert "No licenses" in message["text"]
    assert client.bytes == {} and client.submitted == []


def test_a_pass_the_render_did_not_write_is_named(
    hou: ModuleType, hdefereval: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An artist turned a plane's own file off on the ROP: Mantra writes it into the beauty instead, and
    the node says which pass file is missing rather than sending a job without it."""
    from genfx_houdini import node as node_mod
    from genfx_houdini import passes_rop

    node = _scene(hou)
    rop = node_mod.render_passes(node)
    assert rop is not None
    orig_build = passes_rop.build

    def build_then_edit(*args: Any, **kwargs: Any) -> Any:
        built = orig_build(*args, **kwargs)
        _parm(built, "vm_usefile_plane2").set(0)
        return built

    monkeypatch.setattr(passes_rop, "build", build_then_edit)
    for stale in (Path(hou.hipFile.path()).parent / "genfx" / "passes").rglob("motion.*"):
        stale.unlink()
    client = RecordingClient()
    _generate(hou, hdefereval, node, client, monkeypatch)
    (message,) = hou._session.messages
    assert message["text"].startswith(f"The motion pass {ROP} renders: no file for frame 1")
    assert client.submitted == []


def test_lora_rows_and_controlnet_scale_reach_the_request(
    hou: ModuleType, hdefereval: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = _scene(hou)
    node.parm("pass_source").set(0)
    assert node.parm("lora1") is None  # no rows yet
    node.parm("loras").set(2)
    node.parm("lora1").set("dust")
    node.parm("lora_weight1").set(0.8)
    node.parm("lora2").set("grit")
    node.parm("lora_weight2").set(-0.5)
    node.parm("controlnet_scale").set(0.7)
    client = RecordingClient()
    _generate(hou, hdefereval, node, client, monkeypatch)
    (request,) = client.submitted
    assert [(r.name, r.weight) for r in request.loras] == [("dust", pytest.approx(0.8)), ("grit", -0.5)]
    assert request.conditioning.controlnet_conditioning_scale == pytest.approx(0.7)
    # Removing a row removes its parms; the rest still reaches the server.
    node.parm("loras").set(1)
    assert node.parm("lora2") is None
    node.parm("controlnet_scale").set(0.0)  # 0 = the server's default: left unset
    client = RecordingClient()
    _generate(hou, hdefereval, node, client, monkeypatch)
    (request,) = client.submitted
    assert [r.name for r in request.loras] == ["dust"]
    assert not request.conditioning.HasField("controlnet_conditioning_scale")


def test_a_lora_row_without_a_name_is_named(hou: ModuleType) -> None:
    node = _scene(hou)
    node.parm("loras").set(2)
    node.parm("lora1").set("dust")
    node.parm("generate").pressButton()
    (message,) = hou._session.messages
    assert message["text"].startswith("LoRA 2 (Prompt tab) has no name")
    assert hou._session.renders == []  # checked before the (slow) pass render


def test_the_lora_menu_lists_the_servers_loras_from_the_cache(
    hou: ModuleType, hdefereval: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    from genfx_houdini import node as node_mod

    asked: list[str] = []

    class InfoClient(RecordingClient):
        def info(self) -> Any:
            asked.append("info")
            return pb.ServerInfo(
                models=[pb.ModelInfo(name="collapse", family="sd15", native_width=512, native_height=512)],
                loras=[pb.LoraInfo(name="dust", hash="ab" * 32, models=["collapse"])],
                defaults=pb.RequestDefaults(steps=30, guidance=7.5, controlnet_conditioning_scale=1.0),
                limits=pb.Limits(
                    max_lora_weight=2.0, max_loras_per_job=4, max_controlnet_conditioning_scale=2
                ),
            )

    monkeypatch.setattr(node_mod, "client_factory", lambda address, token: InfoClient())
    node = _scene(hou)
    node.parm("loras").set(1)
    assert node.parm("lora1").menuItems() == ("",)  # asked on a worker; the menu does not wait
    assert hdefereval.run_until(lambda: "LoRA weights" in node.parm("server_defaults").eval(), timeout=10)
    assert node.parm("lora1").menuItems() == ("", "dust")
    assert node.parm("lora1").menuLabels()[1] == f"dust  (for collapse; sha256 {'ab' * 6})"
    assert node.parm("model").menuItems() == ("", "collapse")  # the same answer fills the Model menu
    assert "LoRA weights within \u00b12, at most 4 LoRAs" in node.parm("server_defaults").eval()
    assert asked == ["info"]  # one GetServerInfo for both menus
    assert np.isfinite(node.parm("lora_weight1").eval())
