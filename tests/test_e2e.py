"""End to end: a real server subprocess with the tiny model, driven through the SDK."""

from __future__ import annotations

import hashlib
import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from genfx.camera import world_to_camera_exr, world_to_ndc_exr
from genfx.client import Client, GenFXError
from genfx.exr import read_frame
from genfx.local_server import LocalServer
from genfx.proto import genfx_pb2 as pb
from genfx.shot import Shot

from .conftest import small_request
from .event_order import event_order_problems

pytestmark = pytest.mark.slow


def job_dir(server: LocalServer, job_id: str) -> Path:
    return server.data_dir / "jobs" / job_id


def test_generate_frames_on_disk_equal_fetched_and_carry_the_camera(
    client: Client, server: LocalServer, shot: Shot, tmp_path: Path
) -> None:
    req = small_request(shot, frames=3, width=96, height=54)
    events = list(client.generate(req))
    job_id = events[0].job_id
    job = client.get_job(job_id)
    assert job.state == pb.JOB_STATE_SUCCEEDED, job.message
    assert [i.frame for i in job.frame_infos] == [1001, 1002, 1003]
    assert job.file_pattern == "genfx.####.exr"
    assert list(job.frames) == [1001, 1002, 1003]  # deprecated, kept working for one version
    # Stored events in seq order, live progress (possibly coalesced) in step order, a frame event per frame.
    assert event_order_problems(events, job) == []
    progress = [(e.progress.frame, e.progress.step) for e in events if e.WhichOneof("kind") == "progress"]
    assert progress and progress == sorted(set(progress))
    assert set(progress) <= {(f, s) for f in (1001, 1002, 1003) for s in (1, 2)}
    done = [e.frame_done for e in events if e.WhichOneof("kind") == "frame_done"]
    assert [d.frame for d in done] == [1001, 1002, 1003]

    fetched = client.fetch_job(job_id, tmp_path)
    manifest = json.loads((job_dir(server, job_id) / "manifest.json").read_text())
    assert manifest["model"]["hash"] == job.model_hash
    for path, event, info, entry in zip(fetched, done, job.frame_infos, manifest["frames"], strict=True):
        assert path.name == event.file_name == info.file_name  # saved under the server's names
        on_disk = job_dir(server, job_id) / path.name
        assert path.read_bytes() == on_disk.read_bytes()
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert digest == event.sha256 == info.sha256 == entry["sha256"]

        pixels, header = read_frame(path)
        assert pixels.shape == (54, 96, 4)
        assert np.all(pixels[..., 3] == 1.0)
        sample = shot.camera.sample_at(event.frame)
        np.testing.assert_array_equal(header["worldToCamera"], world_to_camera_exr(sample))
        np.testing.assert_array_equal(header["worldToNDC"], world_to_ndc_exr(sample, 96, 54))
        assert header["framesPerSecond"] == Fraction(24)
        assert header["genfx/jobId"] == job_id
        assert header["genfx/frame"] == event.frame
        assert header["genfx/prompt"] == req.prompt
        assert header["genfx/model"] == "tiny"
        assert header["genfx/modelHash"] == job.model_hash
        assert header["genfx/aiGenerated"] == 1


