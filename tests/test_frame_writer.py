"""The frame writer's pool: frames are recorded in the order they were handed over whatever order they
finish in, the pool pushes back when full, a failed frame fails the job (never vanishes in a thread),
and closing the writer settles every frame handed over (recorded once, or not at all). In process, a
real job store and real EXRs at 32x18: about 3 s."""

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
from inference_server.frame_output import encode_rgba
from inference_server.frame_writer import (
    EncodedFrame,
    FrameEncoder,
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


def _make(
    writer: FrameWriter, frame: int, seconds: float = 0.0, gate: threading.Event | None = None
) -> Callable[[], EncodedFrame]:
    """What the frame loop defers to the writer: colour and the EXR encode (here after a wait)."""

    def make() -> EncodedFrame:
        if gate is not None:
            gate.wait(10)
        time.sleep(seconds)
        rgba = encode_rgba(np.full((H, W, 3), (frame % 10) / 10, np.float32), None, "linear_rec709")
        return FrameEncoder(writer.header).encode(frame, rgba, frame % 2 == 1)

    return make


def _recorded(store: JobStore, job_id: str) -> list[int]:
    return [e.frame_done.frame for e in store.events_since(job_id, 1) if e.WhichOneof("kind") == "frame_done"]


def test_frames_are_recorded_in_the_order_handed_over(tmp_path: Path) -> None:
    writer, store, job_id = _writer(tmp_path)
    after: list[int] = []
    # The first frames take longest: later ones are written first, but wait to be recorded.
    for i, f in enumerate(FRAMES):
        writer.write_later(f, _make(writer, f, 0.3 if i < 2 else 0.0), lambda f=f: after.append(f))  # type: ignore[misc]
    writer.close()
    assert _recorded(store, job_id) == FRAMES == after
    infos = store.frames(job_id)
    for f in FRAMES:
        pixels, header = read_frame(writer.path(f))
        assert header["genfx/frame"] == f and header["genfx/keyframe"] == f % 2
        assert infos[f].file_name == f"shot.{f}.exr" and infos[f].keyframe == (f % 2 == 1)
    assert not list(writer.out_dir.glob(f"*{TEMP_SUFFIX}"))


def test_the_pool_writes_what_the_worker_wrote(tmp_path: Path) -> None:
    pooled, _, _ = _writer(tmp_path / "pooled")
    inline, store, job_id = _writer(tmp_path / "inline", threads=0)
    for writer in (pooled, inline):
        for f in FRAMES[:3]:
            writer.write_later(f, _make(writer, f))
        writer.close()
    assert _recorded(store, job_id) == FRAMES[:3]
    for f in FRAMES[:3]:
        np.testing.assert_array_equal(read_frame(pooled.path(f))[0], read_frame(inline.path(f))[0])


def test_write_later_blocks_while_the_pool_is_full(tmp_path: Path) -> None:
    writer, store, job_id = _writer(tmp_path, threads=1, max_pending=2)
    gate = threading.Event()
    handed: list[int] = []

    def hand_over() -> None:
        for f in FRAMES[:3]:
            writer.write_later(f, _make(writer, f, gate=gate))
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


def test_a_failed_frame_fails_the_job_and_nothing_after_it_is_recorded(tmp_path: Path) -> None:
    writer, store, job_id = _writer(tmp_path, threads=2)

    handed = threading.Event()

    def broken() -> EncodedFrame:
        handed.wait(10)  # fails once 1003 is handed over too (else handing it over would raise)
        raise ValueError("colour conversion failed")

    writer.write_later(1001, _make(writer, 1001))
    writer.write_later(1002, broken)
    writer.write_later(1003, _make(writer, 1003, 0.2))
    handed.set()
    time.sleep(0.5)
    with pytest.raises(FrameWriteError, match=r"frame 1002: ValueError: colour conversion failed") as info:
        writer.write_later(1004, _make(writer, 1004))  # the pool has failed: the worker hears of it
    assert info.value.frame == 1002
    with pytest.raises(FrameWriteError):
        writer.close()
    assert _recorded(store, job_id) == [1001]
    assert not writer.path(1002).exists() and not writer.path(1004).exists()
    assert not list(writer.out_dir.glob(f"*{TEMP_SUFFIX}"))


def test_a_storage_failure_reaches_the_worker_as_it_is(tmp_path: Path) -> None:
    """A full disk is not the frame's fault: the worker must see the OSError itself to requeue the job
    and wait for storage (worker.py, tests/test_disk_full.py), not a failed frame."""
    writer, store, job_id = _writer(tmp_path, threads=2)

    def full() -> EncodedFrame:
        raise OSError(28, "No space left on device")

    writer.write_later(1001, full)
    with pytest.raises(OSError, match="No space left") as info:
        writer.close()
    assert not isinstance(info.value, FrameWriteError) and info.value.errno == 28
    assert _recorded(store, job_id) == []


def test_closing_settles_every_frame_handed_over(tmp_path: Path) -> None:
    """A cancel (or a drain) stops the loop: frames already handed over are written and recorded once,
    before the worker records how the job ended; a resumed job finds them and records none again."""
    writer, store, job_id = _writer(tmp_path, threads=1)
    for f in FRAMES[:3]:
        writer.write_later(f, _make(writer, f, 0.1))
    writer.close()  # what ShotJob.run does on its way out, whatever stopped it
    assert _recorded(store, job_id) == FRAMES[:3]
    resumed = FrameWriter(store, writer.out_dir, writer.header)
    assert resumed.reconcile(FRAMES) == set(FRAMES[:3])
    assert _recorded(store, job_id) == FRAMES[:3]


def test_the_ray_head_writes_bytes_in_its_own_thread(tmp_path: Path) -> None:
    writer, store, job_id = _writer(tmp_path)
    writer.write(_make(writer, 1002)())  # written and recorded before it returns
    assert _recorded(store, job_id) == [1002]
    assert read_header(writer.path(1002))["genfx/keyframe"] == 0


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
