"""Server start-up: job store (checked and repaired), an executor (local worker threads, or render
actors on a Ray cluster), gRPC (asyncio) with health, reflection and auth, retention.

The gRPC side runs on one asyncio event loop: a waiting stream holds no thread, and blocking work goes to
a small thread pool (service.py). Whatever runs jobs reports whether it can to one ``Health``
(health.py), which drives the grpc.health.v1 status.

A fast start: nothing on the way to SERVING imports torch, diffusers or transformers (CUDA-less torch
builds are recognised from their version file; a worker on a CUDA device imports torch to check it).
The model libraries warm up on a background thread after the start, and models load on first use.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import sys
import threading
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]  # untyped re-export
from grpc_reflection.v1alpha import reflection

from genfx.proto import genfx_pb2 as pb
from genfx.proto import genfx_pb2_grpc as pb_grpc
from inference_server import retention, third_party
from inference_server.acceleration import Acceleration
from inference_server.adapters import LoraSpec
from inference_server.auth import TokenInterceptor
from inference_server.devices import detect_devices
from inference_server.executor import Executor, LocalExecutor
from inference_server.frame_writer import WriterSettings
from inference_server.health import Health
from inference_server.metrics import ServerMetrics
from inference_server.models import ModelRegistry
from inference_server.ray_executor import RayExecutor, RayOptions
from inference_server.recovery import open_store
from inference_server.service import GenFXService
from inference_server.step_times import StepTimes
from inference_server.storage import DataDir
from inference_server.validation import Limits
from inference_server.wakeups import JobWakeups

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
    sim_controlnets: dict[str, Path] = field(default_factory=dict)  # model name -> ControlNet folder
    loras: dict[str, LoraSpec] = field(default_factory=dict)
    token: str = ""
    insecure: bool = False
    devices: list[str] = field(default_factory=list)
    limits: Limits = field(default_factory=Limits)
    # Threads for blocking work (SQLite, file reads and writes, image probes); RPCs themselves hold none.
    blocking_threads: int = 8
    # Concurrent RPCs before gRPC answers RESOURCE_EXHAUSTED (bounds memory; each open stream is small).
    max_concurrent_rpcs: int = 10_000
    # TLS: server certificate chain and key (PEM files); a client CA turns on mutual TLS.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    # Prometheus metrics HTTP port; None = no metrics endpoint, 0 = a free port. Unauthenticated, so it
    # listens on loopback unless metrics_host says otherwise.
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    # On shutdown, how long a running frame may take to finish before the worker stops between steps.
    drain_timeout: float = 60.0
    # Jobs that ended are deleted this many hours later (record and frames); 0 = kept until DeleteJob.
    job_retention_hours: float = 0.0
    # An upload that sends nothing for this long is ended (DEADLINE_EXCEEDED) and its bytes dropped.
    upload_idle_timeout_s: float = 60.0
    # Render on a Ray cluster instead of local worker threads (`--ray`); None = local workers.
    ray: RayOptions | None = None
    # How pipelines run on CUDA devices (acceleration.py; nothing of it applies on the CPU).
    acceleration: Acceleration = field(default_factory=Acceleration)
    # Frame writer threads per local worker (None: half the cores, 1 to 4; 0: frames are written by the
    # worker itself, one after the other).
    frame_writers: int | None = None


def _warm_up() -> None:
    try:
        third_party.quiet()
    except Exception as exc:  # a job that needs them reports the same error, with its job id
        log.warning("warming up the model libraries failed: %s: %s", type(exc).__name__, exc)


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


def grpc_options() -> list[tuple[str, Any]]:
    return [
        ("grpc.max_receive_message_length", MAX_MESSAGE),
        ("grpc.max_send_message_length", MAX_MESSAGE),
        # Long WatchJob streams: allow client keepalive pings every 20 s ...
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 20_000),
        ("grpc.keepalive_permit_without_calls", 1),
        # ... and ping quiet clients ourselves: a peer that does not answer within 20 s is gone (a
        # half-open connection after a crash or a pulled cable) and its streams end.
        ("grpc.keepalive_time_ms", 60_000),
        ("grpc.keepalive_timeout_ms", 20_000),
        ("grpc.http2.max_pings_without_data", 0),
    ]


class GenFXServer:
    """The constructor does the slow, synchronous part (imports, the job store's checks, models).
    ``start`` and ``stop`` are plain calls: the gRPC side runs on an event loop in a thread of its own
    ("genfx-grpc"), so the server can live in any program (the ``serve`` command, a test, a notebook)."""

    def __init__(self, config: ServerConfig) -> None:
        mutual_tls = config.tls_client_ca is not None
        if not is_loopback(config.host) and not config.token and not mutual_tls and not config.insecure:
            raise ConfigError(
                f"refusing to listen on {config.host} without a token: pass --token (or GENFX_TOKEN) or "
                "mutual TLS (--tls-client-ca), or --insecure to accept anyone who can reach this port"
            )
        if config.job_retention_hours < 0:
            raise ConfigError(f"--job-retention-hours: must be >= 0 (got {config.job_retention_hours:g})")
        self.credentials = server_credentials(config)
        if config.ray is not None:
            require_ray()
        third_party.drop_known_notices()
        self.config = config
        self.data = DataDir(config.data_dir)
        self.store, self.recovery = open_store(self.data.jobs_db, self.data.records)
        self.registry = ModelRegistry(
            config.models,
            self.data.models,
            sim_controlnets=config.sim_controlnets,
            loras=config.loras,
            acceleration=config.acceleration,
        )
        self.registry.check_adapters()
        self.health = Health()
        self.step_times = StepTimes()
        self.writers = WriterSettings.for_threads(config.frame_writers)
        self.executor: Executor
        local_devices: list[str] = []
        if config.ray is not None:
            self.executor = RayExecutor(
                config.ray,
                config.models,
                self.store,
                self.registry,
                self.data,
                sim_controlnets=config.sim_controlnets,
                loras=config.loras,
            )
        else:
            local_devices = config.devices or detect_devices()
            self.executor = LocalExecutor(
                local_devices,
                self.store,
                self.registry,
                self.data,
                self.health,
                writers=self.writers,
                step_times=self.step_times,
            )
        self.blocking = futures.ThreadPoolExecutor(config.blocking_threads, thread_name_prefix="genfx-io")
        self.metrics = ServerMetrics(self.store, lambda: local_devices)
        self.metrics_port = 0
        self.port = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self._loop.run_forever, name="genfx-grpc", daemon=True)

    def start(self) -> None:
        """Serving when it returns: the port answers, workers run. Raises ConfigError when it cannot
        listen."""
        self._loop_thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._start(), self._loop).result()
        except BaseException:
            self._loop.call_soon_threadsafe(self._loop.stop)
            raise

    def stop(self, grace: float = 5.0) -> None:
        """Load balancers see NOT_SERVING first; running frames finish (up to drain_timeout) and their jobs
        go back to the queue with every finished frame kept; then the RPCs end."""
        asyncio.run_coroutine_threadsafe(self._stop(grace), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._loop_thread.join()
        self._loop.close()

    async def _start(self) -> None:
        config = self.config
        loop = asyncio.get_running_loop()
        wakeups = JobWakeups(loop)
        self.store.add_listener(wakeups.on_event)
        interceptors = [TokenInterceptor(config.token)] if config.token else []
        self.grpc_server = grpc.aio.server(
            interceptors=interceptors,
            options=grpc_options(),
            maximum_concurrent_rpcs=config.max_concurrent_rpcs,
        )
        self.service = GenFXService(
            self.store,
            self.registry,
            self.executor,
            self.data,
            config.limits,
            auth_required=bool(config.token),
            blocking=self.blocking,
            wakeups=wakeups,
            job_retention_hours=config.job_retention_hours,
            upload_idle_timeout_s=config.upload_idle_timeout_s,
            step_times=self.step_times,
        )
        pb_grpc.add_GenFXServicer_to_server(self.service, self.grpc_server)
        self.health_service = health_aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health_service, self.grpc_server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), self.grpc_server
        )
        address = f"{config.host}:{config.port}"
        try:
            if self.credentials is None:
                self.port = self.grpc_server.add_insecure_port(address)
            else:
                self.port = self.grpc_server.add_secure_port(address, self.credentials)
        except RuntimeError as exc:
            raise ConfigError(f"could not listen on {address} ({exc})") from exc
        if self.port == 0:
            raise ConfigError(f"could not listen on {address} (port in use?)")

        # NOT_SERVING until a worker reports it can run jobs; then health follows Health.
        await self._sync_health()

        def on_health_change(_serving: bool) -> None:  # from a worker thread
            with contextlib.suppress(RuntimeError):  # the loop already closed: the server has stopped
                loop.call_soon_threadsafe(self._schedule_health_sync)

        self.health.on_change(on_health_change)
        if config.ray is not None:
            # Actors come and go with their nodes: the executor reports its capacity as one reporter.
            # Local workers report themselves (they can also stop for a full disk).
            def on_capacity(can_run: bool) -> None:
                self.health.report("ray actors", can_run, "no render actor can run")

            self.executor.on_capacity_change(on_capacity)
            on_capacity(self.executor.can_run())
        if config.metrics_port is not None:
            self.metrics_port = self.metrics.serve(config.metrics_host, config.metrics_port)
            log.info("Prometheus metrics on http://%s:%d/metrics", config.metrics_host, self.metrics_port)
        self.executor.start()
        await self.grpc_server.start()
        await self._sync_health()
        if config.job_retention_hours > 0:
            self._tasks.append(asyncio.create_task(self._retention_loop()))
        log.info(
            "GenFX listening on %s:%d (%s; models: %s; %d frame writer thread(s) per local worker;"
            " pipelines: %s)",
            config.host,
            self.port,
            self.executor.describe(),
            ", ".join(self.registry.names()),
            self.writers.threads,
            ", ".join(
                f"{d.name} {config.acceleration.on(d.name).describe()}" for d in self.executor.devices()
            )
            or "none yet",
        )
        # Off the critical path: the imports the first job would otherwise wait for.
        threading.Thread(target=_warm_up, name="genfx-warm-up", daemon=True).start()

    def _schedule_health_sync(self) -> None:
        self._tasks.append(asyncio.create_task(self._sync_health()))
        self._tasks = [t for t in self._tasks if not t.done()]

    async def _sync_health(self) -> None:
        """Sets the gRPC health status from Health as it is now (so syncs can never go stale)."""
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if self.health.serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", SERVICE_NAME):
            await self.health_service.set(name, status)

    async def _retention_loop(self) -> None:
        hours = self.config.job_retention_hours
        loop = asyncio.get_running_loop()
        while True:
            try:
                await loop.run_in_executor(self.blocking, retention.sweep, self.store, hours)
            except Exception as exc:  # storage trouble: the workers report it; try again next time
                log.error("retention sweep failed: %s", exc)
            await asyncio.sleep(retention.sweep_interval_s(hours))

    async def _stop(self, grace: float) -> None:
        self.health.shutting_down()
        await self.health_service.enter_graceful_shutdown()
        for task in self._tasks:
            task.cancel()
        await asyncio.get_running_loop().run_in_executor(None, self._drain)
        await self.grpc_server.stop(grace)
        self.blocking.shutdown(wait=True)
        self.store.close()

    def _drain(self) -> None:
        self.executor.drain()
        if not self.executor.join(self.config.drain_timeout):
            log.warning(
                "frames still running after %.0f s; stopping between steps", self.config.drain_timeout
            )
            self.executor.stop()
            self.executor.join(60)


def run(config: ServerConfig) -> int:
    """Runs until SIGINT/SIGTERM. Prints one 'GENFX_READY port=N' line when serving (tests wait for it)."""
    try:
        server = GenFXServer(config)
        server.start()
    except (ConfigError, ValueError) as exc:
        print(f"genfx serve: {exc}", file=sys.stderr)
        return 2
    done = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        log.info("signal %d: shutting down", signum)
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # Ready means serving: at once when a worker can run; never while none can (health says why).
    while not done.is_set():
        if server.health.wait_serving(0.5):
            metrics = f" metrics_port={server.metrics_port}" if server.metrics_port else ""
            print(f"GENFX_READY port={server.port}{metrics}", flush=True)
            break
    done.wait()
    server.stop()
    return 0
