"""Start a GenFX server as a subprocess on a free loopback port (for `genfx demo` and the tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType

READY_PREFIX = "GENFX_READY "  # then key=value pairs: port=N [metrics_port=M]


class LocalServer:
    """`with LocalServer(data_dir) as srv: Client(srv.address)`; the log goes to data_dir/server.log."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        token: str = "",
        extra_args: tuple[str, ...] = (),
        start_timeout: float = 180.0,
        port: int = 0,
    ) -> None:
        """port 0 picks a free port; a fixed port lets a client reattach after a restart."""
        self.data_dir = Path(data_dir)
        self.token = token
        self.extra_args = extra_args
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen[str] | None = None
        self.requested_port = port
        self.port = 0
        self.metrics_port = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "server.log"

    def start(self) -> LocalServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "inference_server",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.requested_port),
            "--data-dir",
            str(self.data_dir),
            *self.extra_args,
        ]
        env = dict(os.environ)
        if self.token:
            env["GENFX_TOKEN"] = self.token
        log = self.log_path.open("a")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
        log.close()
        port = self._wait_ready()
        if port is None:
            self.kill()
            tail = self.log_path.read_text()[-3000:]
            raise RuntimeError(f"GenFX server did not start within {self.start_timeout:.0f} s:\n{tail}")
        self.port = port
        return self

    def _wait_ready(self) -> int | None:
        assert self.proc is not None and self.proc.stdout is not None
        found: list[dict[str, int]] = []
        stdout = self.proc.stdout

        def read() -> None:
            for line in stdout:
                if line.startswith(READY_PREFIX):
                    pairs = (item.split("=", 1) for item in line[len(READY_PREFIX) :].split())
                    found.append({key: int(value) for key, value in pairs})
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline and not found and self.proc.poll() is None:
            reader.join(0.1)
        if not found:
            return None
        self.metrics_port = found[0].get("metrics_port", 0)
        return found[0]["port"]

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM, then wait; the server requeues a running job and exits cleanly."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self) -> None:
        """SIGKILL: a crash, as far as the server can tell."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
