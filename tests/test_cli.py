"""The `genfx` CLI against a real server: generate, info, jobs, cancel, fetch; and the demo."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from genfx.cli import main, parse_frames
from genfx.client import Client
from genfx.exr import read_header
from genfx.local_server import LocalServer
from genfx.shot import Shot

from .conftest import SAMPLE_SHOT, small_request

pytestmark = pytest.mark.slow


def test_parse_frames() -> None:
    assert parse_frames("1001-1048") == (1001, 1048)
    assert parse_frames("12") == (12, 12)
    assert parse_frames("-5--2") == (-5, -2)
    with pytest.raises(Exception, match="before"):
        parse_frames("10-2")


def test_generate_info_jobs_fetch(
    server: LocalServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GENFX_SERVER", server.address)
    out = tmp_path / "frames"
    rc = main(
        [
            "generate",
            "--shot",
            str(SAMPLE_SHOT),
            "--prompt",
            "dust cloud",
            "--frames",
            "1010-1012",
            "--steps",
            "2",
            "--width",
            "80",
            "--height",
            "45",
            "--seed",
            "5",
            "--out",
            str(out),
            "--quiet",
            "--server",
            server.address,
        ]
    )
    assert rc == 0
    # Before it starts: what the size costs, from the server (EstimateJob).
    captured = capsys.readouterr()
    err = captured.err
    assert "size: generated at " in err and "to 80x45" in err
    assert "work: 3 of 3 frames by diffusion" in err and "estimate: " in err
    files = sorted(p.name for p in out.glob("*.exr"))
    assert files == ["building_orbit.1010.exr", "building_orbit.1011.exr", "building_orbit.1012.exr"]
    assert read_header(out / files[0])["genfx/seed"] == "5"
    printed = captured.out
    job_id = printed.split()[1]
    with Client(server.address) as c:
        job = c.get_job(job_id)
    assert files == [i.file_name for i in job.frame_infos]  # the server's names, not the CLI's
    assert job.request.steps == 2 and job.request.output.name == "building_orbit"

    assert main(["info"]) == 0
    printed = capsys.readouterr().out
    assert "tiny" in printed
    # The job above measured its keyframes: info shows the per-step times estimates come from.
    assert "step time tiny" in printed and "diffusion" in printed and "s/step" in printed
    # The defaults the CLI leaves to the server, as the server reports them.
    with Client(server.address) as c:
        d = c.info().defaults
    line = f"defaults: {d.steps} steps, guidance {d.guidance:g}, strength {d.strength:g}, "
    line += f"keyframe step {d.keyframe_step}, output name {d.output_name!r}"
    assert line in printed and d.steps > 0 and d.output_name
    assert main(["jobs", "--state", "succeeded"]) == 0
    assert job_id in capsys.readouterr().out
    again = tmp_path / "again"
    assert main(["fetch", job_id, "--out", str(again)]) == 0
    assert sorted(p.name for p in again.glob("*.exr")) == files


def test_cancel_command(server: LocalServer, shot: Shot, capsys: pytest.CaptureFixture[str]) -> None:
    with Client(server.address) as c:
        job = c.submit(small_request(shot, frames=20, steps=30, priority=-100))
        assert main(["cancel", job.id, "--server", server.address]) == 0
        assert job.id in capsys.readouterr().out
        assert c.wait(job.id).state in (4, 5)  # cancelled (or failed would be a bug caught below)
        assert c.get_job(job.id).state == 5


def test_errors_are_one_line_not_a_traceback(server: LocalServer, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(
        [
            "generate",
            "--shot",
            str(SAMPLE_SHOT),
            "--prompt",
            "x",
            "--model",
            "nope",
            "--quiet",
            "--server",
            server.address,
        ]
    )
    assert rc == 1
    err = capsys.readouterr().err
    assert "INVALID_ARGUMENT" in err and "model" in err and "Traceback" not in err


def test_demo_renders_the_collapse_with_the_demo_model_and_labels_the_sheet(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    data = tmp_path / "server"
    args = [
        "demo",
        "--out",
        str(out),
        "--data-dir",
        str(data),
        "--width",
        "128",  # the demo passes' 16:9 (the server refuses another aspect ratio)
        "--height",
        "72",
        "--steps",
        "2",
    ]
    assert main([*args, "--quiet"]) == 0
    frames = sorted((out / "frames").glob("*.exr"))
    assert len(frames) == 48
    for path in (frames[0], frames[-1]):
        header = read_header(path)
        for key in (
            "worldToCamera",
            "worldToNDC",
            "framesPerSecond",
            "genfx/jobId",
            "genfx/model",
            "genfx/cameraToWorld",
            "genfx/aiGenerated",
        ):
            assert key in header, key
        assert header["genfx/model"] == "demo"
    (manifest_file,) = (data / "jobs").glob("*/manifest.json")
    manifest = json.loads(manifest_file.read_text())
    keyframes = [f["frame"] for f in manifest["frames"] if f["keyframe"]]
    assert keyframes[:3] == [1001, 1005, 1009] and manifest["mode"] == "sim"
    png = (out / "contact_sheet.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    # 8 columns of 192 px thumbnails (128x72 -> 192x108), 6 rows, each with its label strip under it.
    assert (width, height) == (8 * 192, 6 * (108 + 7 * 2 + 4))
