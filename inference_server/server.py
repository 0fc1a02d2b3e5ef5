"""Server start-up: job store, an executor (local worker threads, or render actors on a Ray cluster),
gRPC with health, reflection and auth."""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import sys
import threading
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from genfx.proto import genfx_pb2 as pb
from genfx.proto import genfx_pb2_grpc as pb_grpc
from inference_server.adapters import LoraSpec
from inference_server.auth import TokenInterceptor
from inference_server.devices import detect_devices
from inference_server.executor import Executor, LocalExecutor
from inference_server.jobs import JobStore
from inference_server.metrics import ServerMetrics
from inference_server.models import ModelRegistry
from inference_server.ray_executor import RayExecutor, RayOptions
from inference_server.service import GenFXService
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
    sim_controlnets: dict[str, Path] = field(default_factory=dict)  # model name -> ControlNet folder
    loras: dict[str, LoraSpec] = field(default_factory=dict)
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
        import diffusers
        import OpenEXR
        import transformers

        OpenEXR.set_global_thread_count(os.cpu_count() or 1)
        # Model loading progress bars would flood the server log; job progress goes to clients.
        diffusers.utils.logging.disable_progress_bar()
        transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        self.config = config
        self.data = DataDir(config.data_dir)
        self.store = JobStore(self.data.jobs_db)
        recovered = self.store.recover()
        if recovered:
            log.info("requeued %d interrupted job(s): %s", len(recovered), ", ".join(recovered))
        self.registry = ModelRegistry(
            config.models, self.data.models, sim_controlnets=config.sim_controlnets, loras=config.loras
        )
        self.registry.check_adapters()
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
            self.executor = LocalExecutor(local_devices, self.store, self.registry, self.data)

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
        )
        pb_grpc.add_GenFXServicer_to_server(self.service, self.grpc_server)
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.grpc_server)
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

        self.metrics = ServerMetrics(self.store, local_devices)
        self.metrics_port = 0

    def start(self) -> None:
        if self.config.metrics_port is not None:
            self.metrics_port = self.metrics.serve(self.config.host, self.config.metrics_port)
            log.info("Prometheus metrics on http://%s:%d/metrics", self.config.host, self.metrics_port)
        self.executor.on_capacity_change(self.set_health)
        self.executor.start()
        self.grpc_server.start()
        self.set_health(self.executor.can_run())
        log.info(
            "GenFX listening on %s:%d (%s; models: %s)",
            self.config.host,
            self.port,
            self.executor.describe(),
            ", ".join(self.registry.names()),
        )

    def set_health(self, can_run: bool) -> None:
        """The one place health is decided: SERVING while at least one worker or actor can run a job
        (until shutdown starts); NOT_SERVING otherwise, with jobs waiting in the queue."""
        status = (
            health_pb2.HealthCheckResponse.SERVING if can_run else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", SERVICE_NAME):
            self.health.set(name, status)

    def stop(self, grace: float = 5.0) -> None:
        """Load balancers see NOT_SERVING first; running frames finish (up to drain_timeout) and their jobs
        go back to the queue with every finished frame kept; then the RPCs end."""
        self.health.enter_graceful_shutdown()
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
    server.start()
    metrics = f" metrics_port={server.metrics_port}" if server.metrics_port else ""
    print(f"GENFX_READY port={server.port}{metrics}", flush=True)
    done = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        log.info("signal %d: shutting down", signum)
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    done.wait()
    server.stop()
    return 0
