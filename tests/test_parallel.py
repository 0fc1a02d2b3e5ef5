"""genfx.parallel: bands cover every row once; parts run and their errors reach the caller; work split
into bands gives the pixels the whole-image call gives."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from genfx import colour, parallel


@pytest.mark.parametrize("length", [1, 63, 64, 65, 1000, 8_847_360])
def test_bands_cover_every_row_once_in_order(length: int) -> None:
    found = parallel.bands(length)
    assert 1 <= len(found) <= parallel.WORKERS
    assert found[0].start == 0 and found[-1].stop == length
    for before, after in zip(found, found[1:], strict=False):
        assert before.stop == after.start and after.start % 64 == 0


def test_parts_run_on_threads_and_the_first_error_reaches_the_caller() -> None:
    names: list[str] = []

    def record() -> None:
        names.append(threading.current_thread().name)

    parallel.run_all([record, record, record], parallel.MIN_PIXELS)
    assert len(names) == 3 and all(n.startswith("genfx-parallel") for n in names)
    names.clear()
    parallel.run_all([record, record], parallel.MIN_PIXELS - 1)  # small work stays on this thread
    assert names == [threading.current_thread().name] * 2

    def broken() -> None:
        raise ValueError("band 2: bad pixels")

    with pytest.raises(ValueError, match="band 2"):
        parallel.run_all([record, broken], parallel.MIN_PIXELS)


@pytest.mark.skipif(not colour.ocio_available(), reason="OpenColorIO not installed")
def test_a_large_conversion_in_bands_equals_one_whole_call() -> None:
    rng = np.random.default_rng(5)
    image = rng.random((1021, 1031, 3), dtype=np.float32) * 4.0  # over a megapixel, odd sizes
    src, dst = colour.MODEL_SPACE, colour.SCENE_SPACES["acescg"]
    whole = image.copy()
    colour._processor(src, dst).applyRGB(whole.reshape(-1, 3))
    assert np.array_equal(colour.ocio_convert(image, src, dst), whole)
