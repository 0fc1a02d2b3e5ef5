"""Server start-up: job store, gRPC with health, reflection and auth, then an executor (local worker
threads, or render actors on a Ray cluster).

A fast start: the port answers (health NOT_SERVING) before any worker exists; the executor starts on a
start-up thread (finding CUDA devices imports torch, seconds, unless the torch build has no CUDA at all)
and health turns SERVING when a worker or actor can run (``health.py``). torch, diffusers and model
pipelines load off that path: the libraries warm up in the background, models load on first use.
"""

from __future__ import annotations

import ipaddress
import logging
import signal
import sys
import threading
import time
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from genfx.proto import genfx_pb2 as pb
from genfx.proto import genfx_pb2_grpc as pb_grpc
from inference_server import third_party
from inference_server.acceleration import Acceleration
from inference_server.auth import TokenInterceptor
from inference_server.executor import Executor, LocalExecutor
from inference_server.frame_writer import WriterSettings
from inference_server.health import Health
from inference_server.jobs import JobStore
from inference_server.metrics import ServerMetrics
from inference_server.models import ModelRegistry
from inference_server.ray_executor import RayExecutor, RayOptions
from inference_server.service import GenFXService
from inference_server.step_times import StepTimes
from inference_server.storage import DataDir
from inference_server.validation import Limits

log = logging.getLogger("genfx.server")
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["GenFX"].full_name
MAX_MESSAGE = 8 << 20


class ConfigError(ValueError):
    """A server setting that cannot work (unsafe bind, missing model dir...)."""


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 50051
    data_dir: Path = Path("genfx_data")
    models: dict[str, Path] = field(default_factory=dict)
    token: str = ""
    insecure: bool = False
    devices: list[str] = field(default_factory=list)
    limits: Limits = field(default_factory=Limits)
    max_rpc_threads: int = 32
    # TLS: server certificate chain and key (PEM files); a client CA turns on mutual TLS.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    # Prometheus metrics HTTP port on the same host; None = no metrics endpoint, 0 = a free port.
    metrics_port: int | None = None
    # On shutdown, how long a running frame may take to finish before the worker stops between steps.
    drain_timeout: float = 60.0
    # Render on a Ray cluster instead of local worker threads (`--ray`); None = local workers.
    ray: RayOptions | None = None
    # How pipelines run on CUDA devices (acceleration.py; nothing of it applies on the CPU).
    acceleration: Acceleration = field(default_factory=Acceleration)
    # Frame writer threads per local worker (None: half the cores, 1 to 4; 0: frames are written by the
    # worker itself, one after the other).
    frame_writers: int | None = None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def server_credentials(config: ServerConfig) -> grpc.ServerCredentials | None:
    if config.tls_cert is None and config.tls_key is None:
        if config.tls_client_ca is not None:
            raise ConfigError("--tls-client-ca needs --tls-cert and --tls-key")
        return None
    if config.tls_cert is None or config.tls_key is None:
        raise ConfigError("TLS needs both --tls-cert and --tls-key")
    try:
        cert, key = config.tls_cert.read_bytes(), config.tls_key.read_bytes()
        client_ca = config.tls_client_ca.read_bytes() if config.tls_client_ca else None
    except OSError as exc:
        raise ConfigError(f"cannot read TLS file: {exc}") from exc
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


def require_ray() -> None:
    try:
        import ray  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            "--ray: Ray is not installed here; install the extra on the head and every node:"
            f" pip install 'genfx[ray]' ({exc})"
        ) from exc


