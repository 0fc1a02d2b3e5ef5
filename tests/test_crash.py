"""Reduced crash suite: one trial of each kind (the full one is scripts/crash_suite.py), but the cut
write-ahead log, which tests/test_recovery.py covers in process (70% and 0% of the log, deterministic and
faster than another two server starts)."""

from pathlib import Path

import pytest

from genfx.proto import genfx_pb2 as pb
from genfx.shot import Shot

from .crash_harness import KINDS, _check_job, run_trial
from .event_order import event_order_problems

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "wal-truncated"])
def test_kill_9_loses_nothing(kind: str, tmp_path: Path, shot: Shot) -> None:
    result = run_trial(KINDS.index(kind) + 100, tmp_path, shot, kind)
    assert result.ok, result.problems
    assert result.state == "JOB_STATE_SUCCEEDED"


def test_the_harness_fails_a_trial_whose_job_failed(tmp_path: Path) -> None:
    """A recovery bug often shows as a FAILED job with a plausible message: that is never a pass."""
    job = pb.Job(id="a" * 32, state=pb.JOB_STATE_FAILED, message="ValueError: could not resume")
    assert _check_job(tmp_path, job, pb.GenerateRequest()) == [
        "job ended JOB_STATE_FAILED: 'ValueError: could not resume'"
    ]


def test_the_harness_catches_a_replayed_or_misplaced_event() -> None:
    def state(seq: int, s: int) -> pb.JobEvent:
        return pb.JobEvent(seq=seq, state=pb.StateChange(state=pb.JobState.ValueType(s)))

    def progress(seq: int) -> pb.JobEvent:
        return pb.JobEvent(seq=seq, progress=pb.Progress(step=1))

    job = pb.Job(state=pb.JOB_STATE_SUCCEEDED, last_seq=3)
    good = [state(1, 1), state(2, 2), progress(2), progress(2), state(3, 3)]
    assert event_order_problems(good, job) == []
    replayed = [state(1, 1), state(2, 2), state(2, 2), state(3, 3)]
    assert "gap or a repeat" in event_order_problems(replayed, job)[0]
    misplaced = [state(1, 1), progress(2), state(2, 2), state(3, 3)]
    assert event_order_problems(misplaced, job) == ["progress event with seq 2 after stored event 1"]
