"""genfx_houdini pieces without a server: request building, names, error wording, the worker's error path."""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from genfx.camera import CameraTrack, from_houdini
from genfx.client import GenFXError


def _track() -> CameraTrack:
    world = (1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 2, 10, 1)
    sample = from_houdini(world, frame=1, focal=35, aperture=36, resx=64, resy=36)
    return CameraTrack(width=64, height=36, samples=(sample,))


def _spec(tmp_path: Path, **overrides: Any) -> Any:
    from genfx_houdini.job import JobSpec

    values: dict[str, Any] = {
        "node_id": 1,
        "node_path": "/obj/geo1/generate_collapse1",
        "server": "",
        "token": "",
        "camera_path": "/obj/cam1",
        "track": _track(),
        "frame_start": 1,
        "frame_end": 2,
        "fps": Fraction(24000, 1001),
        "keyframe_step": 1,
        "prompt": "dust",
        "negative_prompt": "",
        "model": "tiny",
        "loras": (),
        "controlnet_scale": 0.0,
        "seed": 3,
        "steps": 4,
        "guidance": 6.0,
        "width": 64,
        "height": 36,
        "passes": (),
        "strength": 0.6,
        "out_dir": tmp_path,
        "name": "generate_collapse1",
    }
    values.update(overrides)
    return JobSpec(**values)


def test_request_carries_every_setting_and_the_passes(tmp_path: Path) -> None:
    from genfx_houdini.job import FramePasses, build_request

    passes = (
        FramePasses(1, (("plate", "/p/plate.0001.exr"), ("depth", "/p/depth.0001.exr"))),
        FramePasses(2, (("plate", "/p/plate.0002.exr"), ("mask", "/p/mask.0002.exr"))),
    )
    spec = _spec(tmp_path, passes=passes, strength=0.3, keyframe_step=4)
    assert spec.pass_files == [
        "/p/plate.0001.exr",
        "/p/depth.0001.exr",
        "/p/plate.0002.exr",
        "/p/mask.0002.exr",
    ]
    ids = {path: f"id-{Path(path).stem}" for path in spec.pass_files}
    req = build_request(spec, ids)
    assert (req.prompt, req.model, req.seed, req.steps, req.guidance) == ("dust", "tiny", 3, 4, 6.0)
    assert (req.shot.frame_start, req.shot.frame_end, req.shot.keyframe_step) == (1, 2, 4)
    assert (req.shot.fps.numerator, req.shot.fps.denominator) == (24000, 1001)
    assert (req.output.width, req.output.height, req.output.name) == (64, 36, "generate_collapse1")
    assert req.client_tag == "houdini:/obj/geo1/generate_collapse1"
    assert req.camera.samples[0].camera_to_world[3] == 0.0 and req.camera.samples[0].camera_to_world[7] == 2.0
    frames = [(f.frame, f.plate_asset_id, f.mask_asset_id, f.depth_asset_id) for f in req.conditioning.frames]
    assert frames == [(1, "id-plate.0001", "", "id-depth.0001"), (2, "id-plate.0002", "id-mask.0002", "")]
    assert req.conditioning.strength == pytest.approx(0.3)
    # Motion vectors, LoRA rows (weight 0 = the server's 1.0) and the ControlNet scale.
    motion = (FramePasses(1, (("depth", "/p/d.exr"), ("motion", "/p/m.exr"))),)
    spec = _spec(tmp_path, passes=motion, loras=(("dust", 0.8), ("grit", 0.0)), controlnet_scale=1.5)
    req = build_request(spec, {"/p/d.exr": "id-d", "/p/m.exr": "id-m"})
    assert [(f.depth_asset_id, f.motion_asset_id) for f in req.conditioning.frames] == [("id-d", "id-m")]
    assert [(r.name, r.weight) for r in req.loras] == [("dust", pytest.approx(0.8)), ("grit", 0.0)]
    assert req.conditioning.controlnet_conditioning_scale == 1.5
    # Plate Strength goes with the passes only, as its label says.
    assert not build_request(_spec(tmp_path), {}).HasField("conditioning")


