"""The server on a Ray cluster (`--ray`): a real local multi-node Ray cluster on this machine (the
session's ``ray_cluster``, nodes added and removed per test), the tiny model, 64 px frames.

Render actors only go to nodes with the ``genfx_test`` resource, so the head node (which runs this
process, the driver) has none and a test decides how many actors exist by adding nodes.
Frames are compared as pixels (EXR bytes differ: the header carries the job id and a date).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from genfx.client import Client
from genfx.exr import read_frame
from genfx.proto import genfx_pb2 as pb
from genfx.shot import Shot
from tests.conftest import small_request

pytest.importorskip("ray")

from inference_server.jobs import JobStore  # noqa: E402
from inference_server.ray_executor import WAITING, RayExecutor, RayOptions  # noqa: E402
from inference_server.server import GenFXServer, ServerConfig  # noqa: E402

NODE_RESOURCE = "genfx_test"
pytestmark = pytest.mark.timeout(300)


def wait_until(condition: Callable[[], Any], timeout: float = 60.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@contextmanager
def ray_server(cluster: Any, data: Path, **config: Any) -> Iterator[tuple[GenFXServer, Client]]:
    """``config``: more ServerConfig fields (models, loras, ...)."""
    options = RayOptions(
        address=cluster.address,
        cpu_actors_per_node=1,
        node_resource=NODE_RESOURCE,
        cache_dir=data.parent / "node-cache",
    )
    server = GenFXServer(ServerConfig(port=0, data_dir=data, ray=options, **config))
    server.start()
    try:
        with Client(f"127.0.0.1:{server.port}", timeout=60) as client:
            yield server, client
    finally:
        server.stop(grace=1)


def executor(server: GenFXServer) -> RayExecutor:
    assert isinstance(server.executor, RayExecutor)
    return server.executor


def add_node(cluster: Any) -> Any:
    node = cluster.add_node(num_cpus=1, resources={NODE_RESOURCE: 1})
    cluster.wait_for_nodes()
    return node


def actors_ready(server: GenFXServer, n: int) -> None:
    wait_until(lambda: len(server.executor.devices()) == n, 90, f"{n} render actor(s)")


def pixels(data: Path, job: pb.Job) -> dict[int, np.ndarray]:
    return {i.frame: read_frame(data / "jobs" / job.id / i.file_name)[0] for i in job.frame_infos}


def frames_done(client: Client, job_id: str) -> int:
    return client.get_job(job_id).frames_done


def test_node_killed_mid_job_then_every_node_gone_frames_once_and_identical(
    ray_cluster: Any, shot: Shot, tmp_path: Path
) -> None:
    req = small_request(shot, frames=8, steps=6, seed=1234)
    data = tmp_path / "data"
    nodes = [add_node(ray_cluster)]
    try:
        _kill_and_starve(ray_cluster, nodes, shot, req, data)
    finally:
        for node in nodes:
            ray_cluster.remove_node(node)


def _kill_and_starve(
    ray_cluster: Any, nodes: list[Any], shot: Shot, req: pb.GenerateRequest, data: Path
) -> None:
    """Removes nodes it kills from ``nodes``; the caller removes the rest."""
    node_a = nodes[0]
    with ray_server(ray_cluster, data) as (server, client):
        actors_ready(server, 1)
        # One node, one actor: the reference.
        reference = client.wait(client.submit(req).id)
        assert reference.state == pb.JOB_STATE_SUCCEEDED, reference.message
        expected = pixels(data, reference)

        # Two nodes: the job is split across both actors; node B dies mid-job.
        node_b = add_node(ray_cluster)
        nodes.append(node_b)
        actors_ready(server, 2)
        job = client.submit(req)
        wait_until(lambda: frames_done(client, job.id) >= 2, 60, "two frames")
        assert len({d.running_job_id for d in server.executor.devices()} - {""}) == 1
        assert sum(d.running_job_id == job.id for d in server.executor.devices()) == 2
        ray_cluster.remove_node(node_b)
        nodes.remove(node_b)
        final = client.wait(job.id)
        assert final.state == pb.JOB_STATE_SUCCEEDED, final.message
        assert executor(server).frames_rescheduled > 0  # node B died with frames unfinished
        got = pixels(data, final)
        assert got.keys() == expected.keys()
        for frame, image in expected.items():
            assert np.array_equal(got[frame], image), frame
        done_events = [
            e.frame_done.frame for e in client.watch(job.id) if e.WhichOneof("kind") == "frame_done"
        ]
        assert sorted(done_events) == list(expected)  # every frame exactly once

        # The last node goes: the running job goes back to the queue with a message, health says so, a
        # new job waits too; a new node picks both up where they were.
        waiting = client.submit(req)
        wait_until(lambda: frames_done(client, waiting.id) >= 1, 60, "a frame")
        ray_cluster.remove_node(node_a)
        nodes.remove(node_a)
        wait_until(lambda: client.get_job(waiting.id).state == pb.JOB_STATE_QUEUED, 60, "the job requeued")
        assert not server.executor.can_run()
        late = client.submit(small_request(shot, frames=1, steps=2))
        wait_until(lambda: client.get_job(late.id).message == WAITING, 10, "the waiting message")
        assert client.get_job(waiting.id).message == WAITING
        nodes.append(add_node(ray_cluster))
        resumed = client.wait(waiting.id)
        assert resumed.state == pb.JOB_STATE_SUCCEEDED, resumed.message
        assert client.wait(late.id).state == pb.JOB_STATE_SUCCEEDED
        got = pixels(data, resumed)
        for frame, image in expected.items():
            assert np.array_equal(got[frame], image), frame


def test_cancel_priorities_and_restart_through_ray(ray_cluster: Any, shot: Shot, tmp_path: Path) -> None:
    data = tmp_path / "data"
    nodes = [add_node(ray_cluster), add_node(ray_cluster)]
    try:
        with ray_server(ray_cluster, data) as (server, client):
            actors_ready(server, 2)
            # Cancel: progress crosses the boundary, and the actor stops between two steps.
            job = client.submit(small_request(shot, frames=2, steps=60))
            cancelled_at = None
            after: list[pb.JobEvent] = []
            for event in client.watch(job.id):
                if cancelled_at is not None:
                    after.append(event)
                elif event.WhichOneof("kind") == "progress" and event.progress.step >= 3:
                    cancelled_at = event.progress.step
                    client.cancel(job.id)
            final = client.get_job(job.id)
            assert final.state == pb.JOB_STATE_CANCELLED, final.message
            assert final.frames_done == 0
            steps_after = [e.progress.step for e in after if e.WhichOneof("kind") == "progress"]
            # The head interrupts the actor at once; it stops after the step under way (progress events
            # are coalesced to one per 50 ms, so a few steps' worth may still arrive).
            assert max(steps_after, default=0) < 60, steps_after

            # Priorities across actors: both actors are busy; the high-priority job queued last starts
            # first and is split across both actors as they free up.
            busy = client.submit(small_request(shot, frames=2, steps=20, seed=5))
            wait_until(lambda: sum(d.running_job_id == busy.id for d in server.executor.devices()) == 2, 30)
            low = client.submit(small_request(shot, frames=4, steps=4, seed=6, priority=0))
            high = client.submit(small_request(shot, frames=4, steps=4, seed=7, priority=5))
            low_done, high_done = client.wait(low.id), client.wait(high.id)
            assert high_done.started_at < low_done.started_at
            manifest = (data / "jobs" / high.id / "manifest.json").read_text()
            assert manifest.count("ray 127.0.0.1 node") >= 1
            assert len(set(json_device(manifest).split(", "))) == 2  # rendered on both actors

            # A keyframe chain (temporal job) stays on one actor. Shut down mid-chain, it goes back to the
            # queue; after a restart it resumes with the keyframes it needs read back from disk and makes
            # the pixels of a run straight through.
            chain = small_request(shot, frames=7, steps=6, seed=8, keyframe_step=3)
            chain.temporal = pb.TEMPORAL_MODE_REPROJECT
            straight = client.wait(client.submit(chain).id)
            assert straight.state == pb.JOB_STATE_SUCCEEDED, straight.message
            straight_manifest = (data / "jobs" / straight.id / "manifest.json").read_text()
            assert len(json_device(straight_manifest).split(", ")) == 1  # one actor made the whole chain
            restart = client.submit(chain)
            wait_until(lambda: frames_done(client, restart.id) >= 2, 60, "two frames")
        store = JobStore(data / "jobs.sqlite")
        stopped = store.get(restart.id)
        store.close()
        assert stopped.state == pb.JOB_STATE_QUEUED and 2 <= stopped.frames_done < 7, stopped
        with ray_server(ray_cluster, data) as (server, client):
            resumed = client.wait(restart.id)
            assert resumed.state == pb.JOB_STATE_SUCCEEDED, resumed.message
            expected = pixels(data, straight)
            got = pixels(data, resumed)
            assert got.keys() == expected.keys() and len(got) == 7
            for frame, image in expected.items():
                assert np.array_equal(got[frame], image), frame
    finally:
        for node in nodes:
            ray_cluster.remove_node(node)


def json_device(manifest_text: str) -> str:
    import json

    doc = json.loads(manifest_text)
    found = _find(doc, "device")
    assert isinstance(found, str), doc
    return found


def _find(doc: Any, key: str) -> Any:
    if isinstance(doc, dict):
        if key in doc:
            return doc[key]
        for value in doc.values():
            hit = _find(value, key)
            if hit is not None:
                return hit
    return None


def test_ray_flag_without_ray_installed_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from inference_server import cli

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    code = cli.main(["serve", "--ray", "--port", "0", "--data-dir", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert "--ray" in err and "pip install 'genfx[ray]'" in err, err
