"""The monitor's logic without a server: job book rules, previews' tone mapping, the table model, CLI."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtWidgets import QApplication, QTableWidget
from pytestqt.qtbot import QtBot

from genfx.client import Client
from genfx.colour import linear_to_srgb
from genfx.monitor.backend import new_seed, rerun_request, server_folder_name
from genfx.monitor.cli import add_monitor_parser
from genfx.monitor.controller import MonitorController
from genfx.monitor.jobs import (
    JobBook,
    JobRow,
    apply_event,
    counts_label,
    describe,
    frame_info,
    merge_snapshot,
    preview_frames,
)
from genfx.monitor.model import JOB_ID_ROLE, PROGRESS_ROLE, Column, JobTableModel
from genfx.monitor.preview import qimage_from_rgb8, tonemap
from genfx.monitor.widget import MonitorWidget
from genfx.proto import genfx_pb2 as pb


def make_job(
    job_id: str = "a" * 32,
    *,
    created: float = 100.0,
    last_seq: int = 0,
    frames: Sequence[tuple[int, bool]] = (),
    **kw: object,
) -> pb.Job:
    job = pb.Job(
        id=job_id,
        state=pb.JOB_STATE_QUEUED,
        created_at=created,
        last_seq=last_seq,
        frames_total=3,
        seed=7,
        request=pb.GenerateRequest(
            prompt="dust",
            seed=7,
            steps=8,
            model="tiny",
            shot=pb.Shot(frame_start=1001, frame_end=1003),
            output=pb.Output(width=64, height=64, name="shot"),
        ),
    )
    job.frame_infos.extend(
        pb.FrameInfo(frame=f, file_name=server_file_name(f), keyframe=key) for f, key in frames
    )
    for key, value in kw.items():
        setattr(job, key, value)
    return job


def state_event(seq: int, state: int, message: str = "", job_id: str = "a" * 32) -> pb.JobEvent:
    return pb.JobEvent(
        seq=seq,
        job_id=job_id,
        time=1000.0 + seq,
        state=pb.StateChange(state=pb.JobState.ValueType(state), message=message),
    )


def progress_event(seq: int, frame: int, step: int, fraction: float, job_id: str = "a" * 32) -> pb.JobEvent:
    p = pb.Progress(
        frame=frame, step=step, steps=8, frames_done=frame - 1001, frames_total=3, fraction=fraction
    )
    return pb.JobEvent(seq=seq, job_id=job_id, progress=p)


def server_file_name(frame: int) -> str:
    """A name no client rule would make: the monitor must use the server's."""
    return f"named-by-server_{frame}.exr"


def frame_event(seq: int, frame: int, keyframe: bool = True, job_id: str = "a" * 32) -> pb.JobEvent:
    d = pb.FrameDone(
        frame=frame,
        file_name=server_file_name(frame),
        sha256=f"{frame:064x}",
        size_bytes=frame * 10,
        frames_done=frame - 1000,
        frames_total=3,
        keyframe=keyframe,
    )
    return pb.JobEvent(seq=seq, job_id=job_id, frame_done=d)


# ---- jobs.py --------------------------------------------------------------------------------------


def test_events_update_a_row_in_order_and_stale_ones_are_ignored() -> None:
    row = JobRow(make_job())
    assert apply_event(row, state_event(1, pb.JOB_STATE_RUNNING))
    assert row.job.state == pb.JOB_STATE_RUNNING and row.job.started_at == 1001.0
    assert apply_event(row, progress_event(2, 1001, 4, 0.125))
    assert row.job.progress == 0.125 and row.activity == "frame 1001 · step 4/8"
    assert apply_event(row, frame_event(3, 1001))
    assert [i.frame for i in row.job.frame_infos] == [1001] and row.job.frames_done == 1
    info = frame_info(row.job, 1001)
    assert info is not None and info.file_name == server_file_name(1001)
    assert (info.sha256, info.size_bytes, info.keyframe) == (f"{1001:064x}", 10010, True)
    assert row.job.progress == pytest.approx(1 / 3)
    # A replayed or late event changes nothing.
    assert not apply_event(row, progress_event(2, 1001, 4, 0.125))
    assert row.job.progress == pytest.approx(1 / 3)
    assert row.job.last_seq == 3
    assert apply_event(row, state_event(4, pb.JOB_STATE_SUCCEEDED))
    assert row.job.progress == 1.0 and row.activity == "" and row.terminal