class GenFXServer:
    def __init__(self, config: ServerConfig) -> None:
        mutual_tls = config.tls_client_ca is not None
        if not is_loopback(config.host) and not config.token and not mutual_tls and not config.insecure:
            raise ConfigError(
                f"refusing to listen on {config.host} without a token: pass --token (or GENFX_TOKEN) or "
                "mutual TLS (--tls-client-ca), or --insecure to accept anyone who can reach this port"
            )
        credentials = server_credentials(config)
        if config.ray is not None:
            require_ray()
        third_party.drop_known_notices()
        self.config = config
        self.data = DataDir(config.data_dir)
        self.store = JobStore(self.data.jobs_db)
        recovered = self.store.recover()
        if recovered:
            log.info("requeued %d interrupted job(s): %s", len(recovered), ", ".join(recovered))
        self.registry = ModelRegistry(config.models, self.data.models, acceleration=config.acceleration)
        self.step_times = StepTimes()
        self.writers = WriterSettings.for_threads(config.frame_writers)
        self.executor: Executor
        if config.ray is not None:
            self.executor = RayExecutor(config.ray, config.models, self.store, self.registry, self.data)
        else:  # devices are found when it starts, on the start-up thread
            self.executor = LocalExecutor(
                config.devices or None, self.store, self.registry, self.data, self.writers, self.step_times
            )

        interceptors: list[grpc.ServerInterceptor[Any, Any]] = (
            [TokenInterceptor(config.token)] if config.token else []
        )
        self.grpc_server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=config.max_rpc_threads, thread_name_prefix="genfx-rpc"),
            interceptors=interceptors,
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE),
                ("grpc.max_send_message_length", MAX_MESSAGE),
                # Long WatchJob streams: allow client keepalive pings every 20 s.
                ("grpc.http2.min_recv_ping_interval_without_data_ms", 20_000),
                ("grpc.keepalive_permit_without_calls", 1),
            ],
        )
        self.service = GenFXService(
            self.store,
            self.registry,
            self.executor,
            self.data,
            config.limits,
            auth_required=bool(config.token),
            step_times=self.step_times,
        )
        pb_grpc.add_GenFXServicer_to_server(self.service, self.grpc_server)
        self.health_servicer = health.HealthServicer()
        self.health = Health(self.health_servicer, ("", SERVICE_NAME))
        health_pb2_grpc.add_HealthServicer_to_server(self.health_servicer, self.grpc_server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), self.grpc_server
        )
        address = f"{config.host}:{config.port}"
        if credentials is None:
            self.port = self.grpc_server.add_insecure_port(address)
        else:
            self.port = self.grpc_server.add_secure_port(address, credentials)
        if self.port == 0:
            raise ConfigError(f"could not listen on {config.host}:{config.port} (port in use?)")

        executor = self.executor
        self.metrics = ServerMetrics(self.store, lambda: [d.name for d in executor.devices()])
        self.metrics_port = 0
        self._startup = threading.Thread(target=self._start_executor, name="genfx-startup", daemon=True)
        self._capacity_lock = threading.Lock()

    def start(self) -> None:
        """Answers at once (health NOT_SERVING); the executor starts on a thread and health follows it."""
        if self.config.metrics_port is not None:
            self.metrics_port = self.metrics.serve(self.config.host, self.config.metrics_port)
            log.info("Prometheus metrics on http://%s:%d/metrics", self.config.host, self.metrics_port)
        self.executor.on_capacity_change(self._capacity)
        self.grpc_server.start()
        log.info(
            "GenFX listening on %s:%d (models: %s); starting workers",
            self.config.host,
            self.port,
            ", ".join(self.registry.names()),
        )
        self._startup.start()

    def _capacity(self, _can_run: bool = False) -> None:
        # Reads the executor's state now, under a lock: a stale report can never land last.
        with self._capacity_lock:
            can_run = self.executor.can_run()
            self.health.report("executor", can_run, "no worker or actor can run a job (see the log)")

    def _start_executor(self) -> None:
        started = time.monotonic()
        try:
            self.executor.start()
        except Exception as exc:  # no worker can run: health stays NOT_SERVING and says why
            log.error("no worker can run: %s: %s", type(exc).__name__, exc)
            self.health.report("executor", False, f"{type(exc).__name__}: {exc}")
            return
        self._capacity()
        devices = [d.name for d in self.executor.devices()]
        log.info(
            "%s in %.1f s (%d frame writer thread(s) per local worker; pipelines: %s)",
            self.executor.describe(),
            time.monotonic() - started,
            self.writers.threads,
            ", ".join(f"{d} {self.config.acceleration.on(d).describe()}" for d in devices) or "none yet",
        )
        # Off the critical path: the imports the first job would otherwise wait for.
        try:
            third_party.quiet()
        except Exception as exc:  # a job that needs them reports the same error, with its job id
            log.warning("warming up the model libraries failed: %s: %s", type(exc).__name__, exc)

    def wait_serving(self, timeout: float | None = None) -> bool:
        return self.health.wait_serving(timeout)

    def stop(self, grace: float = 5.0) -> None:
        """Load balancers see NOT_SERVING first; running frames finish (up to drain_timeout) and their jobs
        go back to the queue with every finished frame kept; then the RPCs end."""
        self.health.shutting_down()
        self.health_servicer.enter_graceful_shutdown()
        self._startup.join(timeout=self.config.drain_timeout)
        self.executor.drain()
        if not self.executor.join(self.config.drain_timeout):
            log.warning(
                "frames still running after %.0f s; stopping between steps", self.config.drain_timeout
            )
            self.executor.stop()
            self.executor.join(60)
        self.grpc_server.stop(grace).wait()
        self.store.close()


def run(config: ServerConfig) -> int:
    """Runs until SIGINT/SIGTERM. Prints one 'GENFX_READY port=N' line when serving (tests wait for it)."""
    try:
        server = GenFXServer(config)
    except (ConfigError, ValueError) as exc:
        print(f"genfx serve: {exc}", file=sys.stderr)
        return 2
    done = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        log.info("signal %d: shutting down", signum)
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server.start()
    # Ready = serving: a worker can run (the port answered, NOT_SERVING, before that).
    while not done.is_set() and not server.wait_serving(0.2):
        pass
    if server.health.serving:
        log.info("health SERVING: a worker can run")
        metrics = f" metrics_port={server.metrics_port}" if server.metrics_port else ""
        print(f"GENFX_READY port={server.port}{metrics}", flush=True)
    done.wait()
    server.stop()
    return 0
