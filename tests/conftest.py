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
