"""A small LRU of a shot's passes that loads each one once, whichever thread asks first.

The worker's thread (keyframes), the frame writer's threads (in-betweens, alpha) and a prefetch thread
(the next keyframe's passes, read while the device works on this one) share it. Nobody holds its lock
while a pass loads: an EXR read or a 4K resize on one thread does not stall a keyframe on another, and a
second asker of the same pass waits for the first one's result instead of reading the file again. A load
that fails is not remembered: the next asker tries again and hears the error itself.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]


class PassCache:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.loads = 0  # how many times a loader ran (tests, benches)
        self._entries: OrderedDict[Hashable, Future[F32]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, load: Callable[[], F32]) -> F32:
        with self._lock:
            entry = self._entries.get(key)
            mine = entry is None
            if entry is None:
                entry = self._entries[key] = Future()
                self.loads += 1
                while len(self._entries) > self.capacity:
                    self._entries.popitem(last=False)  # an evicted load still finishes for its askers
            else:
                self._entries.move_to_end(key)
        if mine:
            try:
                entry.set_result(load())
            except BaseException as exc:
                with self._lock:
                    if self._entries.get(key) is entry:
                        del self._entries[key]
                entry.set_exception(exc)
        return entry.result()
