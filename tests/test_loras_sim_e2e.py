"""Serving trained weights end to end (a real server subprocess, the tiny model, weights built from
config as `genfx-train fit` lays them out): LoRAs per job with no leakage, the sim-pass ControlNet,
motion-aware in-betweens on a procedural collapse, provenance in every frame and the manifest, bad
requests named, and the CLI (`--lora`, `--motion`, `--controlnet-scale`, `genfx info`).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from genfx.cli import main as cli_main
from genfx.client import Client, GenFXError, build_request
from genfx.exr import read_frame
from genfx.local_server import LocalServer
from genfx.proto import genfx_pb2 as pb
from genfx.sequences import attach_passes
from genfx.shot import Shot, load_shot
from inference_server.models import model_hash
from inference_server.tiny_model import ensure_tiny_model

from .conftest import small_request
from .trained_weights import DATASET_HASH, make_run, write_card

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("adapter-server")


@pytest.fixture(scope="module")
def runs(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny model (built where the server keeps its built-in one: built once), a run with a LoRA
    and a sim ControlNet for it, and a LoRA whose card says another base model."""
    tiny = ensure_tiny_model(data_dir / "models")
    root = tmp_path_factory.mktemp("runs")
    run = make_run(root / "collapse", tiny, model_hash(tiny))
    alien = shutil.copytree(run, root / "alien")
    write_card(alien, "0" * 64)
    return {"tiny": tiny, "run": run, "alien": alien}


@pytest.fixture(scope="module")
def adapter_server(data_dir: Path, runs: dict[str, Path]) -> Iterator[LocalServer]:
    config = data_dir / "models.json"
    config.write_text(
        json.dumps(
            {
                "models": {"collapse": {"path": str(runs["tiny"]), "sim_controlnet": "runs/controlnet"}},
                "loras": {"dust": str(runs["run"] / "lora"), "alien": str(runs["alien"] / "lora")},
            }
        ).replace("runs/controlnet", str(runs["run"] / "controlnet"))
    )
    with LocalServer(data_dir, extra_args=("--models-config", str(config))) as srv:
        yield srv


@pytest.fixture()
def client(adapter_server: LocalServer) -> Iterator[Client]:
    with Client(adapter_server.address, timeout=120) as c:
        yield c


def run_job(client: Client, server: LocalServer, req: pb.GenerateRequest) -> tuple[pb.Job, dict[str, Any]]:
    events = list(client.generate(req))
    job = client.get_job(events[0].job_id)
    assert job.state == pb.JOB_STATE_SUCCEEDED, job.message
    return job, json.loads((server.data_dir / "jobs" / job.id / "manifest.json").read_text())


def frames_of(server: LocalServer, job: pb.Job) -> list[tuple[np.ndarray, dict[str, Any]]]:
    return [read_frame(server.data_dir / "jobs" / job.id / f.file_name) for f in job.frame_infos]


def collapse_request(collapse_shot: Path, frames: int, **kw: Any) -> pb.GenerateRequest:
    shot = load_shot(collapse_shot / "camera.json")
    return build_request(
        prompt="a concrete building collapsing, dust",
        camera=shot.camera,
        frame_start=shot.frame_start,
        frame_end=shot.frame_start + frames - 1,
        fps=Fraction(24),
        seed=5,
        steps=2,
        model=kw.pop("model", "collapse"),
        **kw,
    )


def with_passes(
    client: Client, req: pb.GenerateRequest, collapse_shot: Path, *kinds: str
) -> pb.GenerateRequest:
    attach_passes(req, client, {k: str(collapse_shot / f"{k}.####.exr") for k in kinds})
    return req


def test_info_lists_the_loras_and_the_sim_controlnet(client: Client, runs: dict[str, Path]) -> None:
    info = client.info()
    base = model_hash(runs["tiny"])
    loras = {lora.name: lora for lora in info.loras}
    assert list(loras) == ["dust", "alien"]
    assert loras["dust"].hash == model_hash(runs["run"] / "lora")
    assert (loras["dust"].base_model_hash, loras["dust"].dataset_hash) == (base, DATASET_HASH)
    assert list(loras["dust"].models) == ["collapse", "tiny"] and list(loras["alien"].models) == []
    models = {m.name: m for m in info.models}
    assert "sim" in models["collapse"].capabilities and "sim" not in models["tiny"].capabilities
    cn = models["collapse"].sim_controlnet
    assert cn.hash == model_hash(runs["run"] / "controlnet") and cn.base_model_hash == base
    assert not models["tiny"].HasField("sim_controlnet")
    assert info.defaults.controlnet_conditioning_scale == 1.0
    assert (info.limits.max_lora_weight, info.limits.max_loras_per_job) == (2.0, 8)


