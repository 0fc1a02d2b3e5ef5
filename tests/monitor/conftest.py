"""Monitor tests: pytest-qt on the offscreen platform, against a real server subprocess (tiny model)."""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from genfx.client import Client
from genfx.local_server import LocalServer

# Before any test imports Qt (they do it inside the tests): no display needed (CI, SSH sessions).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

if importlib.util.find_spec("PySide6") is None or importlib.util.find_spec("pytestqt") is None:
    # The gui extra is not installed: nothing here can run.
    collect_ignore_glob = ["test_*.py"]


class ThreadRecordingClient(Client):
    """A real Client that notes the thread of every network call, to prove none runs on the GUI thread."""

    def __init__(self, *args: Any, calls: list[tuple[str, str]], **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.calls = calls

    def _note(self, what: str) -> None:
        self.calls.append((what, threading.current_thread().name))

    def _unary(self, method: Any, request: Any) -> Any:  # info, list_jobs, submit, cancel, get_job
        self._note(type(request).__name__)
        return super()._unary(method, request)

    def watch(self, job_id: str, from_seq: int = 0, **kw: Any) -> Any:
        self._note("WatchJob")
        return super().watch(job_id, from_seq, **kw)

    def fetch_frame(self, job_id: str, frame: int, dest: Any, **kw: Any) -> Path:
        self._note("FetchFrame")
        return super().fetch_frame(job_id, frame, dest, **kw)


@pytest.fixture(scope="session")
def monitor_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """A server of the monitor tests' own, so the jobs in the table are the ones these tests made."""
    with LocalServer(tmp_path_factory.mktemp("monitor-server")) as srv:
        yield srv


@pytest.fixture()
def api(monitor_server: LocalServer) -> Iterator[Client]:
    """The test's own connection to the server (to submit jobs and check what the widget did)."""
    with Client(monitor_server.address, timeout=60) as c:
        yield c
