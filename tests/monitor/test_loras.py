"""LoRAs in the monitor against a real server serving a trained LoRA for the tiny model (built from config
as `genfx-train fit` lays out a run): the LoRA table lists it, ticks a selected job's, and a re-run sends
the ticked LoRAs with their weights."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from genfx.client import Client
from genfx.local_server import LocalServer
from genfx.monitor.widget import MonitorWidget
from genfx.proto import genfx_pb2 as pb
from genfx.shot import Shot
from inference_server.models import model_hash
from inference_server.tiny_model import ensure_tiny_model

from ..conftest import small_request
from ..trained_weights import make_run

pytestmark = pytest.mark.slow

WAIT_MS = 180_000


@pytest.fixture(scope="module")
def lora_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    data_dir = tmp_path_factory.mktemp("monitor-loras")
    tiny = ensure_tiny_model(data_dir / "models")
    run = make_run(data_dir / "runs" / "collapse", tiny, model_hash(tiny), controlnet=False)
    config = data_dir / "models.json"
    config.write_text(
        json.dumps({"models": {"collapse": {"path": str(tiny)}}, "loras": {"dust": str(run / "lora")}})
    )
    with LocalServer(data_dir, extra_args=("--models-config", str(config))) as srv:
        yield srv


def test_a_rerun_sends_the_ticked_loras_with_their_weights(
    qtbot: QtBot, lora_server: LocalServer, shot: Shot, tmp_path: Path
) -> None:
    with Client(lora_server.address, timeout=120) as api:
        request = small_request(shot, frames=1, steps=1, seed=5, prompt="dust, lora")
        request.model = "collapse"
        request.loras.add(name="dust", weight=0.8)
        old = api.wait(api.submit(request).id)
        assert old.state == pb.JOB_STATE_SUCCEEDED, old.message
        widget = MonitorWidget(lora_server.address, "", cache_dir=tmp_path / "cache", poll_ms=300)
        qtbot.addWidget(widget)
        try:
            qtbot.waitUntil(lambda: widget.lora_table.rowCount() == 1, timeout=WAIT_MS)
            qtbot.waitUntil(lambda: widget.model.row_of(old.id) is not None, timeout=WAIT_MS)
            assert widget.select_job(old.id)
            own: list[tuple[str, object]] = [("dust", pytest.approx(0.8))]  # object: approx is no float
            assert widget.lora_table.chosen() == own  # the job's own LoRA
            assert "LoRAs: dust \u00d70.8" in widget.details.text()
            widget.lora_table.set_chosen("dust", 0.4)
            with qtbot.waitSignal(widget.controller.rerun_submitted, timeout=WAIT_MS) as signal:
                qtbot.mouseClick(widget.rerun_button, Qt.MouseButton.LeftButton)  # type: ignore[no-untyped-call]
            new = api.wait(signal.args[0])
            assert new.state == pb.JOB_STATE_SUCCEEDED, new.message
            rerun: list[tuple[str, object]] = [("dust", pytest.approx(0.4))]
            assert [(r.name, r.weight) for r in new.request.loras] == rerun
            manifest = json.loads((lora_server.data_dir / "jobs" / new.id / "manifest.json").read_text())
            assert "dust" in json.dumps(manifest)  # applied and recorded by the server
        finally:
            widget.shutdown()