def _lora(name: str, weight: float = 1.0, times: int = 1) -> Callable[[pb.GenerateRequest], None]:
    def add(r: pb.GenerateRequest) -> None:
        for _ in range(times):
            r.loras.add(name=name, weight=weight)

    return add


BAD: list[tuple[str, Callable[[pb.GenerateRequest], None], str, str]] = [
    ("unknown LoRA", _lora("smoke"), "INVALID_ARGUMENT", "loras[0].name: unknown LoRA 'smoke'"),
    ("another base model", _lora("alien"), "FAILED_PRECONDITION", "loras[0].name: LoRA 'alien'"),
    ("weight out of range", _lora("dust", 2.5), "INVALID_ARGUMENT", "loras[0].weight: 2.5"),
    ("weight not finite", _lora("dust", float("nan")), "INVALID_ARGUMENT", "loras[0].weight"),
    (
        "LoRA twice",
        _lora("dust", times=2),
        "INVALID_ARGUMENT",
        "loras[1].name",
    ),
    (
        "ControlNet scale",
        lambda r: setattr(r.conditioning, "controlnet_conditioning_scale", 2.5),
        "INVALID_ARGUMENT",
        "conditioning.controlnet_conditioning_scale",
    ),
]


@pytest.mark.parametrize(("case", "mutate", "code", "named"), BAD, ids=[c[0] for c in BAD])
def test_bad_lora_and_sim_requests_are_named(
    client: Client, shot: Shot, case: str, mutate: Callable[[pb.GenerateRequest], None], code: str, named: str
) -> None:
    req = small_request(shot, frames=1)
    mutate(req)
    with pytest.raises(GenFXError) as info:
        client.submit(req)
    assert (info.value.code, named in info.value.message) == (code, True), info.value.message


def test_bad_pass_combinations_are_named(client: Client, collapse_shot: Path) -> None:
    # A LoRA cannot go on the tiny model's depth2img variant (another UNet).
    req = with_passes(
        client,
        collapse_request(collapse_shot, 1, model="tiny", loras=[("dust", 1.0)]),
        collapse_shot,
        "depth",
    )
    with pytest.raises(GenFXError) as info:
        client.submit(req)
    assert info.value.code == "FAILED_PRECONDITION" and "mode 'depth'" in info.value.message
    # Motion vectors without depth.
    req = with_passes(client, collapse_request(collapse_shot, 1), collapse_shot, "motion")
    with pytest.raises(GenFXError) as info:
        client.submit(req)
    assert info.value.code == "INVALID_ARGUMENT" and "motion vectors need depth" in info.value.message
    # A "motion" file that holds no motion vectors (a depth pass uploaded by mistake).
    req = with_passes(client, collapse_request(collapse_shot, 1), collapse_shot, "depth")
    req.conditioning.frames[0].motion_asset_id = req.conditioning.frames[0].depth_asset_id
    with pytest.raises(GenFXError) as info:
        client.submit(req)
    assert info.value.code == "INVALID_ARGUMENT"
    assert "frame 1001, motion pass): no motion-vector channels" in info.value.message


def test_a_lora_job_leaves_nothing_behind(
    client: Client, adapter_server: LocalServer, server: LocalServer, shot: Shot
) -> None:
    """LoRA job, then the same job without: its frames equal a server that never saw a LoRA, bit for bit."""
    lora_job, manifest = run_job(client, adapter_server, small_request(shot, frames=1, loras=[("dust", 0.8)]))
    plain_job, _ = run_job(client, adapter_server, small_request(shot, frames=1))
    with Client(server.address, timeout=120) as fresh:  # the session's server: no LoRA ever loaded
        fresh_job, _ = run_job(fresh, server, small_request(shot, frames=1))
    plain, fresh_frames = frames_of(adapter_server, plain_job), frames_of(server, fresh_job)
    with_lora = frames_of(adapter_server, lora_job)
    for (a, _), (b, _), (c, header) in zip(plain, fresh_frames, with_lora, strict=True):
        np.testing.assert_array_equal(a, b)
        assert np.abs(c.astype(np.float32) - a.astype(np.float32)).mean() > 1e-3, "the LoRA changed nothing"
        recorded = json.loads(header["genfx/loras"])
        assert [(r["name"], r["weight"], r["dataset_sha256"]) for r in recorded] == [
            ("dust", 0.8, DATASET_HASH)
        ]
        assert header["genfx/controlnet"] == ""
    lora_info = {lo.name: lo for lo in client.info().loras}["dust"]
    assert (
        manifest["loras"][0]["sha256"] == lora_info.hash and manifest["request"]["loras"][0]["weight"] == 0.8
    )


