"""Reduced crash suite: one trial of each kind (the full one is scripts/crash_suite.py)."""

from pathlib import Path

import pytest

from genfx.shot import Shot

from .crash_harness import KINDS, run_trial

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("kind", KINDS)
def test_kill_9_loses_nothing(kind: str, tmp_path: Path, shot: Shot) -> None:
    result = run_trial(KINDS.index(kind) + 100, tmp_path, shot, kind)
    assert result.ok, result.problems
    assert result.state in ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED")
