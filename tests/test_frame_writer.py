"""The frame writer's pool: frames are recorded in the order they were handed over whatever order they
finish in, the pool pushes back when full, a failed write fails the job (never vanishes in a thread),
and leaving the writer settles every frame handed over (recorded once, or not at all). In process, a
real job store and real EXRs at 32x18: about 2 s."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from genfx.exr import TEMP_SUFFIX, read_frame, read_header
from genfx.proto import genfx_pb2 as pb
from inference_server.frame_writer import (
    F16,
    F32,
    FrameWriteError,
    FrameWriter,
    JobHeader,
    WriterSettings,
)
from inference_server.jobs import JobStore
from inference_server.ordered_pool import OrderedPool
from tests.synthetic import track

W, H = 32, 18
FRAMES = list(range(1001, 1007))


def _writer(tmp_path: Path, threads: int = 3, max_pending: int = 8) -> tuple[FrameWriter, JobStore, str]:
    store = JobStore(tmp_path / "jobs.sqlite")
    req = pb.GenerateRequest(prompt="p", seed=3)
    req.output.width, req.output.height, req.output.name = W, H, "shot"
    job_id = store.create(req, len(FRAMES))
    header = JobHeader(job_id, req, track(range(1001, 1010), W, H), Fraction(24), "hash", "linear_rec709")
    return FrameWriter(store, tmp_path / "out", header, WriterSettings(threads, max_pending)), store, job_id


def _image(frame: int) -> F32:
    return np.full((H, W, 3), (frame % 10) / 10, np.float32)


def _slow(frame: int, seconds: float, gate: threading.Event | None = None) -> Callable[[], tuple[F32, None]]:
    def pixels() -> tuple[F32, None]:
        if gate is not None:
            gate.wait(10)
        time.sleep(seconds)
        return _image(frame), None

    return pixels


def _recorded(store: JobStore, job_id: str) -> list[int]:
    return [e.frame_done.frame for e in store.events_since(job_id, 1) if e.WhichOneof("kind") == "frame_done"]


def _keep(rgba: F16) -> float:
    return float(rgba[0, 0, 0])


def test_frames_are_recorded_in_the_order_handed_over(tmp_path: Path) -> None:
    writer, store, job_id = _writer(tmp_path)
    with writer:
        # The first frames take longest: later ones are written first, but wait to be recorded.
        pending = [
            writer.write(f, f % 2 == 1, _slow(f, 0.3 if i < 2 else 0.0), _keep) for i, f in enumerate(FRAMES)
        ]
    assert _recorded(store, job_id) == FRAMES
    for p in pending:
        pixels, header = read_frame(writer.path(p.frame))
        assert header["genfx/frame"] == p.frame and header["genfx/keyframe"] == p.frame % 2
        assert p.kept() == pytest.approx(float(pixels[0, 0, 0]))  # kept from the pixels as written
    infos = store.frames(job_id)
    assert [infos[f].file_name for f in FRAMES] == [f"shot.{f}.exr" for f in FRAMES]
    assert not list(writer.out_dir.glob(f"*{TEMP_SUFFIX}"))


def test_the_pool_matches_writing_in_the_worker(tmp_path: Path) -> None:
    pooled, _, _ = _writer(tmp_path / "pooled")
    inline, store, job_id = _writer(tmp_path / "inline", threads=0)
    for writer in (pooled, inline):
        with writer:
            for f in FRAMES[:3]:
                writer.write(f, True, _slow(f, 0.0), _keep)
    assert _recorded(store, job_id) == FRAMES[:3]
    for f in FRAMES[:3]:
        np.testing.assert_array_equal(read_frame(pooled.path(f))[0], read_frame(inline.path(f))[0])


def test_write_blocks_while_the_pool_is_full(tmp_path: Path) -> None:
    writer, store, job_id = _writer(tmp_path, threads=1, max_pending=2)
    gate = threading.Event()
    handed: list[int] = []

    def hand_over() -> None:
        for f in FRAMES[:3]:
            writer.write(f, True, _slow(f, 0.0, gate), _keep)
            handed.append(f)

    producer = threading.Thread(target=hand_over)
    producer.start()
    producer.join(0.5)
    assert handed == FRAMES[:2]  # the third waits for room
    gate.set()
    producer.join(10)
    writer.close()
    assert handed == FRAMES[:3]
    assert _recorded(store, job_id) == FRAMES[:3]


def test_a_failed_write_fails_the_job_and_nothing_after_it_is_recorded(tmp_path: Path) -> None:
    writer, store, job_id = _writer(tmp_path, threads=2)

    def broken() -> tuple[F32, None]:
        raise OSError(28, "No space left on device")

    with pytest.raises(FrameWriteError, match=r"frame 1002: OSError: .*No space left") as info, writer:
        writer.write(1001, True, _slow(1001, 0.0), _keep)
        failed = writer.write(1002, True, broken, _keep)
        writer.write(1003, True, _slow(1003, 0.2), _keep)
        time.sleep(0.5)
        writer.write(1004, True, _slow(1004, 0.0), _keep)  # raises: the pool has failed
    assert info.value.frame == 1002
    with pytest.raises(OSError):
        failed.kept()  # whoever waits for the failed frame hears of it
    assert _recorded(store, job_id) == [1001]
    assert not writer.path(1002).exists()
    assert not list(writer.out_dir.glob(f"*{TEMP_SUFFIX}"))


def test_leaving_the_writer_settles_every_frame_handed_over(tmp_path: Path) -> None:
    """A cancel (or a drain) raised in the worker: frames already handed over are written and recorded
    once, before the worker records how the job ended."""
    writer, store, job_id = _writer(tmp_path, threads=1)

    class Cancelled(Exception):
        pass

    with pytest.raises(Cancelled), writer:
        for f in FRAMES[:3]:
            writer.write(f, True, _slow(f, 0.1), _keep)
        raise Cancelled()
    assert _recorded(store, job_id) == FRAMES[:3]
    # A resumed job finds them all on disk and records none twice.
    resumed, _, _ = _writer(tmp_path)
    resumed.header = writer.header
    assert resumed.reconcile(FRAMES) == set(FRAMES[:3])
    assert _recorded(store, job_id) == FRAMES[:3]


def test_already_encoded_frames_take_the_same_path(tmp_path: Path) -> None:
    """A remote worker encodes (FrameWriter.encode) and the head writes the bytes, in order."""
    writer, store, job_id = _writer(tmp_path)
    with writer:
        for f in FRAMES[:2]:
            rgba, data = writer.encode(f, _image(f), None, keyframe=False)
            writer.write_encoded(f, False, data)
    assert _recorded(store, job_id) == FRAMES[:2]
    assert read_header(writer.path(1001))["genfx/keyframe"] == 0
    np.testing.assert_array_equal(read_frame(writer.path(1002))[0], rgba)


def test_ordered_pool_skips_what_follows_a_failure() -> None:
    pool = OrderedPool(threads=1, max_pending=4)
    finished: list[int] = []
    skipped: list[BaseException] = []
    gate = threading.Event()

    def fail() -> int:
        gate.wait(5)
        raise ValueError("boom")

    pool.submit(lambda: 1, finished.append)
    pool.submit(fail, finished.append)
    for n in (3, 4):  # queued behind the failure: skipped, and told so
        pool.submit(lambda n=n: n, finished.append, skipped=skipped.append)  # type: ignore[misc]
    gate.set()
    with pytest.raises(ValueError, match="boom"):
        pool.close()
    assert finished == [1]
    assert len(skipped) == 2 and pool.pending == 0