def test_sim_shot_with_lora_is_recorded_and_motion_aware_inbetweens_win(
    client: Client, adapter_server: LocalServer, collapse_shot: Path
) -> None:
    """7 frames of falling debris, keyframes every 3: depth + motion + mask drive the sim ControlNet and the
    reprojection; the manifest compares camera-only and motion-aware in-betweens of the same keyframes."""
    req = collapse_request(collapse_shot, 7, loras=[("dust", 0.8)], keyframe_step=3, temporal="reproject")
    job, manifest = run_job(
        client, adapter_server, with_passes(client, req, collapse_shot, "depth", "motion", "mask")
    )
    cn = next(m for m in client.info().models if m.name == "collapse").sim_controlnet
    assert manifest["mode"] == "sim" and manifest["passes"] == ["depth", "mask", "motion"]
    assert manifest["controlnet"] == {
        "sha256": cn.hash,
        "scale": 1.0,
        "base_model_sha256": cn.base_model_hash,
        "dataset_sha256": DATASET_HASH,
    }
    frames = frames_of(adapter_server, job)
    assert [h["genfx/keyframe"] for _, h in frames] == [1, 0, 0, 1, 0, 0, 1]
    for _, header in frames:
        assert json.loads(header["genfx/controlnet"]) == manifest["controlnet"]
        assert json.loads(header["genfx/loras"]) == manifest["loras"]
    consistency = manifest["temporal_consistency"]
    values = consistency["methods"]["values"]
    assert consistency["method"] == "motion_aware" and consistency["flow"].endswith(
        "motion vectors (moving pixels)"
    )
    assert values["independent"] is None
    assert values["motion_aware"] < values["camera_only"], values


def test_the_controlnet_changes_the_frames_and_the_cli_drives_it(
    client: Client,
    adapter_server: LocalServer,
    collapse_shot: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    req = with_passes(
        client, collapse_request(collapse_shot, 1, controlnet_scale=0.0), collapse_shot, "depth", "motion"
    )
    off_job, _ = run_job(client, adapter_server, req)
    argv = ["generate", "--server", adapter_server.address, "--shot", str(collapse_shot / "camera.json")]
    argv += ["--prompt", "a concrete building collapsing, dust", "--model", "collapse", "--frames", "1001"]
    argv += ["--seed", "5", "--steps", "2", "--lora", "dust=0.5", "--controlnet-scale", "1.5"]
    argv += [
        "--depth",
        str(collapse_shot / "depth.####.exr"),
        "--motion",
        str(collapse_shot / "motion.$F4.exr"),
    ]
    argv += ["--out", str(tmp_path), "--quiet"]
    assert cli_main(argv) == 0
    (steered, header), (off, _) = (
        read_frame(next(tmp_path.glob("*.exr"))),
        frames_of(adapter_server, off_job)[0],
    )
    assert json.loads(header["genfx/controlnet"])["scale"] == 1.5
    assert [(r["name"], r["weight"]) for r in json.loads(header["genfx/loras"])] == [("dust", 0.5)]
    assert np.abs(steered.astype(np.float32) - off.astype(np.float32)).mean() > 1e-3
    capsys.readouterr()
    assert cli_main(["info", "--server", adapter_server.address]) == 0
    out = capsys.readouterr().out
    assert "lora  dust" in out and "models: collapse, tiny" in out and "sim ControlNet" in out
    assert "controlnet scale 1" in out


def test_lora_jobs_leave_only_our_lines_in_the_log(adapter_server: LocalServer) -> None:
    """After the LoRA and sim jobs above (tests run in file order): diffusers' notice on every LoRA
    load, and anything else the libraries print, stays out of the server log (third_party.py)."""
    from .test_start import OUR_LINE

    lines = adapter_server.log_path.read_text().splitlines()
    assert lines and [line for line in lines if not OUR_LINE.match(line)] == []
