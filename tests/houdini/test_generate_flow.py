"""The whole Generate flow, driven through the fake hou, against a real GenFX server with the tiny model.

Buttons are pressed the way Houdini presses them: the DialogScript callback runs in the asset's real
PythonModule, which calls genfx_houdini. The server is a real subprocess; frames come back as EXRs.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from genfx.client import Client
from genfx.exr import read_frame, read_header
from genfx.local_server import LocalServer
from genfx.proto import genfx_pb2 as pb

pytestmark = pytest.mark.slow

PROMPT = "a concrete tower collapsing, dust"
FRAMES = (1001, 1003)


@pytest.fixture(scope="module")
def genfx_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with LocalServer(tmp_path_factory.mktemp("houdini-server")) as srv:
        yield srv


@pytest.fixture()
def client(genfx_server: LocalServer) -> Iterator[Client]:
    with Client(genfx_server.address, timeout=60) as c:
        yield c


@dataclass
class Scene:
    cam: Any
    rig: Any
    sim: Any
    node: Any


def build_scene(hou: ModuleType, server: str) -> Scene:
    """An animated camera (parented to an animated rig, zooming) looking at a collapse, and the node."""
    py = hou.exprLanguage.Python
    obj = hou.node("/obj")
    rig = obj.createNode("null", "camera_rig")
    rig.parm("ry").setExpression("10 + 4 * (hou.frame() - 1001)", py)  # orbit around the building
    rig.parm("ty").setExpression("0.1 * (hou.frame() - 1001)", py)
    cam = obj.createNode("cam", "shotcam")
    cam.setInput(0, rig)
    cam.parm("tz").setExpression("14 - 0.5 * (hou.frame() - 1001)", py)  # dolly in
    cam.parm("ty").set(3.0)
    cam.parm("rx").set(-9.0)
    cam.parm("rz").set(2.0)
    cam.parm("focal").setExpression("35 + 2.5 * (hou.frame() - 1001)", py)  # zoom
    cam.parm("aperture").set(36.0)
    cam.parm("resx").set(96)
    cam.parm("resy").set(54)
    cam.parm("near").set(0.1)
    geo = obj.createNode("geo", "collapse")
    sim = geo.createNode("file", "collapse_sim")
    node = geo.createNode("genfx::generate_collapse::1.0")
    node.setInput(0, sim)
    node.parm("camera").set("../../shotcam")  # relative, as the chooser writes it (oprelative ".")
    node.parm("server").set(server)
    node.parm("frame_start").set(FRAMES[0])
    node.parm("frame_end").set(FRAMES[1])
    node.parm("prompt").set(PROMPT)
    node.parm("model").set("tiny")
    node.parm("steps").set(2)
    node.parm("seed").set(7)
    return Scene(cam=cam, rig=rig, sim=sim, node=node)


def status(node: Any) -> str:
    return str(node.parm("status").eval())


def stepping(node: Any) -> bool:
    """Denoising runs and frames are left to cancel: per-step progress is in the node's progress (status
    bar), not a parm. Any frame before the last one counts: on a loaded machine the polling thread may
    first look after frame 1001 is done."""
    from genfx_houdini.node import progress

    step = re.match(r"Frame (\d+): step", progress(node)[1])
    return step is not None and int(step[1]) < int(node.parm("frame_end").eval())


def idle(node: Any) -> bool:
    from genfx_houdini import node as node_mod

    run = node_mod._RUNS.get(node.sessionId())
    return run is None


def project_in_houdini(
    hou: ModuleType, cam: Any, frame: int, point: tuple[float, float, float]
) -> tuple[float, float]:
    """Houdini's own projection through the fake camera: p * inverse(world) in camera space, then the lens
    (cameralenses docs): focal / aperture horizontally, aperture * resy / (resx * aspect) vertically."""
    world = cam.worldTransformAtTime(hou.frameToTime(frame))
    p = hou.Vector3(point) * world.inverted()
    x, y, z = p[0], p[1], p[2]
    focal = cam.parm("focal").evalAtFrame(frame)
    aperture = cam.parm("aperture").evalAtFrame(frame)
    resx, resy = cam.parm("resx").evalAtFrame(frame), cam.parm("resy").evalAtFrame(frame)
    aspect = cam.parm("aspect").evalAtFrame(frame)
    apy = resy * aperture / (resx * aspect)
    ndc_x = 0.5 + (focal / aperture) * x / -z
    ndc_y = 0.5 + (focal / apy) * y / -z
    return ndc_x * resx, (1.0 - ndc_y) * resy


def project_with_exr(
    header: dict[str, Any], width: int, height: int, point: tuple[float, float, float]
) -> tuple[float, float]:
    m = np.asarray(header["worldToNDC"], dtype=np.float64)
    v = np.append(np.asarray(point, dtype=np.float64), 1.0) @ m
    return float(v[0] / v[3] * width), float(v[1] / v[3] * height)


def test_generate_in_the_ui_streams_frames_behind_the_camera(
    hou: ModuleType, hdefereval: ModuleType, genfx_server: LocalServer, client: Client
) -> None:
    scene = build_scene(hou, genfx_server.address)
    node, cam = scene.node, scene.cam
    pressed = time.monotonic()
    node.parm("generate").pressButton()
    # The click returns at once: the work runs on a worker thread, the UI is never blocked.
    assert time.monotonic() - pressed < 2.0
    assert not idle(node) and status(node) == "Starting"
    statuses: list[str] = []

    def done() -> bool:
        from genfx_houdini.node import progress

        statuses.append(progress(node)[1])
        return idle(node)

    assert hdefereval.run_until(done, timeout=180), status(node)
    assert status(node).startswith("Done: 3 frames"), status(node)
    from genfx_houdini.node import progress

    assert progress(node) == (1.0, status(node))
    assert any(s.startswith("Frame 1001: step") for s in statuses), statuses  # progress arrived live
    assert any(s.startswith("Frame 1002 ready") for s in statuses), statuses
    assert hou._session.messages == []  # no error dialogs

    job_id = node.parm("job_id").eval()
    job = client.get_job(job_id)
    assert job.state == pb.JOB_STATE_SUCCEEDED
    assert job.request.client_tag == "houdini:/obj/collapse/generate_collapse1"
    assert job.request.seed == 7 and job.request.model == "tiny"
    # Left to the server, which filled in its default (every frame generated).
    assert job.request.shot.keyframe_step == client.info().defaults.keyframe_step == 1
    assert [i.keyframe for i in job.frame_infos] == [True, True, True]

    hip = Path(hou.hipFile.path()).parent
    out = hip / "genfx" / "generate_collapse1"
    # The camera's background image points at the frames, with $F4.
    background = cam.parm("vm_background")
    assert background.unexpandedString() == "$HIP/genfx/generate_collapse1/generate_collapse1.$F4.exr"
    assert [i.frame for i in job.frame_infos] == list(range(FRAMES[0], FRAMES[1] + 1))
    for info in job.frame_infos:
        path = out / info.file_name  # the server's name for the frame
        assert Path(background.evalAsStringAtFrame(info.frame)) == path
        assert path.read_bytes() == (genfx_server.data_dir / "jobs" / job_id / path.name).read_bytes()

    # World points seen through the animated fake camera land where the EXR's worldToNDC puts them.
    points = [(0.0, 0.0, 0.0), (1.5, 2.0, -1.0), (-2.0, 4.0, 1.5), (2.5, -0.5, 0.5)]
    worst = 0.0
    for info in job.frame_infos:
        frame = info.frame
        pixels, header = read_frame(out / info.file_name)
        assert pixels.shape == (54, 96, 4)
        assert header["genfx/frame"] == frame and header["genfx/jobId"] == job_id
        assert header["genfx/prompt"] == PROMPT
        for point in points:
            expected = project_in_houdini(hou, cam, frame, point)
            assert 0 < expected[0] < 96 and 0 < expected[1] < 54, (frame, point, expected)  # in view
            got = project_with_exr(header, 96, 54, point)
            worst = max(worst, abs(got[0] - expected[0]), abs(got[1] - expected[1]))
    assert worst < 2e-3, f"pixel error {worst}"  # float32 matrices in the header

    # The frames differ per frame (the camera moved and the seeds differ): not one image copied.
    first = read_frame(out / "generate_collapse1.1001.exr")[0]
    assert not np.array_equal(first, read_frame(out / "generate_collapse1.1003.exr")[0])


def test_generate_without_a_ui_is_modal_and_interruptable(
    hou: ModuleType, genfx_server: LocalServer, client: Client
) -> None:
    hou._session.ui_available = False  # hython / hbatch
    scene = build_scene(hou, genfx_server.address)
    scene.node.parm("frame_end").set(1002)
    scene.node.parm("generate").pressButton()  # blocks until the job ends
    assert status(scene.node).startswith("Done: 2 frames"), status(scene.node)
    (operation,) = hou._session.operations
    assert operation.open_interrupt_dialog and not operation.active
    assert operation.calls and all(kind == "updateLongProgress" for kind, _, _ in operation.calls)
    assert any(text and text.startswith("Frame 100") for _, _, text in operation.calls)
    job = client.get_job(scene.node.parm("job_id").eval())
    assert job.state == pb.JOB_STATE_SUCCEEDED
    out = Path(hou.hipFile.path()).parent / "genfx" / "generate_collapse1"
    assert sorted(p.name for p in out.glob("*.exr")) == [
        "generate_collapse1.1001.exr",
        "generate_collapse1.1002.exr",
    ]
    assert read_header(out / "generate_collapse1.1002.exr")["genfx/jobId"] == job.id


def _long_job(node: Any) -> None:
    node.parm("frame_end").set(1004)
    node.parm("steps").set(40)


def test_cancel_from_the_node_stops_the_job_on_the_server(
    hou: ModuleType, hdefereval: ModuleType, genfx_server: LocalServer, client: Client
) -> None:
    scene = build_scene(hou, genfx_server.address)
    node = scene.node
    _long_job(node)
    node.parm("generate").pressButton()
    assert hdefereval.run_until(lambda: stepping(node), timeout=120), status(node)
    job_id = node.parm("job_id").eval()
    node.parm("cancel").pressButton()
    assert hdefereval.run_until(lambda: idle(node), timeout=120), status(node)
    job = client.get_job(job_id)
    assert job.state == pb.JOB_STATE_CANCELLED
    assert job.frames_done < job.frames_total
    assert status(node).startswith("Cancelled on the server"), status(node)
    assert hou._session.messages == []


def test_escape_in_hython_cancels_the_job_on_the_server(
    hou: ModuleType, genfx_server: LocalServer, client: Client
) -> None:
    hou._session.ui_available = False
    scene = build_scene(hou, genfx_server.address)
    node = scene.node
    _long_job(node)
    # The artist presses Esc once denoising has started.
    hou._session.interrupt = lambda op: stepping(node)
    from genfx_houdini import generate

    result = generate(node)
    assert result is not None and result.state == "cancelled", result
    job = client.get_job(node.parm("job_id").eval())
    assert job.state == pb.JOB_STATE_CANCELLED


def test_ctrl_c_in_hython_cancels_the_job_on_the_server(
    hou: ModuleType, genfx_server: LocalServer, client: Client, request: pytest.FixtureRequest
) -> None:
    """hython has no Esc: Ctrl-C arrives as KeyboardInterrupt (SIGINT's default handler), not as
    hou.OperationInterrupted. The job is cancelled on the server, then the interrupt goes on to the script."""
    import _thread

    # hython handles SIGINT with Python's default handler; a test run started in the background of a
    # non-interactive shell inherits SIGINT ignored, and interrupt_main() then does nothing.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))
    hou._session.ui_available = False
    scene = build_scene(hou, genfx_server.address)
    node = scene.node
    _long_job(node)
    pressed: list[bool] = []

    def ctrl_c_once_denoising_runs(operation: Any) -> bool:
        if not pressed and stepping(node):
            pressed.append(True)
            _thread.interrupt_main()  # what SIGINT does: KeyboardInterrupt in the main thread
        return False

    hou._session.interrupt = ctrl_c_once_denoising_runs
    from genfx_houdini import generate

    with pytest.raises(KeyboardInterrupt):
        generate(node)
    assert pressed
    job = client.get_job(node.parm("job_id").eval())
    assert job.state == pb.JOB_STATE_CANCELLED, pb.JobState.Name(job.state)
    assert status(node).startswith("Cancelled on the server"), status(node)


def test_cancel_and_load_results_work_on_a_job_id_after_a_reload(
    hou: ModuleType, hdefereval: ModuleType, genfx_server: LocalServer, client: Client
) -> None:
    """A scene reopened while its job runs: the node knows only the Job ID."""
    from genfx.shot import load_shot
    from tests.conftest import SAMPLE_SHOT, small_request

    scene = build_scene(hou, genfx_server.address)
    node = scene.node
    shot = load_shot(SAMPLE_SHOT)
    running = client.submit(small_request(shot, frames=4, steps=40))
    node.parm("job_id").set(running.id)
    node.parm("cancel").pressButton()
    assert hdefereval.run_until(lambda: status(node).startswith("Cancel requested for job"), timeout=60), (
        status(node)
    )
    assert client.wait(running.id).state == pb.JOB_STATE_CANCELLED

    finished = client.wait(client.submit(small_request(shot, frames=2)).id)
    node.parm("job_id").set(finished.id)
    node.parm("load_results").pressButton()
    assert hdefereval.run_until(lambda: idle(node), timeout=60), status(node)
    assert status(node).startswith("Done: 2 frames"), status(node)
    out = Path(hou.hipFile.path()).parent / "genfx" / "generate_collapse1"
    assert len(finished.frame_infos) == 2
    for info in finished.frame_infos:
        assert read_header(out / info.file_name)["genfx/jobId"] == finished.id  # the job's own names
    assert finished.file_pattern == "genfx.####.exr"  # the server's default name
    assert scene.cam.parm("vm_background").unexpandedString() == "$HIP/genfx/generate_collapse1/genfx.$F4.exr"


def test_model_menu_lists_the_server_models(
    hou: ModuleType, hdefereval: ModuleType, genfx_server: LocalServer
) -> None:
    scene = build_scene(hou, genfx_server.address)
    model = scene.node.parm("model")
    assert model.menuItems() == ("",)  # the first opening asks the server on a worker thread
    assert hdefereval.run_until(lambda: scene.node.parm("server_defaults").eval().startswith("Steps"), 30)
    assert model.menuItems()[:2] == ("", "tiny")
    assert model.menuLabels()[0] == "Server default (tiny)" and model.menuLabels()[1].startswith("tiny  (")
    # Opening the menu also shows what the server uses for the settings left at 0.
    with Client(genfx_server.address) as c:
        info = c.info()
    d, limits = info.defaults, info.limits
    shown = scene.node.parm("server_defaults").eval()
    assert shown.startswith(
        f"Steps {d.steps}, Guidance {d.guidance:g}, Plate Strength {d.strength:g},"
        f" Keyframe Step {d.keyframe_step}, ControlNet Scale {d.controlnet_conditioning_scale:g}"
    )
    assert shown.endswith(f"at most {limits.max_loras_per_job} LoRAs")
    assert d.steps > 0 and d.guidance > 0 and d.strength > 0  # real values, from the server


# ---------------------------------------------------------------------------------------------------
# Errors reach the artist


def test_unreachable_server_shows_a_dialog(hou: ModuleType, hdefereval: ModuleType) -> None:
    scene = build_scene(hou, "127.0.0.1:9")  # nothing listens on the discard port
    scene.node.parm("generate").pressButton()
    assert hdefereval.run_until(lambda: idle(scene.node), timeout=60)
    (message,) = hou._session.messages
    assert message["severity"] is hou.severityType.Error
    assert message["text"].startswith("Cannot reach the GenFX server at 127.0.0.1:9")
    assert "UNAVAILABLE" in message["details"]
    assert status(scene.node).startswith("Error: Cannot reach the GenFX server")


def test_server_refusal_raises_node_error_without_a_ui(hou: ModuleType, genfx_server: LocalServer) -> None:
    hou._session.ui_available = False
    scene = build_scene(hou, genfx_server.address)
    scene.node.parm("model").set("sd99")
    with pytest.raises(hou.NodeError, match=r"The server rejected a setting: model: unknown model 'sd99'"):
        scene.node.parm("generate").pressButton()
    assert status(scene.node).startswith("Error: The server rejected a setting")
    assert hou._session.messages == []


def _capabilities(client: Client, model: str = "tiny") -> set[str]:
    return next(set(m.capabilities) for m in client.info().models if m.name == model)


def test_keyframe_step_is_sent_and_a_refusal_is_explained(
    hou: ModuleType, genfx_server: LocalServer, client: Client
) -> None:
    """Keyframe Step reaches the server as Shot.keyframe_step. A server without the temporal mode
    refuses it (FAILED_PRECONDITION), and the artist is told to set it back to 1."""
    hou._session.ui_available = False
    scene = build_scene(hou, genfx_server.address)
    scene.node.parm("keyframe_step").set(2)
    if "temporal" in _capabilities(client):
        scene.node.parm("generate").pressButton()
        job = client.get_job(scene.node.parm("job_id").eval())
        assert job.state == pb.JOB_STATE_SUCCEEDED, job.message
        assert job.request.shot.keyframe_step == 2
    else:
        with pytest.raises(hou.NodeError, match="set Keyframe Step to 1"):
            scene.node.parm("generate").pressButton()
        assert status(scene.node).startswith("Error: The server cannot run this request")


def test_passes_are_uploaded_and_sent_per_frame(
    hou: ModuleType, hdefereval: ModuleType, genfx_server: LocalServer, client: Client
) -> None:
    """Plate files named by a $F4 pattern are uploaded (one asset per frame) and sent as FrameAssets.
    A server whose model cannot run img2img refuses the job, and the dialog says to clear Plate."""
    import hashlib

    from PIL import Image

    scene = build_scene(hou, genfx_server.address)
    plates = Path(hou.hipFile.path()).parent / "plates"
    plates.mkdir()
    digests = {}
    for frame in range(FRAMES[0], FRAMES[1] + 1):
        path = plates / f"plate.{frame:04d}.png"
        Image.new("RGB", (96, 54), (frame % 256, 90, 40)).save(path)
        digests[frame] = hashlib.sha256(path.read_bytes()).hexdigest()
    scene.node.parm("plate").set("$HIP/plates/plate.$F4.png")
    scene.node.parm("strength").set(0.45)
    scene.node.parm("generate").pressButton()
    assert hdefereval.run_until(lambda: idle(scene.node), timeout=120), status(scene.node)
    for digest in digests.values():  # every frame's plate reached the server
        assert (genfx_server.data_dir / "assets" / digest).is_file()
    if "img2img" in _capabilities(client):
        assert hou._session.messages == [], hou._session.messages
        job = client.get_job(scene.node.parm("job_id").eval())
        assert job.state == pb.JOB_STATE_SUCCEEDED, job.message
        sent = {
            f.frame: (f.plate_asset_id, f.mask_asset_id, f.depth_asset_id)
            for f in job.request.conditioning.frames
        }
        assert sent == {frame: (digest, "", "") for frame, digest in digests.items()}
        assert job.request.conditioning.strength == pytest.approx(0.45)
    else:
        (message,) = hou._session.messages
        assert "img2img" in message["text"] and "Clear Plate" in message["text"], message["text"]


def test_missing_pass_frame_is_named_before_anything_is_sent(hou: ModuleType) -> None:
    scene = build_scene(hou, "127.0.0.1:9")
    plates = Path(hou.hipFile.path()).parent / "plates"
    plates.mkdir()
    (plates / "plate.1001.exr").write_bytes(b"v/1\x01")
    scene.node.parm("plate").set("$HIP/plates/plate.$F4.exr")
    scene.node.parm("generate").pressButton()
    (message,) = hou._session.messages
    assert message["text"].startswith("Plate (Passes tab): no file for frame 1002")
    assert idle(scene.node)


@pytest.mark.parametrize(
    ("parm", "value", "expected"),
    [
        ("camera", "/obj/nope", "Camera '/obj/nope' does not exist"),
        ("camera", "../../camera_rig", "/obj/camera_rig is not a camera"),
        ("prompt", "  ", "Prompt is empty"),
        ("frame_end", 900, "Frame range: the end (900) is before the start (1001)"),
    ],
)
def test_bad_settings_are_explained(hou: ModuleType, parm: str, value: object, expected: str) -> None:
    scene = build_scene(hou, "127.0.0.1:9")
    scene.node.parm(parm).set(value)
    scene.node.parm("generate").pressButton()
    (message,) = hou._session.messages
    assert message["text"].startswith(expected), message["text"]
    hou._session.ui_available = False
    with pytest.raises(hou.NodeError, match=expected.split(":")[0]):
        scene.node.parm("generate").pressButton()


def test_ortho_camera_is_refused(hou: ModuleType) -> None:
    scene = build_scene(hou, "127.0.0.1:9")
    scene.cam.parm("projection").set("ortho")
    scene.node.parm("generate").pressButton()
    assert "GenFX needs a perspective camera" in hou._session.messages[0]["text"]
