"""Houdini tests: the fake ``hou``/``hdefereval`` stand in for Houdini's, genfx_houdini is imported from
the package folder exactly as Houdini would (``python3.11libs`` on sys.path)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "houdini_hda"
LIBS = PACKAGE / "python3.11libs"
HDA = PACKAGE / "otls" / "genfx.generate_collapse.1.0.hda"
DEFINITION = HDA / "genfx_8_8Sop_1generate__collapse_8_81.0"
STUBS = Path(__file__).resolve().parent / "stubs"

if str(LIBS) not in sys.path:
    sys.path.insert(0, str(LIBS))

from tests.houdini.fakes import hdefereval as fake_hdefereval  # noqa: E402
from tests.houdini.fakes import hou as fake_hou  # noqa: E402

sys.modules["hou"] = fake_hou
sys.modules["hdefereval"] = fake_hdefereval


@pytest.fixture()
def hou(tmp_path: Path) -> Iterator[ModuleType]:
    """A fresh fake Houdini session with a graphical UI, its hip file in a temporary folder."""
    from genfx_houdini import node as node_mod

    fake_hou._reset(tmp_path / "shot" / "collapse.hip", fps=24.0, frame_range=(1001.0, 1048.0), ui=True)
    (tmp_path / "shot").mkdir()
    fake_hdefereval._reset()
    for node_type in fake_hou._TYPES.values():
        node_type._module = None
    node_mod._RUNS.clear()
    node_mod.SERVER_INFO.clear()
    node_mod._STATUS_WRITTEN.clear()
    yield fake_hou
    leftover = [run for run in node_mod._RUNS.values() if not run.done]
    for run in leftover:
        run.cancel()
        run.wait(60)
    assert not fake_hou._session.thread_violations, fake_hou._session.thread_violations
    assert not leftover, "a run was still going at the end of the test"


@pytest.fixture()
def hdefereval(hou: ModuleType) -> ModuleType:
    return fake_hdefereval