def test_server_frame_equals_direct_diffusers_call_bit_for_bit(
    client: Client, server: LocalServer, shot: Shot, tmp_path: Path
) -> None:
    import diffusers
    import torch

    from genfx.colour import model_to_scene
    from inference_server.engine.common import frame_seed

    req = small_request(shot, frames=1, steps=3, width=64, height=64, seed=424242, negative_prompt="blurry")
    job = client.wait(client.submit(req).id)
    assert job.state == pb.JOB_STATE_SUCCEEDED, job.message
    (path,) = client.fetch_job(job.id, tmp_path)
    served, _ = read_frame(path)

    model_dir = next((server.data_dir / "models").glob("tiny-v*"))
    pipeline_cls: Any = diffusers.StableDiffusionPipeline  # untyped for mypy --strict
    pipe = pipeline_cls.from_pretrained(model_dir, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    image = pipe(
        req.prompt,
        negative_prompt="blurry",
        num_inference_steps=3,
        guidance_scale=7.5,
        height=64,
        width=64,
        generator=torch.Generator("cpu").manual_seed(frame_seed(424242, shot.frame_start)),
        output_type="np",
    ).images[0]
    # The server converts through OpenColorIO (sRGB texture -> linear Rec.709), the same function here.
    expected = model_to_scene(image.astype(np.float32), "linear_rec709").astype(np.float16)
    assert np.array_equal(served[..., :3], expected)


def test_cancel_mid_job_stops_within_one_step(client: Client, shot: Shot) -> None:
    job = client.submit(small_request(shot, frames=4, steps=40))
    seen_after_cancel: list[pb.JobEvent] = []
    cancelled_at = None
    for event in client.watch(job.id):
        if cancelled_at is not None:
            seen_after_cancel.append(event)
        elif event.WhichOneof("kind") == "progress" and event.progress.step == 3:
            cancelled_at = (event.progress.frame, event.progress.step)
            client.cancel(job.id)
    assert cancelled_at is not None
    final = client.get_job(job.id)
    assert final.state == pb.JOB_STATE_CANCELLED
    assert "cancelled" in final.message
    steps_after = [e for e in seen_after_cancel if e.WhichOneof("kind") == "progress"]
    # The worker checks between steps: at most the step already under way finishes.
    assert len(steps_after) <= 1, [(e.progress.frame, e.progress.step) for e in steps_after]
    assert not [e for e in seen_after_cancel if e.WhichOneof("kind") == "frame_done"]
    assert final.frames_done == 0


def test_watch_replays_from_a_sequence_number(client: Client, shot: Shot) -> None:
    job = client.wait(client.submit(small_request(shot, frames=2)).id)
    everything = list(client.watch(job.id))
    assert [e.seq for e in everything] == list(range(1, job.last_seq + 1))
    tail = list(client.watch(job.id, from_seq=4))
    assert [e.SerializeToString() for e in tail] == [e.SerializeToString() for e in everything[3:]]
    assert tail[-1].state.state == pb.JOB_STATE_SUCCEEDED


def test_fetch_resumes_a_partial_download(client: Client, shot: Shot, tmp_path: Path) -> None:
    job = client.wait(client.submit(small_request(shot, frames=1, width=256, height=144)).id)
    whole = client.fetch_frame(job.id, job.frame_infos[0].frame, tmp_path / "whole.exr").read_bytes()
    dest = tmp_path / "resumed.exr"
    (tmp_path / "resumed.exr.part").write_bytes(whole[: len(whole) // 3])
    assert client.fetch_frame(job.id, job.frame_infos[0].frame, dest).read_bytes() == whole
    # A corrupt partial download is caught by the sha256 check and removed.
    (tmp_path / "bad.exr.part").write_bytes(b"x" * 100)
    with pytest.raises(GenFXError, match="sha256"):
        client.fetch_frame(job.id, job.frame_infos[0].frame, tmp_path / "bad.exr")
    assert not (tmp_path / "bad.exr.part").exists()
    assert not (tmp_path / "bad.exr").exists()


def test_upload_dedupes_by_content(client: Client, tmp_path: Path) -> None:
    png = tmp_path / "plate.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 5000)
    first = client.upload(png)
    second = client.upload(png)
    assert first.id == hashlib.sha256(png.read_bytes()).hexdigest() == second.id
    assert (first.deduplicated, second.deduplicated) == (False, True)
    assert first.format == "png"


def test_list_and_info(client: Client, shot: Shot) -> None:
    job = client.submit(small_request(shot, frames=1, prompt="listed job"))
    client.wait(job.id)
    listed = client.list_jobs([pb.JOB_STATE_SUCCEEDED])
    assert job.id in [j.id for j in listed]
    assert all(j.state == pb.JOB_STATE_SUCCEEDED for j in listed)
    info = client.info()
    assert info.models[0].name == "tiny"
    assert info.models[0].native_width == 64
    assert [d.name for d in info.devices] == ["cpu"]
    assert info.limits.max_width == 4096


def test_kill_9_mid_job_then_restart_finishes_every_frame(shot: Shot, tmp_path: Path) -> None:
    req = small_request(shot, frames=4, steps=8, seed=99)
    data = tmp_path / "data"
    srv = LocalServer(data).start()
    try:
        with Client(srv.address) as c:
            job = c.submit(req)
            for event in c.watch(job.id):
                if event.WhichOneof("kind") == "frame_done":
                    break
        srv.kill()  # SIGKILL mid-job
    finally:
        srv.kill()
    frames_before = sorted(p.name for p in (data / "jobs" / job.id).glob("*.exr"))
    assert 1 <= len(frames_before) < 4

    with LocalServer(data) as srv2, Client(srv2.address) as c:
        final = c.wait(job.id)
        assert final.state == pb.JOB_STATE_SUCCEEDED, final.message
        assert [i.frame for i in final.frame_infos] == list(range(1001, 1005))
        # The same request run without interruption makes the same pixels.
        reference = c.wait(c.submit(req).id)
        out = data / "jobs" / job.id
        for info in final.frame_infos:
            frame, name = info.frame, info.file_name
            resumed, header = read_frame(out / name)
            clean, _ = read_frame(data / "jobs" / reference.id / name)
            assert np.array_equal(resumed, clean), frame
            assert header["genfx/frame"] == frame
        manifest = json.loads((out / "manifest.json").read_text())
        assert [f["frame"] for f in manifest["frames"]] == list(range(1001, 1005))
        for entry in manifest["frames"]:
            assert hashlib.sha256((out / entry["file"]).read_bytes()).hexdigest() == entry["sha256"]
        assert not [p for p in out.iterdir() if "tmp" in p.name]
        events = list(c.watch(job.id))
        assert sum(e.WhichOneof("kind") == "frame_done" for e in events) == 4
