"""The Generate Collapse node with trained weights, end to end: a real server serving a LoRA and a sim
ControlNet for the tiny model (built from config as `genfx-train fit` lays them out), the node rendering
its passes from the sim (the fake Mantra), picking the LoRA from its menu, and every frame recording both."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from genfx.client import Client
from genfx.exr import read_header
from genfx.local_server import LocalServer
from genfx.proto import genfx_pb2 as pb
from inference_server.models import model_hash
from inference_server.tiny_model import ensure_tiny_model
from tests.houdini.test_generate_flow import FRAMES, build_scene, idle, status
from tests.trained_weights import make_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    data_dir = tmp_path_factory.mktemp("houdini-trained")
    tiny = ensure_tiny_model(data_dir / "models")
    run = make_run(data_dir / "runs" / "collapse", tiny, model_hash(tiny))
    config = data_dir / "models.json"
    config.write_text(
        json.dumps(
            {
                "models": {"collapse": {"path": str(tiny), "sim_controlnet": str(run / "controlnet")}},
                "loras": {"dust": str(run / "lora")},
            }
        )
    )
    with LocalServer(data_dir, extra_args=("--models-config", str(config))) as srv:
        yield srv


def test_passes_from_the_sim_and_a_lora_from_the_menu_make_recorded_frames(
    hou: ModuleType, hdefereval: ModuleType, trained_server: LocalServer
) -> None:
    scene = build_scene(hou, trained_server.address)
    node = scene.node
    node.parm("model").set("collapse")
    node.parm("frame_end").set(FRAMES[0] + 1)  # two frames, one step: this checks wiring, not pictures
    node.parm("steps").set(1)
    node.parm("pass_source").set(1)  # Render From the Sim
    hou._session.shader_exports = {"motion_vector"}
    node.parm("loras").set(1)
    node.parm("lora1").menuItems()  # the first opening asks the server on a worker thread
    assert hdefereval.run_until(lambda: "dust" in node.parm("lora1").menuItems(), timeout=30)
    node.parm("lora1").set("dust")
    node.parm("lora_weight1").set(0.75)
    node.parm("controlnet_scale").set(0.5)
    node.parm("generate").pressButton()
    assert hdefereval.run_until(lambda: idle(node), timeout=240), status(node)
    assert hou._session.messages == [], hou._session.messages
    with Client(trained_server.address) as client:
        job = client.get_job(node.parm("job_id").eval())
        info = client.info()
    assert job.state == pb.JOB_STATE_SUCCEEDED, job.message
    assert [(r.name, r.weight) for r in job.request.loras] == [("dust", 0.75)]
    assert job.request.conditioning.controlnet_conditioning_scale == 0.5
    frames = [FRAMES[0], FRAMES[0] + 1]
    assert [f.frame for f in job.request.conditioning.frames] == frames
    assert all(
        f.depth_asset_id and f.motion_asset_id and f.mask_asset_id for f in job.request.conditioning.frames
    )
    lora_hash = next(lora.hash for lora in info.loras if lora.name == "dust")
    cn_hash = info.models[0].sim_controlnet.hash
    out = Path(hou.hipFile.path()).parent / "genfx" / "generate_collapse1"
    for frame_info in job.frame_infos:
        header = read_header(out / frame_info.file_name)
        (lora,) = json.loads(header["genfx/loras"])
        assert (lora["name"], lora["weight"], lora["sha256"]) == ("dust", 0.75, lora_hash)
        assert json.loads(header["genfx/controlnet"])["sha256"] == cn_hash
    recorded = node.parm("recorded").eval()
    lora_text = f"LoRAs: dust \u00d70.75 (sha256 {lora_hash[:12]})"
    assert recorded == f"{lora_text} \u00b7 sim ControlNet \u00d70.5 (sha256 {cn_hash[:12]})"
