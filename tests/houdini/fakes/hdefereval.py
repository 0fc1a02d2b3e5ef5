"""A fake of Houdini's ``hdefereval``: calls handed over from any thread run on the main thread when the
(fake) event loop is idle, i.e. when a test calls ``process_events`` or ``run_until``.

As in Houdini, it only exists with a graphical UI: without one ``import hdefereval`` fails (the fake ``hou``
keeps ``sys.modules["hdefereval"]`` in step with ``hou.isUIAvailable()``), and a call made anyway raises.
``executeInMainThreadWithResult`` called from the main thread would wait for itself forever in Houdini;
here it raises, so code that does it fails its test instead of hanging.
Exceptions raised by deferred callbacks are collected and re-raised from ``process_events`` so that a
broken callback fails the test instead of vanishing into a console.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from tests.houdini.fakes import hou

_lock = threading.Lock()
_pending: deque[
    tuple[Callable[..., object] | str, tuple[Any, ...], dict[str, Any], threading.Event | None, list[object]]
] = deque()
processed = 0


def _require_ui() -> None:
    if not hou._session.ui_available:
        raise RuntimeError("hdefereval is only available in graphical Houdini")


def _call(code: Callable[..., object] | str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> object:
    if isinstance(code, str):
        exec(code, {"hou": hou._module()})
        return None
    return code(*args, **kwargs)


def executeDeferred(code: Callable[..., object] | str, *args: Any, **kwargs: Any) -> None:
    _require_ui()
    with _lock:
        _pending.append((code, args, kwargs, None, []))


def executeDeferredAfterWaiting(
    code: Callable[..., object] | str, num_waits: int, *args: Any, **kwargs: Any
) -> None:
    executeDeferred(code, *args, **kwargs)


def executeInMainThreadWithResult(code: Callable[..., object], *args: Any, **kwargs: Any) -> object:
    _require_ui()
    if threading.current_thread() is threading.main_thread():
        raise RuntimeError("executeInMainThreadWithResult from the main thread blocks Houdini forever")
    done = threading.Event()
    box: list[object] = []
    with _lock:
        _pending.append((code, args, kwargs, done, box))
    done.wait()
    if box and isinstance(box[0], BaseException):
        raise box[0]
    return box[0] if box else None


def process_events() -> int:
    """Runs, on the main thread, every call queued before this one started. Returns how many ran."""
    global processed
    assert threading.current_thread() is threading.main_thread()
    with _lock:
        batch = list(_pending)
        _pending.clear()
    errors: list[BaseException] = []
    for code, args, kwargs, done, box in batch:
        try:
            box.append(_call(code, args, kwargs))
        except BaseException as exc:  # handed to the caller below
            box.append(exc)
            if done is None:
                errors.append(exc)
        finally:
            if done is not None:
                done.set()
    processed += len(batch)
    if errors:
        raise errors[0]
    return len(batch)


def run_until(predicate: Callable[[], bool], timeout: float = 120.0, interval: float = 0.005) -> bool:
    """The main thread's event loop: process deferred calls until ``predicate()`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        process_events()
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


def pending() -> int:
    with _lock:
        return len(_pending)


def _reset() -> None:
    global processed
    with _lock:
        _pending.clear()
    processed = 0
