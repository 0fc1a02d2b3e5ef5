"""Shot-aware generation end to end: passes uploaded, modes, camera-aware temporal coherence, colour, CLI.

A synthetic shot with exact depth (tests/synthetic.py) drives a real server subprocess (tiny model).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from genfx.cli import main as cli_main
from genfx.client import Client, GenFXError, build_request
from genfx.colour import ACESCG_CHROMATICITIES
from genfx.exr import read_frame
from genfx.local_server import LocalServer
from genfx.proto import genfx_pb2 as pb

from .synthetic import render, track, write_depth_exr, write_png

pytestmark = pytest.mark.slow

START, SIZE = 1001, 64


@pytest.fixture(scope="module")
def seq(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """plate.####.png, mask.####.png, depth.####.exr for frames 1001-1004 of a trucking camera."""
    root = tmp_path_factory.mktemp("seq")
    for sample in track(range(START, START + 4), SIZE, SIZE).samples:
        colour, depth = render(sample, SIZE, SIZE)
        mask = np.zeros((SIZE, SIZE), np.float32)
        mask[16:48, 16:48] = 1.0
        write_png(root / f"plate.{sample.frame:04d}.png", colour)
        write_png(root / f"mask.{sample.frame:04d}.png", mask)
        write_depth_exr(root / f"depth.{sample.frame:04d}.exr", depth)
    return root


def request(frames: int, **kw: Any) -> pb.GenerateRequest:
    return build_request(
        prompt="a building collapses, dust",
        camera=track(range(START, START + frames), SIZE, SIZE),
        frame_start=START,
        frame_end=START + frames - 1,
        fps=Fraction(24),
        seed=11,
        steps=2,
        model=kw.pop("model", "tiny"),
        width=SIZE,
        height=SIZE,
        **kw,
    )


def attach(client: Client, req: pb.GenerateRequest, seq: Path, *kinds: str) -> None:
    from genfx.sequences import attach_passes

    ext = {"plate": "png", "mask": "png", "depth": "exr"}
    attach_passes(req, client, {k: str(seq / f"{k}.####.{ext[k]}") for k in kinds})


def run(client: Client, server: LocalServer, req: pb.GenerateRequest) -> tuple[pb.Job, dict[str, Any]]:
    events = list(client.generate(req))
    job = client.get_job(events[0].job_id)
    assert job.state == pb.JOB_STATE_SUCCEEDED, job.message
    manifest = json.loads((server.data_dir / "jobs" / job.id / "manifest.json").read_text())
    return job, manifest


def frames_of(server: LocalServer, job: pb.Job) -> list[tuple[np.ndarray, dict[str, Any]]]:
    out = server.data_dir / "jobs" / job.id
    return [read_frame(out / info.file_name) for info in job.frame_infos]


def test_uploads_dedupe_and_inpaint_alpha_is_the_mask_premultiplied(
    client: Client, server: LocalServer, seq: Path
) -> None:
    first = client.upload(seq / "mask.1001.png")
    again = client.upload(seq / "mask.1001.png")
    assert again.id == first.id and again.deduplicated and again.format == "png"
    req = request(2)
    attach(client, req, seq, "plate", "mask")
    job, manifest = run(client, server, req)
    assert manifest["mode"] == "inpaint" and manifest["passes"] == ["mask", "plate"]
    for pixels, _ in frames_of(server, job):
        alpha = pixels[..., 3].astype(np.float32)
        assert alpha[20:44, 20:44].min() == 1.0 and alpha[:12].max() == 0.0 and alpha[:, :12].max() == 0.0
        assert np.abs(pixels[:12, :, :3]).max() == 0.0  # premultiplied: no colour where alpha is 0
        assert pixels[20:44, 20:44, :3].astype(np.float32).mean() > 0.0


def test_camera_aware_beats_independent_frames_on_warping_error(
    client: Client, server: LocalServer, seq: Path
) -> None:
    independent = request(4)
    attach(client, independent, seq, "depth")
    aware = request(4, keyframe_step=3)
    aware.CopyFrom(independent)
    aware.shot.keyframe_step = 3
    aware.temporal = pb.TEMPORAL_MODE_REPROJECT

    job_i, man_i = run(client, server, independent)
    job_a, events_a = None, list(client.generate(aware))
    job_a = client.get_job(events_a[0].job_id)
    assert job_a.state == pb.JOB_STATE_SUCCEEDED, job_a.message
    man_a = json.loads((server.data_dir / "jobs" / job_a.id / "manifest.json").read_text())

    assert man_a["mode"] == man_i["mode"] == "depth"
    assert man_a["conditioning"]["depth_range"] == pytest.approx([4.0, 8.0], rel=1e-3)
    # Keyframes 1001 and 1004 by diffusion, 1002-1003 reprojected; headers and events agree.
    done = [e.frame_done for e in events_a if e.WhichOneof("kind") == "frame_done"]
    assert [(d.frame, d.keyframe) for d in done] == [(1001, True), (1004, True), (1002, False), (1003, False)]
    assert [h["genfx/keyframe"] for _, h in frames_of(server, job_a)] == [1, 0, 0, 1]
    assert [f["keyframe"] for f in man_a["frames"]] == [True, False, False, True]
    assert man_a["frames"][1]["coverage"] > 0.9

    err_a = man_a["temporal_consistency"]["value"]
    err_i = man_i["temporal_consistency"]["value"]
    assert man_a["temporal_consistency"]["metric"] == "warping_error"
    assert len(man_a["temporal_consistency"]["per_pair"]) == 3
    assert err_a < 0.5 * err_i, (err_a, err_i)


