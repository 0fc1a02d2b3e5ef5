"""The shot's pass cache: each pass loaded once, no lock held while one loads, failures not kept; the
frame loop reads the next keyframe's passes while the device makes this one."""

from __future__ import annotations

import threading
from typing import Any, cast

import numpy as np
import pytest

from inference_server.engine.pass_cache import F32, PassCache
from inference_server.engine.shot_renderer import ShotRenderer
from inference_server.engine.temporal import plan_frames
from inference_server.frame_loop import LoopSettings, frames
from inference_server.frame_writer import FrameEncoder

WAIT = 10.0  # seconds; only reached when the behaviour under test is broken


def image(value: float) -> F32:
    return np.full((2, 2), value, np.float32)


def test_two_askers_of_one_pass_share_one_load() -> None:
    cache = PassCache(4)
    release, started = threading.Event(), threading.Event()
    calls: list[int] = []

    def slow() -> F32:
        calls.append(1)
        started.set()
        assert release.wait(WAIT)
        return image(1.0)

    results: list[F32] = []
    first = threading.Thread(target=lambda: results.append(cache.get("depth", slow)))
    first.start()
    assert started.wait(WAIT)
    second = threading.Thread(target=lambda: results.append(cache.get("depth", slow)))
    second.start()
    second.join(0.2)
    assert second.is_alive()  # waits for the first load instead of reading the file again
    release.set()
    first.join(WAIT)
    second.join(WAIT)
    assert len(calls) == 1 and cache.loads == 1
    assert len(results) == 2 and results[0] is results[1]


def test_a_slow_load_does_not_hold_up_another_pass() -> None:
    cache = PassCache(4)
    release, started = threading.Event(), threading.Event()

    def slow() -> F32:
        started.set()
        assert release.wait(WAIT)
        return image(1.0)

    loader = threading.Thread(target=lambda: cache.get("4k depth", slow))
    loader.start()
    assert started.wait(WAIT)
    try:
        done = threading.Event()

        def other_pass() -> None:
            cache.get("plate", lambda: image(2.0))
            done.set()

        threading.Thread(target=other_pass).start()
        assert done.wait(2.0), "a load on one thread blocked another pass"
    finally:
        release.set()
        loader.join(WAIT)


def test_a_failed_load_is_not_kept_and_every_asker_hears_it() -> None:
    cache = PassCache(4)
    attempts: list[int] = []

    def flaky() -> F32:
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("plate.1001.png: no such file")
        return image(3.0)

    with pytest.raises(OSError, match="plate.1001.png"):
        cache.get("plate", flaky)
    assert float(cache.get("plate", flaky)[0, 0]) == 3.0
    assert len(attempts) == 2


def test_least_recently_used_pass_goes_first() -> None:
    cache = PassCache(2)
    cache.get("a", lambda: image(1.0))
    cache.get("b", lambda: image(2.0))
    cache.get("a", lambda: image(9.0))  # a hit: "a" is now the most recent
    cache.get("c", lambda: image(3.0))  # evicts "b"
    assert cache.loads == 3
    assert float(cache.get("a", lambda: image(9.0))[0, 0]) == 1.0
    assert float(cache.get("b", lambda: image(4.0))[0, 0]) == 4.0
    assert cache.loads == 4


class _Recorder:
    """Stands in for ShotRenderer: records the order of the loop's calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def prefetch(self, frame: int) -> None:
        self.calls.append(("prefetch", frame))

    def keyframe(self, frame: int, seed: int, prev: Any, **_: Any) -> tuple[F32, float | None]:
        self.calls.append(("keyframe", frame))
        return np.zeros((2, 2, 3), np.float32), None


class _Hooks:
    def before_frame(self, frame: int) -> None: ...

    def after_step(self, frame: int, step: int, steps: int) -> None: ...

    def tick(self, frame: int) -> None: ...


def test_the_loop_prefetches_the_next_keyframe_before_making_this_one() -> None:
    recorder = _Recorder()
    plan = plan_frames([1001, 1002, 1003, 1004, 1005], 2)
    settings = LoopSettings(seed=1, temporal=False, colorspace="linear_rec709", device="cpu")
    made = frames(
        cast(ShotRenderer, recorder),
        plan,
        settings,
        lambda frame: np.zeros((2, 2, 3), np.float32),
        _Hooks(),
        cast(FrameEncoder, None),  # nothing is encoded: the frames' CPU part is never asked for
    )
    assert [lazy.frame for lazy in made] == [1001, 1003, 1002, 1005, 1004]
    assert recorder.calls == [
        ("prefetch", 1003),
        ("keyframe", 1001),
        ("prefetch", 1005),
        ("keyframe", 1003),
        ("keyframe", 1005),
    ]
