"""Shared fixtures: a real GenFX server subprocess (tiny model) on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import pytest

from genfx.client import Client, build_request
from genfx.local_server import LocalServer
from genfx.proto import genfx_pb2 as pb
from genfx.shot import Shot, load_shot

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_SHOT = ROOT / "examples" / "shots" / "building_orbit.json"


@pytest.fixture(scope="session")
def shot() -> Shot:
    return load_shot(SAMPLE_SHOT)


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """One Ray cluster for the whole session (Ray starts only when a test asks for it).

    A head node with 2 CPUs and ``ray.init`` connected to it; tests may add and remove nodes
    (``cluster.add_node(num_cpus=...)``, ``cluster.remove_node(node)``). Its temp dir is private, so a
    stale /tmp/ray/ray_current_cluster cannot make init join a dead cluster. Run pytest through
    scripts/in_netns.sh (as `make test` does): Ray binds to the machine's address otherwise.
    """
    import ray
    from ray.cluster_utils import Cluster

    temp = tmp_path_factory.mktemp("ray")
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 2, "include_dashboard": False, "temp_dir": str(temp)},
    )
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()  # type: ignore[no-untyped-call]  # ray.cluster_utils is untyped


@pytest.fixture(scope="session")
def collapse_shot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A procedural collapse (genfx-train synth) with falling debris: beauty, exact depth, exact motion
    vectors and mask for 7 frames at 96x64, and its camera.json. Seed 1's first shot is mid-collapse."""
    from training.synth.generate import SynthSettings, synthesize

    root = tmp_path_factory.mktemp("collapse") / "source"
    return synthesize(root, SynthSettings(shots=1, frames=7, width=96, height=64, seed=1))[0]


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with LocalServer(tmp_path_factory.mktemp("server-data")) as srv:
        yield srv


@pytest.fixture()
def client(server: LocalServer) -> Iterator[Client]:
    with Client(server.address, timeout=60) as c:
        yield c


def small_request(
    shot: Shot,
    *,
    frames: int = 2,
    steps: int = 2,
    width: int = 64,
    height: int = 64,
    seed: int = 7,
    prompt: str = "a building collapses, dust",
    **kw: object,
) -> pb.GenerateRequest:
    start = shot.frame_start
    return build_request(
        prompt=prompt,
        camera=shot.camera,
        frame_start=start,
        frame_end=start + frames - 1,
        fps=Fraction(24),
        seed=seed,
        steps=steps,
        model="tiny",
        width=width,
        height=height,
        **kw,  # type: ignore[arg-type]
    )
