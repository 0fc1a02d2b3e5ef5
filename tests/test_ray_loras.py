"""LoRAs on Ray render actors: applied for the job's chunks only, recorded in every frame's header."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from genfx.exr import read_frame
from genfx.proto import genfx_pb2 as pb
from genfx.shot import Shot
from tests.conftest import small_request

pytest.importorskip("ray")

from inference_server.adapters import LoraSpec  # noqa: E402
from inference_server.models import model_hash  # noqa: E402
from inference_server.tiny_model import ensure_tiny_model  # noqa: E402

from .test_ray import actors_ready, add_node, ray_server  # noqa: E402
from .trained_weights import make_run  # noqa: E402

pytestmark = pytest.mark.timeout(300)


def test_an_actor_applies_a_jobs_lora_and_then_takes_it_off(
    ray_cluster: Any, shot: Shot, tmp_path: Path
) -> None:
    tiny = ensure_tiny_model(tmp_path / "node-cache" / "models")  # the actors' built-in tiny: built once
    run = make_run(tmp_path / "run", tiny, model_hash(tiny), controlnet=False)
    node = add_node(ray_cluster)
    try:
        with ray_server(ray_cluster, tmp_path / "data", loras={"dust": LoraSpec(run / "lora")}) as (
            server,
            client,
        ):
            actors_ready(server, 1)
            jobs = [
                client.wait(client.submit(small_request(shot, frames=1, loras=lora)).id)
                for lora in ((), [("dust", 1.0)], ())
            ]
    finally:
        ray_cluster.remove_node(node)
    assert all(j.state == pb.JOB_STATE_SUCCEEDED for j in jobs), [j.message for j in jobs]
    (before, _), (with_lora, header), (after, _) = (
        read_frame(tmp_path / "data" / "jobs" / j.id / j.frame_infos[0].file_name) for j in jobs
    )
    np.testing.assert_array_equal(after, before)  # nothing left on the actor's cached pipeline
    assert np.abs(with_lora.astype(np.float32) - before.astype(np.float32)).mean() > 1e-3
    assert [(r["name"], r["sha256"]) for r in json.loads(header["genfx/loras"])] == [
        ("dust", model_hash(run / "lora"))
    ]