def test_temporal_without_depth_states_its_plane_and_acescg_output(
    client: Client, server: LocalServer
) -> None:
    req = request(3, keyframe_step=2)
    req.output.colorspace = pb.COLOR_SPACE_ACESCG
    req.conditioning.plane_distance = 8.0
    job, manifest = run(client, server, req)
    assert manifest["temporal"]["depth"] == "plane at 8 scene units"
    assert any("plane facing each camera at 8 scene units" in n for n in manifest["notes"])
    assert manifest["colour"]["output"] == "acescg"
    for _, header in frames_of(server, job):
        assert header["chromaticities"] == pytest.approx(ACESCG_CHROMATICITIES, abs=1e-6)
        assert header["genfx/colorspace"] == "acescg"


def test_cli_uploads_sequence_patterns(server: LocalServer, seq: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.json"
    samples = track(range(START, START + 2), SIZE, SIZE).samples
    houdini = [  # row-vector world transforms, as hou.Matrix4.asTuple() gives them
        {"frame": s.frame, "world_transform": s.matrix().T.ravel().tolist(), "focal": 35.0, "aperture": 36.0}
        for s in samples
    ]
    shot.write_text(
        json.dumps(
            {
                "name": "synthetic",
                "frame_start": START,
                "frame_end": START + 1,
                "fps": 24,
                "resolution": [SIZE, SIZE],
                "camera": {"samples": houdini},
            }
        )
    )
    out = tmp_path / "out"
    argv = [
        "generate",
        "--server",
        server.address,
        "--shot",
        str(shot),
        "--prompt",
        "dust",
        "--model",
        "tiny",
    ]
    argv += ["--steps", "2", "--seed", "3", "--plate", str(seq / "plate.####.png"), "--strength", "0.8"]
    argv += ["--depth", str(seq / "depth.%04d.exr"), "--keyframe-step", "2", "--temporal", "reproject"]
    argv += ["--out", str(out), "--quiet"]
    assert cli_main(argv) == 0
    assert sorted(p.name for p in out.glob("*.exr")) == ["synthetic.1001.exr", "synthetic.1002.exr"]
    missing = [*argv[:-3], "--mask", str(seq / "nomask.####.png"), "--quiet"]
    assert cli_main(missing) == 2  # names the frame and the pass before uploading anything


@pytest.fixture(scope="module")
def plain_server(server: LocalServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """A server whose only model is the tiny one without its variants (no depth, no upscaler)."""
    tiny = next((server.data_dir / "models").glob("tiny-v*"))
    plain = tmp_path_factory.mktemp("plain") / "plain"
    shutil.copytree(tiny, plain, ignore=shutil.ignore_patterns("genfx.json", "variants", ".genfx_hash*"))
    with LocalServer(tmp_path_factory.mktemp("plain-data"), extra_args=("--model", f"plain={plain}")) as srv:
        yield srv


def test_mode_the_model_cannot_run_is_failed_precondition(plain_server: LocalServer, seq: Path) -> None:
    with Client(plain_server.address, timeout=60) as client:
        caps = {m.name: list(m.capabilities) for m in client.info().models}
        assert "depth" not in caps["plain"] and "depth" in caps["tiny"]
        req = request(2, model="plain")
        attach(client, req, seq, "depth")
        with pytest.raises(GenFXError) as info:
            client.submit(req)
    assert info.value.code == "FAILED_PRECONDITION"
    assert "'plain'" in info.value.message and "'depth'" in info.value.message


def test_missing_asset_is_invalid_argument_naming_frame_and_pass(client: Client, seq: Path) -> None:
    req = request(2)
    attach(client, req, seq, "plate")
    req.conditioning.frames[1].plate_asset_id = "e" * 64
    with pytest.raises(GenFXError) as info:
        client.submit(req)
    assert info.value.code == "INVALID_ARGUMENT"
    assert "frame 1002, plate pass" in info.value.message