def test_settings_left_at_zero_are_left_to_the_server(tmp_path: Path) -> None:
    from genfx_houdini.job import FramePasses, build_request

    from genfx.request import output_name

    spec = _spec(tmp_path, steps=0, guidance=0.0, strength=0.0, keyframe_step=0, seed=0, name="my node!")
    passes = (FramePasses(1, (("plate", "/p/plate.0001.exr"),)),)
    req = build_request(dataclasses.replace(spec, passes=passes), {"/p/plate.0001.exr": "id"})
    assert (req.steps, req.shot.keyframe_step, req.conditioning.strength) == (0, 0, 0.0)
    assert not req.HasField("guidance")  # unset: the server's default, not 0
    assert req.HasField("seed") and req.seed == 0  # Seed 0 is a seed like any other
    # The node's name becomes the file prefix through the SDK's one sanitiser.
    assert req.output.name == output_name("my node!") == "my_node"


def test_fps_fraction() -> None:
    from genfx_houdini.job import fps_fraction

    assert fps_fraction(24.0) == 24
    assert fps_fraction(23.976) == Fraction(24000, 1001)
    assert fps_fraction(29.97) == Fraction(30000, 1001)
    assert fps_fraction(12.5) == Fraction(25, 2)


def test_background_pattern_follows_the_servers_file_pattern(hou: ModuleType) -> None:
    from genfx_houdini.node import background_pattern

    hip = Path(hou.hipFile.path()).parent
    assert background_pattern(hip / "genfx" / "n1", "n1.####.exr") == "$HIP/genfx/n1/n1.$F4.exr"
    assert background_pattern(Path("/elsewhere"), "shot_v2.######.exr") == "/elsewhere/shot_v2.$F6.exr"
    with pytest.raises(ValueError, match="no '#' frame number"):
        background_pattern(Path("/elsewhere"), "n1.exr")


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        ("UNAVAILABLE", "connection refused", "Cannot reach the GenFX server at gpu:1"),
        ("UNAUTHENTICATED", "missing token", "refused the token"),
        (
            "INVALID_ARGUMENT",
            "steps: 500 exceeds the limit of 150",
            "The server rejected a setting: steps: 500",
        ),
        (
            "FAILED_PRECONDITION",
            "model 'tiny' cannot run mode 'temporal' on this server",
            "set Keyframe Step to 1",
        ),
        ("FAILED_PRECONDITION", "model 'tiny' cannot run mode 'img2img' on this server", "Clear Plate"),
        ("FAILED_PRECONDITION", "model 'tiny' cannot run mode 'inpaint' on this server", "Clear Mask"),
        ("FAILED_PRECONDITION", "model 'tiny' cannot run mode 'depth' on this server", "Clear Depth"),
        ("RESOURCE_EXHAUSTED", "queue is full", "at one of its limits"),
        ("NOT_FOUND", "unknown job", "does not know"),
        ("INTERNAL", "boom", "reported an error (INTERNAL)"),
    ],
)
def test_server_errors_are_worded_for_the_artist(code: str, message: str, expected: str) -> None:
    from genfx_houdini.errors import describe_server_error

    err = describe_server_error(code, message, "gpu:1")
    assert expected in err.message
    assert err.details == f"{code}: {message}"


class RefusingClient:
    """Stands in for genfx.client.Client where a server refuses the job."""

    def __init__(self, code: str, message: str) -> None:
        self.error = GenFXError(code, message)
        self.uploaded: list[str] = []
        self.submitted: list[Any] = []

    def __enter__(self) -> RefusingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def close(self) -> None:
        pass

    def upload(self, path: str) -> Any:
        self.uploaded.append(path)
        return type("Asset", (), {"id": f"sha-{Path(path).name}"})()

    def submit(self, request: Any) -> Any:
        self.submitted.append(request)
        raise self.error


def _scene(hou: ModuleType) -> Any:
    obj = hou.node("/obj")
    cam = obj.createNode("cam", "cam1")
    cam.parm("tz").set(10.0)
    geo = obj.createNode("geo")
    node = geo.createNode("genfx::generate_collapse::1.0")
    node.setInput(0, geo.createNode("null"))
    node.parm("frame_start").set(1)
    node.parm("frame_end").set(2)
    return node