def test_a_snapshot_older_than_the_events_seen_is_ignored() -> None:
    row = JobRow(make_job())
    for event in (state_event(1, pb.JOB_STATE_RUNNING), progress_event(2, 1001, 8, 0.3)):
        apply_event(row, event)
    stale = make_job(last_seq=1, state=pb.JOB_STATE_RUNNING, progress=0.0)
    assert not merge_snapshot(row, stale)
    assert row.job.progress == 0.3
    fresh = make_job(last_seq=9, state=pb.JOB_STATE_CANCELLED, progress=0.4, message="cancelled by a client")
    assert merge_snapshot(row, fresh)
    assert row.job.state == pb.JOB_STATE_CANCELLED and row.job.message == "cancelled by a client"
    assert row.activity == ""
    assert not merge_snapshot(row, fresh)  # the same snapshot again: nothing changed


def test_preview_frames_are_the_first_and_latest_keyframes() -> None:
    row = JobRow(make_job())
    assert preview_frames(row) == (None, None)
    apply_event(row, frame_event(1, 1001))
    apply_event(row, frame_event(2, 1002, keyframe=False))  # an in-between (reprojected)
    assert preview_frames(row) == (1001, 1001)
    apply_event(row, frame_event(4, 1003))
    assert preview_frames(row) == (1001, 1003)
    # Frames arriving out of order are kept in frame order.
    apply_event(row, frame_event(5, 999))
    assert [i.frame for i in row.job.frame_infos] == [999, 1001, 1002, 1003]
    # From a snapshot alone, the server's FrameInfo.keyframe decides.
    job = make_job(frames=[(1001, True), (1002, False), (1003, True), (1004, False), (1005, True)])
    assert JobRow(job).keyframes_done() == [1001, 1003, 1005]
    assert preview_frames(JobRow(job)) == (1001, 1005)
    # Only in-betweens written so far: they are previewed rather than nothing.
    assert preview_frames(JobRow(make_job(frames=[(1002, False), (1003, False)]))) == (1002, 1003)


class RecordingBackend:
    """Stands in for MonitorBackend: records the previews the controller asks for."""

    def __init__(self) -> None:
        self.previews: list[tuple[str, int, str]] = []

    def fetch_preview(self, job_id: str, frame: int, file_name: str) -> None:
        self.previews.append((job_id, frame, file_name))


def test_previews_are_fetched_under_the_servers_file_names(qtbot: QtBot, tmp_path: Path) -> None:
    controller = MonitorController(cache_dir=tmp_path)
    backend = RecordingBackend()
    controller.backend = backend  # type: ignore[assignment]
    controller.model.upsert(make_job(frames=[(1001, True), (1002, False), (1003, True)]))
    controller.select("a" * 32)
    assert backend.previews == [("a" * 32, 1003, server_file_name(1003))]  # one download per job at a time
    controller.backend = None


def test_job_book_keeps_newest_first() -> None:
    book = JobBook()
    assert book.insert(make_job("b" * 32, created=200.0)) == 0
    assert book.insert(make_job("a" * 32, created=100.0)) == 1
    assert book.insert(make_job("c" * 32, created=300.0)) == 0
    assert [r.id[0] for r in book.rows()] == ["c", "b", "a"]
    assert book.index_of("a" * 32) == 2 and "b" * 32 in book
    with pytest.raises(KeyError):
        book.insert(make_job("a" * 32))


def test_rerun_request_takes_the_chosen_loras_or_keeps_the_jobs() -> None:
    job = make_job()
    job.request.loras.add(name="dust", weight=0.8)
    kept: list[tuple[str, object]] = [("dust", pytest.approx(0.8))]  # object: approx is no float (mypy)
    assert [(r.name, r.weight) for r in rerun_request(job, 1).loras] == kept
    chosen = rerun_request(job, 1, [("grit", 0.5), ("dust", -1.0)])
    assert [(r.name, r.weight) for r in chosen.loras] == [("grit", 0.5), ("dust", -1.0)]
    assert list(rerun_request(job, 1, []).loras) == []  # every LoRA unticked: none
    assert [r.name for r in job.request.loras] == ["dust"]  # the job itself is untouched


def name_text(table: QTableWidget, row: int) -> str:
    """The text of a row's name cell (LoRA name and note)."""
    item = table.item(row, 0)
    assert item is not None, f"no name cell in row {row}"
    return item.text()


