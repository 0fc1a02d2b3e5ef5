"""One small thread pool for splitting big per-pixel work (colour conversion, resizes) across cores.

The libraries doing that work (OpenColorIO, Pillow, numpy) release the GIL, so the parts run side by
side: a 4K frame's colour or resize takes about half the time on 2 cores, a quarter on 4. The worker,
the frame writers and the prefetch thread share the pool; a part never waits on the pool itself, so
sharing cannot deadlock.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

WORKERS = 4
MIN_PIXELS = 1 << 20  # below a megapixel, handing parts to threads costs more than it saves

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def run_all(parts: Sequence[Callable[[], None]], pixels: int) -> None:
    """Runs every part of a piece of work over ``pixels`` pixels: on the pool when there is more than
    one part and at least MIN_PIXELS, else here in order. Re-raises the first part's error."""
    if len(parts) <= 1 or pixels < MIN_PIXELS:
        for part in parts:
            part()
        return
    for future in [_shared_pool().submit(part) for part in parts]:
        future.result()


def bands(length: int, parts: int = WORKERS, align: int = 64) -> list[slice]:
    """``length`` rows cut into at most ``parts`` contiguous bands of nearly equal size, each starting
    at a multiple of ``align`` (vectorised kernels then see the same pixel groups as in one call)."""
    step = -(-length // max(1, parts))  # ceil
    step = -(-step // align) * align
    return [slice(start, min(start + step, length)) for start in range(0, length, step)]


def _shared_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="genfx-parallel")
        return _pool


def _forget_pool() -> None:
    """In a forked child the parent's pool threads do not exist: start afresh."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)