def test_a_refused_mode_reaches_the_artist_after_the_passes_were_sent(
    hou: ModuleType, hdefereval: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    from genfx_houdini import node as node_mod

    client = RefusingClient("FAILED_PRECONDITION", "model 'tiny' cannot run mode 'depth' on this server")
    monkeypatch.setattr(node_mod, "client_factory", lambda address, token: client)
    node = _scene(hou)
    hip = Path(hou.hipFile.path()).parent
    for frame in (1, 2):
        (hip / f"depth.{frame:04d}.exr").write_bytes(b"depth")
    node.parm("depth").set("$HIP/depth.$F4.exr")
    node.parm("generate").pressButton()
    assert hdefereval.run_until(lambda: not node_mod._RUNS, timeout=30)
    assert client.uploaded == [(hip / "depth.0001.exr").as_posix(), (hip / "depth.0002.exr").as_posix()]
    (request,) = client.submitted
    assert [(f.frame, f.depth_asset_id) for f in request.conditioning.frames] == [
        (1, "sha-depth.0001.exr"),
        (2, "sha-depth.0002.exr"),
    ]
    (message,) = hou._session.messages
    assert message["text"] == (
        "The server cannot run this request: model 'tiny' cannot run mode 'depth' on this server."
        " Clear Depth on the Passes tab, or pick a model that supports it."
    )
    assert message["severity"] is hou.severityType.Error and message["title"] == "GenFX: Generate Collapse"
    assert node.parm("status").eval().startswith("Error: The server cannot run this request")


def test_a_refused_mode_raises_node_error_without_a_ui(
    hou: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    from genfx_houdini import node as node_mod

    client = RefusingClient("FAILED_PRECONDITION", "model 'tiny' cannot run mode 'temporal' on this server")
    monkeypatch.setattr(node_mod, "client_factory", lambda address, token: client)
    hou._session.ui_available = False
    node = _scene(hou)
    node.parm("keyframe_step").set(3)
    with pytest.raises(hou.NodeError, match="set Keyframe Step to 1"):
        node.parm("generate").pressButton()
    assert client.submitted[0].shot.keyframe_step == 3


def test_generate_twice_is_refused_while_busy(
    hou: ModuleType, hdefereval: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from genfx_houdini import node as node_mod

    release = threading.Event()

    class SlowClient(RefusingClient):
        def submit(self, request: Any) -> Any:
            release.wait(30)
            raise GenFXError("UNAVAILABLE", "gone")

    monkeypatch.setattr(node_mod, "client_factory", lambda address, token: SlowClient("", ""))
    node = _scene(hou)
    node.parm("generate").pressButton()
    node.parm("generate").pressButton()
    assert "is already generating" in hou._session.messages[0]["text"]
    release.set()
    assert hdefereval.run_until(lambda: not node_mod._RUNS, timeout=30)


def test_missing_client_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from genfx_houdini.deps import require_sdk
    from genfx_houdini.errors import UserError

    monkeypatch.setitem(sys.modules, "genfx.client", None)  # import fails, as in a bare Houdini
    with pytest.raises(UserError, match="install_deps.py"):
        require_sdk()


def test_deps_folder_is_appended_not_prepended(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from genfx_houdini import deps

    monkeypatch.setenv(deps.ENV_VAR, str(tmp_path))
    monkeypatch.setattr(sys, "path", list(sys.path))
    deps.add_to_path()
    assert sys.path[-1] == str(tmp_path)  # Houdini's own numpy and friends keep precedence


# ---------------------------------------------------------------------------------------------------
# What a run costs the scene, and a Model menu that never waits on the network


class ScriptedClient(RefusingClient):
    """A server that accepts the job, sends ``steps`` progress events, then each frame (the SDK Client's
    interface: submit -> Job, watch -> JobEvents, fetch_frame writes the file, get_job -> the final Job)."""

    def __init__(self, steps: int = 300, frames: tuple[int, ...] = (1, 2), pause: float = 0.004) -> None:
        super().__init__("", "")
        self.steps, self.frames, self.pause = steps, frames, pause

    def _job(self, state: int) -> Any:
        from genfx.proto import genfx_pb2 as pb

        infos = [pb.FrameInfo(frame=f, file_name=f"n.{f:04d}.exr") for f in self.frames]
        return pb.Job(
            id="job1",
            state=pb.JobState.ValueType(state),
            seed=1,
            frames_total=len(self.frames),
            frames_done=len(infos),
            file_pattern="n.####.exr",
            frame_infos=infos if state == pb.JOB_STATE_SUCCEEDED else [],
        )

    def submit(self, request: Any) -> Any:
        from genfx.proto import genfx_pb2 as pb

        self.submitted.append(request)
        return self._job(pb.JOB_STATE_QUEUED)

    def watch(self, job_id: str, from_seq: int = 0) -> Any:
        import time

        from genfx.proto import genfx_pb2 as pb

        total = len(self.frames)
        for i in range(self.steps):
            time.sleep(self.pause)
            p = pb.Progress(frame=1, step=i % 20 + 1, steps=20, frames_total=total, fraction=i / self.steps)
            yield pb.JobEvent(progress=p)
        for done, f in enumerate(self.frames, 1):
            fd = pb.FrameDone(frame=f, file_name=f"n.{f:04d}.exr", frames_done=done, frames_total=total)
            yield pb.JobEvent(frame_done=fd)

    def fetch_frame(self, job_id: str, frame: int, dest: Path) -> Path:
        dest.write_bytes(b"frame")
        return dest

    def get_job(self, job_id: str) -> Any:
        from genfx.proto import genfx_pb2 as pb

        return self._job(pb.JOB_STATE_SUCCEEDED)


def test_progress_does_not_recook_the_scene(
    hou: ModuleType, hdefereval: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parms are used for cooking: each write re-cooks the node and everything downstream and marks the
    hip modified. Per-step progress goes to the status bar; the Status parm only sees milestones."""
    from genfx_houdini import node as node_mod

    client = ScriptedClient()
    monkeypatch.setattr(node_mod, "client_factory", lambda address, token: client)
    node = _scene(hou)
    after = node.parent().createNode("null", "after_genfx")
    after.setInput(0, node)
    after.setDisplayFlag(True)
    after.geometry()
    cooks, changes = after.cookCount(), hou._session.unsaved_changes
    node.parm("generate").pressButton()
    assert hdefereval.run_until(lambda: not node_mod._RUNS, timeout=60)
    assert node.parm("status").eval().startswith("Done: 2 frames"), node.parm("status").eval()
    # Milestones only: Starting, the job id, Submitted, at most one per frame, Done; and Recorded once.
    assert after.cookCount() - cooks <= 7, after.cookCount() - cooks
    assert hou._session.unsaved_changes - changes <= 7
    assert any("step" in m for m in hou._session.status_messages)  # progress was shown, in the status bar
    assert node.cachedUserData("genfx_progress") is not None


def test_the_model_menu_never_waits_for_the_server(
    hou: ModuleType, hdefereval: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Menu scripts run on Houdini's main thread: the menu answers from its cache at once and a worker
    asks the server; the next opening (and Server Defaults) shows what came back."""
    import threading
    import time

    from genfx_houdini import node as node_mod

    from genfx.proto import genfx_pb2 as pb

    release = threading.Event()

    class SlowServer(RefusingClient):
        def info(self) -> Any:
            release.wait(3.0)  # a server that is down answers after the client's timeout
            return pb.ServerInfo(
                models=[pb.ModelInfo(name="sd21", family="sd2", native_width=768, native_height=768)],
                defaults=pb.RequestDefaults(steps=30, guidance=7.5, strength=0.6, keyframe_step=1),
            )

    monkeypatch.setattr(node_mod, "client_factory", lambda address, token: SlowServer("", ""))
    node = _scene(hou)
    started = time.monotonic()
    first = node.parm("model").menuItems()
    assert time.monotonic() - started < 0.5
    assert first == ("",)  # only the server's default until the server answers
    release.set()
    assert hdefereval.run_until(
        lambda: node.parm("server_defaults").eval().startswith("Steps 30"), timeout=10
    )
    assert node.parm("model").menuItems() == ("", "sd21")
    assert node.parm("model").menuLabels()[0] == "Server default (sd21)"


def test_an_older_grpc_first_on_the_path_is_reported_with_versions_and_paths(tmp_path: Path) -> None:
    """Another tool's older grpcio earlier on Houdini's sys.path wins over genfx_deps. The generated stubs
    then raise RuntimeError (not ImportError) at import: the artist gets a UserError naming each copy."""
    import subprocess
    import sys

    from tests.houdini.conftest import LIBS

    old = tmp_path / "other_tool"
    (old / "grpc").mkdir(parents=True)
    (old / "grpc" / "__init__.py").write_text('__version__ = "1.48.2"\n')
    (old / "grpc" / "_utilities.py").write_text("")  # 1.48 has no first_version_is_lower
    (old / "grpcio-1.48.2.dist-info").mkdir()
    script = (
        "import sys\n"
        f"sys.path.insert(0, {str(old)!r}); sys.path.insert(0, {str(LIBS)!r})\n"
        "from genfx_houdini.deps import require_sdk\n"
        "from genfx_houdini.errors import UserError\n"
        "try:\n    require_sdk()\n"
        "except UserError as exc:\n    print('USERERROR', exc.message, '||', exc.details)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("USERERROR"), out.stdout + out.stderr
    message, details = out.stdout.split("||")
    assert "grpc 1.48.2" in message and str(old / "grpc") in message
    assert "GENFX_HOUDINI_DEPS_FIRST" in message
    assert "RuntimeError" in details and "grpcio>=" in details