def test_the_lora_table_lists_the_servers_loras_and_ticks_the_jobs(qtbot: QtBot) -> None:
    from genfx.monitor.loras import LoraTable

    table = LoraTable()
    qtbot.addWidget(table)
    table.set_server(
        pb.ServerInfo(
            loras=[
                pb.LoraInfo(name="dust", hash="ab" * 32, models=["collapse"]),
                pb.LoraInfo(name="grit", hash="cd" * 32),
            ],
            limits=pb.Limits(max_lora_weight=1.5),
        )
    )
    assert [table.name_at(r) for r in range(table.rowCount())] == ["dust", "grit"]
    assert name_text(table, 0) == f"dust  (for collapse · sha256 {'ab' * 6})"
    assert name_text(table, 1).startswith("grit  (for none of this server's models")
    assert (table.weight_box(0).minimum(), table.weight_box(0).maximum()) == (-1.5, 1.5)
    assert table.chosen() == []
    request = pb.GenerateRequest(
        loras=[pb.LoraRef(name="grit", weight=0), pb.LoraRef(name="old", weight=0.5)]
    )
    table.show_job(request)
    # 0 on the wire is 1.0; a LoRA this server does not list stays, marked.
    assert table.chosen() == [("grit", 1.0), ("old", 0.5)]
    assert name_text(table, 2) == "old  (not listed by this server)"
    table.set_chosen("dust", 0.25)
    table.set_chosen("old", 0.5, on=False)
    assert table.chosen() == [("dust", 0.25), ("grit", 1.0)]
    table.show_job(pb.GenerateRequest())
    assert table.chosen() == []


def test_rerun_request_changes_only_the_seed() -> None:
    job = make_job()
    request = rerun_request(job, 12345)
    assert request.seed == 12345
    request.seed = job.request.seed
    assert request == job.request
    assert all(new_seed(7) != 7 for _ in range(200))
    assert server_folder_name("gpu-box:50051") == "gpu-box_50051"
    assert server_folder_name("[::1]:50051") == "1_50051"


# ---- preview.py -----------------------------------------------------------------------------------


def test_tonemap_is_the_srgb_curve_clipped() -> None:
    linear = np.array([[[0.0, 0.18, 1.0, 1.0], [-1.0, np.nan, 8.0, 1.0]]], dtype=np.float16)
    out = tonemap(linear)
    assert out.dtype == np.uint8 and out.shape == (1, 2, 3)
    expected = np.round(linear_to_srgb(np.array([0.0, 0.18, 1.0])) * 255).astype(np.uint8)
    assert out[0, 0].tolist() == expected.tolist()
    assert out[0, 0, 1] == 118  # 18% grey is sRGB 118
    assert out[0, 1].tolist() == [0, 0, 255]  # negative -> black, NaN -> black, over 1 -> white


def test_qimage_owns_its_pixels(qtbot: QtBot) -> None:
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[1, 2] = (10, 20, 30)
    image = qimage_from_rgb8(rgb)
    del rgb
    assert (image.width(), image.height()) == (3, 2)
    colour = image.pixelColor(2, 1)
    assert (colour.red(), colour.green(), colour.blue()) == (10, 20, 30)


# ---- model.py -------------------------------------------------------------------------------------


def test_table_model_rows_and_progress(qtbot: QtBot) -> None:
    model = JobTableModel()
    model.upsert(make_job("a" * 32, created=100.0))
    with qtbot.waitSignal(model.rowsInserted):
        model.upsert(make_job("b" * 32, created=200.0))
    assert model.rowCount() == 2 and model.columnCount() == len(Column)
    assert model.index(0, Column.JOB).data(JOB_ID_ROLE) == "b" * 32
    assert model.headerData(Column.PROGRESS, Qt.Orientation.Horizontal) == "Progress"
    row_a = model.row_of("a" * 32)
    assert row_a == 1
    with qtbot.waitSignal(model.dataChanged):
        model.apply_event(progress_event(1, 1001, 2, 0.25))
    index = model.index(row_a, Column.PROGRESS)
    assert index.data(PROGRESS_ROLE) == 0.25 and index.data() == "25%"
    assert model.index(row_a, Column.STATE).data() == "running"
    assert model.apply_event(progress_event(1, 1001, 2, 0.25, job_id="f" * 32)) is None
    assert model.data(QModelIndex()) is None
    model.clear()
    assert model.rowCount() == 0


def test_set_preview_makes_a_thumbnail(qtbot: QtBot) -> None:
    model = JobTableModel()
    model.upsert(make_job())
    image = qimage_from_rgb8(np.full((180, 320, 3), 200, np.uint8))
    pixmap = model.set_preview("a" * 32, 1001, image)
    assert (pixmap.width(), pixmap.height()) == (320, 180)
    thumb = model.index(0, Column.PREVIEW).data(Qt.ItemDataRole.DecorationRole)
    assert not thumb.isNull() and (thumb.width(), thumb.height()) == (96, 54)
    assert model.previewed_frames("a" * 32) == {1001}


