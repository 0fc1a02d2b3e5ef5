"""The monitor widget against a real server subprocess (tiny model), offscreen.

Every test's network calls are recorded with their thread: the fixture fails the test if one ran on
the GUI thread.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QGuiApplication, QImage
from pytestqt.qtbot import QtBot

from genfx.client import Client
from genfx.exr import read_frame
from genfx.local_server import LocalServer
from genfx.monitor.model import PROGRESS_ROLE, Column
from genfx.monitor.preview import tonemap
from genfx.monitor.widget import MonitorWidget, job_state
from genfx.proto import genfx_pb2 as pb
from genfx.shot import Shot

from ..conftest import ROOT, small_request
from .conftest import ThreadRecordingClient

pytestmark = pytest.mark.slow

WAIT_MS = 180_000  # generous: CI machines are slow and shared
SCREENSHOT = ROOT / "docs" / "monitor.png"


class Harness:
    """A MonitorWidget on the test server, with the opener, confirmation and client recorded."""

    def __init__(self, qtbot: QtBot, server: LocalServer, cache: Path, token: str = "") -> None:
        self.qtbot = qtbot
        self.opened: list[QUrl] = []
        self.questions: list[str] = []
        self.calls: list[tuple[str, str]] = []
        self.widget = MonitorWidget(
            server.address,
            token,
            cache_dir=cache,
            open_url=self.opened.append,
            confirm=self._confirm,
            client_factory=lambda address, tok, root: ThreadRecordingClient(
                address, tok, root_certificates=root, calls=self.calls
            ),
            poll_ms=300,
        )
        # Threads the table model is updated on (a direct connection runs in the emitting thread).
        self.model_threads: set[str] = set()
        self.widget.model.dataChanged.connect(
            lambda *_: self.model_threads.add(threading.current_thread().name)
        )
        qtbot.addWidget(self.widget)
        self.widget.resize(1180, 760)
        self.widget.show()

    def _confirm(self, parent: object, question: str) -> bool:
        self.questions.append(question)
        return True

    @property
    def model(self) -> Any:
        return self.widget.model

    def wait_for_job(self, job_id: str, timeout: int = WAIT_MS) -> None:
        self.qtbot.waitUntil(lambda: self.model.row_of(job_id) is not None, timeout=timeout)

    def wait_for_state(self, job_id: str, state: int, timeout: int = WAIT_MS) -> None:
        self.qtbot.waitUntil(lambda: job_state(self.widget, job_id) == state, timeout=timeout)

    def progress(self, job_id: str) -> float:
        i = self.model.row_of(job_id)
        return 0.0 if i is None else float(self.model.index(i, Column.PROGRESS).data(PROGRESS_ROLE))

    def select(self, job_id: str) -> None:
        self.wait_for_job(job_id)
        assert self.widget.select_job(job_id)
        assert self.widget.selected_job_id() == job_id

    def click(self, button: object) -> None:
        self.qtbot.mouseClick(button, Qt.MouseButton.LeftButton)  # type: ignore[no-untyped-call]


@pytest.fixture()
def harness(qtbot: QtBot, monitor_server: LocalServer, tmp_path: Path) -> Iterator[Harness]:
    h = Harness(qtbot, monitor_server, tmp_path / "cache")
    yield h
    h.widget.shutdown()
    gui = threading.main_thread().name
    on_gui = [what for what, thread in h.calls if thread == gui]
    assert not on_gui, f"network calls on the GUI thread: {on_gui}"
    assert h.model_threads <= {gui}, f"the model was updated off the GUI thread: {h.model_threads}"


def finished(api: Client, request: pb.GenerateRequest) -> pb.Job:
    job = api.wait(api.submit(request).id)
    assert job.state == pb.JOB_STATE_SUCCEEDED, job.message
    return job


# ---- tests ----------------------------------------------------------------------------------------


def test_jobs_appear_and_progress_moves(harness: Harness, api: Client, shot: Shot) -> None:
    job = api.submit(small_request(shot, frames=2, steps=8, prompt="smoke plume over the rooftops"))
    harness.wait_for_job(job.id)
    harness.qtbot.waitUntil(lambda: harness.progress(job.id) > 0, timeout=WAIT_MS)
    first = harness.progress(job.id)
    harness.qtbot.waitUntil(lambda: harness.progress(job.id) > first, timeout=WAIT_MS)
    harness.wait_for_state(job.id, pb.JOB_STATE_SUCCEEDED)
    assert harness.progress(job.id) == 1.0
    row = harness.model.row_of(job.id)
    assert harness.model.index(row, Column.STATE).data() == "succeeded"
    assert harness.model.index(row, Column.PROMPT).data() == "smoke plume over the rooftops"
    assert harness.model.index(row, Column.FRAMES).data().startswith("2/2")
    # Live updates came from WatchJob, and nothing ran on the GUI thread (checked by the fixture).
    assert ("WatchJob", threading.main_thread().name) not in harness.calls
    assert any(what == "WatchJob" for what, _ in harness.calls)
    assert "Connected to GenFX" in harness.widget.status_label.text()
    assert "job" in harness.widget.counts_label.text()


def test_thumbnail_is_the_tone_mapped_frame(harness: Harness, api: Client, shot: Shot) -> None:
    job = finished(api, small_request(shot, frames=2, steps=2, width=96, height=54, prompt="thumbnails"))
    harness.select(job.id)
    harness.qtbot.waitUntil(lambda: harness.model.thumbnail(job.id) is not None, timeout=WAIT_MS)
    thumb = harness.model.thumbnail(job.id)
    assert not thumb.isNull() and (thumb.width(), thumb.height()) == (96, 54)
    shown = harness.model.index(harness.model.row_of(job.id), Column.PREVIEW).data(
        Qt.ItemDataRole.DecorationRole
    )
    assert shown.cacheKey() == thumb.cacheKey()  # the table shows that very pixmap
    # The detail pane shows the first and the latest keyframe, at the frame's size (96x54 fits).
    w = harness.widget
    harness.qtbot.waitUntil(
        lambda: w.first_preview.frame == 1001 and w.latest_preview.frame == 1002, timeout=WAIT_MS
    )
    for label in (w.first_preview, w.latest_preview):
        pixmap = label.pixmap()
        assert not pixmap.isNull() and (pixmap.width(), pixmap.height()) == (96, 54)
    # The pixels are the fetched EXR through the sRGB curve.
    folder = harness.widget.controller.job_folder(job.id)
    assert folder is not None
    (info,) = [i for i in api.get_job(job.id).frame_infos if i.frame == 1002]
    exr = folder / info.file_name
    pixels, header = read_frame(exr)
    assert header["genfx/jobId"] == job.id
    image = w.latest_preview.pixmap().toImage().convertToFormat(QImage.Format.Format_RGB888)
    got = np.frombuffer(image.constBits(), np.uint8).reshape(54, image.bytesPerLine())[:, : 96 * 3]
    assert np.array_equal(got.reshape(54, 96, 3), tonemap(pixels))
    assert w.latest_caption.text() == "Latest keyframe · frame 1002"


def test_cancel_from_the_widget_cancels_on_the_server(harness: Harness, api: Client, shot: Shot) -> None:
    job = api.submit(small_request(shot, frames=4, steps=40, prompt="cancel me"))
    harness.wait_for_state(job.id, pb.JOB_STATE_RUNNING)
    harness.select(job.id)
    assert harness.widget.cancel_button.isEnabled()
    harness.click(harness.widget.cancel_button)
    assert harness.questions and job.id[:8] in harness.questions[0]
    harness.qtbot.waitUntil(lambda: api.get_job(job.id).state == pb.JOB_STATE_CANCELLED, timeout=WAIT_MS)
    harness.wait_for_state(job.id, pb.JOB_STATE_CANCELLED)
    assert not harness.widget.cancel_button.isEnabled()
    assert "cancelled" in api.get_job(job.id).message


def test_rerun_submits_the_same_request_with_a_new_seed(harness: Harness, api: Client, shot: Shot) -> None:
    old = finished(api, small_request(shot, frames=1, steps=2, seed=1234, prompt="re-run this one"))
    harness.select(old.id)
    with harness.qtbot.waitSignal(harness.widget.controller.rerun_submitted, timeout=WAIT_MS) as signal:
        harness.click(harness.widget.rerun_button)
    new_id, original_id = signal.args
    assert original_id == old.id and new_id != old.id
    new = api.get_job(new_id)
    assert new.request.prompt == old.request.prompt == "re-run this one"
    assert new.seed != old.seed and new.request.seed == new.seed
    same = pb.GenerateRequest()
    same.CopyFrom(new.request)
    same.seed = old.request.seed
    assert same == old.request  # everything but the seed is the accepted request of the old job
    harness.wait_for_job(new_id)
    assert harness.widget.selected_job_id() == new_id  # the re-run is selected
    api.wait(new_id)


def test_copy_job_id_puts_it_in_the_clipboard(harness: Harness, api: Client, shot: Shot) -> None:
    job = finished(api, small_request(shot, frames=1, steps=1, prompt="copy my id"))
    harness.select(job.id)
    QGuiApplication.clipboard().clear()
    harness.click(harness.widget.copy_button)
    assert QGuiApplication.clipboard().text() == job.id


def test_open_output_folder_fetches_the_frames_and_opens_them(
    harness: Harness, api: Client, shot: Shot, monitor_server: LocalServer
) -> None:
    job = finished(api, small_request(shot, frames=3, steps=1, prompt="open my folder", name="plate_ai"))
    harness.select(job.id)
    harness.click(harness.widget.open_button)
    harness.qtbot.waitUntil(lambda: len(harness.opened) == 1, timeout=WAIT_MS)
    folder = Path(harness.opened[0].toLocalFile())
    assert folder == harness.widget.controller.job_folder(job.id)
    names = sorted(p.name for p in folder.glob("*.exr"))
    assert names == sorted(i.file_name for i in api.get_job(job.id).frame_infos)
    assert names == ["plate_ai.1001.exr", "plate_ai.1002.exr", "plate_ai.1003.exr"]  # the server's rule
    on_server = monitor_server.data_dir / "jobs" / job.id
    for name in names:
        assert (folder / name).read_bytes() == (on_server / name).read_bytes()


def test_token_is_sent_and_reconnecting_picks_up_a_new_one(qtbot: QtBot, shot: Shot, tmp_path: Path) -> None:
    with LocalServer(tmp_path / "data", token="s3cret") as server, Client(server.address, "s3cret") as api:
        job = api.submit(small_request(shot, frames=1, steps=1, prompt="behind a token"))
        h = Harness(qtbot, server, tmp_path / "cache", token="wrong")
        qtbot.waitUntil(lambda: "UNAUTHENTICATED" in h.widget.status_label.text(), timeout=WAIT_MS)
        assert h.model.rowCount() == 0
        h.widget.token_edit.setText("s3cret")
        h.click(h.widget.connect_button)
        h.wait_for_job(job.id)
        qtbot.waitUntil(lambda: "(token)" in h.widget.status_label.text(), timeout=WAIT_MS)
        h.widget.shutdown()
        assert all(thread != threading.main_thread().name for _, thread in h.calls)


def test_screenshot_with_jobs(harness: Harness, api: Client, shot: Shot, tmp_path: Path) -> None:
    """A screenshot with a finished job selected, one running (on a fast machine it may have finished by
    then), one queued, and the jobs of the tests before. With GENFX_UPDATE_SCREENSHOT=1 it replaces
    docs/monitor.png, the README's picture; otherwise it goes to a temp folder (a test run leaves the
    checkout as it was)."""
    target = SCREENSHOT if os.environ.get("GENFX_UPDATE_SCREENSHOT") == "1" else tmp_path / "monitor.png"
    size = {"width": 320, "height": 180}
    done = finished(
        api,
        small_request(
            shot, frames=3, steps=1, seed=1001, prompt="concrete office building collapsing into dust", **size
        ),
    )
    running = api.submit(
        small_request(
            shot, frames=12, steps=6, seed=2002, prompt="dust cloud rolling down the street", **size
        )
    )
    queued = api.submit(
        small_request(shot, frames=4, steps=4, seed=3003, prompt="debris rain, slow motion", **size)
    )
    try:
        harness.wait_for_job(queued.id)
        harness.qtbot.waitUntil(lambda: harness.model.thumbnail(running.id) is not None, timeout=WAIT_MS)
        harness.select(done.id)
        w = harness.widget
        harness.qtbot.waitUntil(
            lambda: w.first_preview.frame == 1001 and w.latest_preview.frame == 1003, timeout=WAIT_MS
        )
        harness.qtbot.wait(300)  # one more repaint of the progress bars
        picture = w.grab()
        assert not picture.isNull() and picture.width() >= 1000
        target.parent.mkdir(exist_ok=True)
        assert picture.save(str(target))
    finally:
        for job in (running, queued):
            api.cancel(job.id)