def test_tls_ca_file_goes_to_the_client(qtbot: QtBot, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(b"-----BEGIN CERTIFICATE-----\nnot checked here\n-----END CERTIFICATE-----\n")
    made: list[tuple[str, str, bytes | None]] = []

    def factory(address: str, token: str, root: bytes | None) -> Client:
        made.append((address, token, root))
        return Client(address, token)  # this test only checks what the monitor hands over

    controller = MonitorController(client_factory=factory, cache_dir=tmp_path)
    messages: list[tuple[str, bool]] = []
    controller.status.connect(lambda text, error: messages.append((text, error)))
    # An unreadable CA file is a status message, not an exception, and connects nothing.
    assert not controller.connect_to("127.0.0.1:1", "", tmp_path / "missing.pem")
    assert made == [] and messages[-1][1] is True and "TLS CA" in messages[-1][0]
    assert controller.connect_to("127.0.0.1:1", "tok", ca)
    assert made == [("127.0.0.1:1", "tok", ca.read_bytes())]
    assert any("(TLS)" in text for text, _ in messages)
    controller.shutdown()


# ---- cli.py ---------------------------------------------------------------------------------------


def test_monitor_cli_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENFX_TLS_CA", "/etc/genfx/ca.pem")
    parser = argparse.ArgumentParser(prog="genfx")
    add_monitor_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["monitor", "--server", "gpu-box:50051", "--token", "t"])
    assert (args.server, args.token, args.tls_ca) == ("gpu-box:50051", "t", "/etc/genfx/ca.pem")
    assert args.func.__name__ == "cmd_monitor"
    args = parser.parse_args(["monitor", "--tls-ca", "ca.pem", "--cache-dir", "/tmp/c"])
    assert (args.tls_ca, args.cache_dir) == ("ca.pem", "/tmp/c")


def test_counts_label() -> None:
    rows = [JobRow(make_job("a" * 32)), JobRow(make_job("b" * 32, state=pb.JOB_STATE_RUNNING))]
    assert counts_label(rows) == "2 jobs · 1 running · 1 queued"
    assert counts_label(rows[1:]) == "1 job · 1 running"
    assert counts_label([]) == "0 jobs"


def test_only_the_first_and_latest_previews_are_kept(qtbot: QtBot) -> None:
    model = JobTableModel()
    model.upsert(make_job())
    image = qimage_from_rgb8(np.zeros((9, 16, 3), np.uint8))
    for frame in (1001, 1002, 1003, 1004):
        model.set_preview("a" * 32, frame, image)
    assert model.previewed_frames("a" * 32) == {1001, 1004}


def test_genfx_monitor_opens_the_window(
    qtbot: QtBot, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    shown: list[MonitorWidget] = []

    def fake_exec(app: QApplication) -> int:  # the event loop would block: look at the window instead
        shown.extend(w for w in app.topLevelWidgets() if isinstance(w, MonitorWidget) and w.isVisible())
        return 0

    monkeypatch.setattr(QApplication, "exec", fake_exec)
    parser = argparse.ArgumentParser(prog="genfx")
    add_monitor_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["monitor", "--server", "127.0.0.1:1", "--cache-dir", str(tmp_path)])
    assert args.func(args) == 0
    (widget,) = shown
    qtbot.addWidget(widget)
    assert widget.server_edit.text() == "127.0.0.1:1"
    assert widget.controller.cache_dir == tmp_path
    widget.close()


def test_describe_names_what_a_lead_asks_about() -> None:
    row = JobRow(make_job(state=pb.JOB_STATE_FAILED, message="CUDA out of memory", output_dir="/srv/j"))
    row.job.request.steps = 1
    text = describe(row)
    for part in ("failed", "Prompt: dust", "seed 7", "1 step ·", "Message: CUDA out of memory", "/srv/j"):
        assert part in text, part
    assert "LoRAs" not in text and "ControlNet" not in text
    row.job.request.loras.add(name="dust", weight=0.8)
    row.job.request.loras.add(name="grit", weight=0)
    row.job.request.conditioning.controlnet_conditioning_scale = 0.5
    text = describe(row)
    assert "LoRAs: dust \u00d70.8, grit \u00d71" in text and "ControlNet scale 0.5 (sim mode)" in text
