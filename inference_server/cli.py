"""`genfx-server` (also `python -m inference_server`): the server's own command.

    genfx-server serve [--host 127.0.0.1] [--port 50051] [--data-dir DIR] [--model NAME=PATH ...] ...

GENFX_TOKEN gives the default for --token.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import genfx


def parse_model(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"--model: expected NAME=PATH, got {text!r}")
    return name, Path(path)


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def cmd_serve(args: argparse.Namespace) -> int:
    # Heavy imports (torch, diffusers) only once we know the command line is good.
    from inference_server.acceleration import Acceleration
    from inference_server.logs import configure_logging
    from inference_server.models import ModelsConfig, load_model_config
    from inference_server.ray_executor import RayOptions
    from inference_server.server import ServerConfig, run
    from inference_server.validation import Limits

    configure_logging(args.log_level, args.log_format)
    limits = {
        name: value
        for name, value in (
            ("max_queued_jobs", args.max_queued_jobs),
            ("max_frames_per_job", args.max_frames_per_job),
        )
        if value is not None
    }
    loaded = load_model_config(Path(args.models_config)) if args.models_config else ModelsConfig()
    models = {**loaded.models, **dict(args.model or [])}
    config = ServerConfig(
        host=args.host,
        port=args.port,
        data_dir=Path(args.data_dir),
        models=models,
        sim_controlnets=loaded.sim_controlnets,
        loras=loaded.loras,
        token=args.token or "",
        insecure=args.insecure,
        devices=args.device or [],
        limits=replace(Limits(), **limits),
        tls_cert=_path(args.tls_cert),
        tls_key=_path(args.tls_key),
        tls_client_ca=_path(args.tls_client_ca),
        metrics_port=args.metrics_port,
        metrics_host=args.metrics_host,
        job_retention_hours=args.job_retention_hours,
        upload_idle_timeout_s=args.upload_idle_timeout,
        frame_writers=args.frame_writers,
        acceleration=Acceleration(
            dtype=args.dtype,
            channels_last=not args.no_channels_last,
            fuse_qkv=not args.no_fuse_qkv,
            compile=args.compile,
        ),
        ray=None
        if args.ray is None
        else RayOptions(
            address=args.ray,
            cpu_actors_per_node=args.ray_cpu_actors,
            node_resource=args.ray_node_resource,
            cache_dir=_path(args.ray_cache_dir),
        ),
    )
    return run(config)


def add_serve_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    p.add_argument("--port", type=int, default=50051, help="port; 0 picks a free one (default %(default)s)")
    p.add_argument("--data-dir", default="genfx_data", help="jobs database, frames, assets, model cache")
    p.add_argument(
        "--model",
        action="append",
        type=parse_model,
        metavar="NAME=PATH",
        help="serve a local diffusers model directory under NAME (repeatable)",
    )
    p.add_argument(
        "--models-config",
        metavar="FILE",
        help='JSON: {"models": {"NAME": "PATH" | {"path": "PATH", "sim_controlnet": "PATH"}},'
        ' "loras": {"NAME": "PATH" | {"path": "PATH", "base_model": "MODEL"}}}',
    )
    p.add_argument(
        "--token",
        default=os.environ.get("GENFX_TOKEN"),
        help="require this bearer token on every call (env GENFX_TOKEN)",
    )
    p.add_argument("--insecure", action="store_true", help="allow listening beyond loopback without a token")
    p.add_argument("--device", action="append", help="device for a worker, e.g. cpu or cuda:1 (default: all)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument(
        "--log-format",
        default="text",
        choices=["text", "json"],
        help="json: one object per line with job_id, for log collectors",
    )
    p.add_argument("--tls-cert", help="server certificate chain (PEM): serve TLS")
    p.add_argument("--tls-key", help="server private key (PEM), with --tls-cert")
    p.add_argument("--tls-client-ca", help="PEM CA for client certificates: require mutual TLS")
    p.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on this port (0 = a free one)")
    p.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        help="address for the metrics port; it has no auth, so loopback unless you say (default %(default)s)",
    )
    p.add_argument(
        "--job-retention-hours",
        type=float,
        default=0.0,
        help="delete jobs (record and frames) this many hours after they end; 0 = keep (default)",
    )
    p.add_argument(
        "--upload-idle-timeout",
        type=float,
        default=60.0,
        help="end an upload that sends nothing for this many seconds (default %(default)s)",
    )
    p.add_argument(
        "--max-queued-jobs",
        type=int,
        help="queued + running jobs before SubmitJob answers RESOURCE_EXHAUSTED (default 200)",
    )
    p.add_argument("--max-frames-per-job", type=int, help="default 1000")
    p.add_argument(
        "--frame-writers",
        type=int,
        metavar="N",
        help="threads per local worker that colour, encode and write frames beside the denoising loop"
        " (default: half the cores, 1 to 4; 0 = the worker writes each frame itself)",
    )
    # The GPU recipe's candidates (inference_server/acceleration.py): on by default on CUDA, never on CPU.
    fast = p.add_argument_group("CUDA pipelines (local workers; none of it applies on the CPU)")
    fast.add_argument(
        "--dtype",
        default="auto",
        choices=["auto", "fp16", "bf16", "fp32"],
        help="pipeline precision (default auto: fp16 on CUDA, fp32 on CPU)",
    )
    fast.add_argument("--no-channels-last", action="store_true", help="keep the UNet and VAE in NCHW")
    fast.add_argument("--no-fuse-qkv", action="store_true", help="keep attention's Q, K, V projections apart")
    fast.add_argument(
        "--compile",
        default="off",
        choices=["off", "blocks", "unet"],
        help="torch.compile the UNet's repeated blocks or the whole UNet (minutes on the first call and"
        " for each new generation size; default off)",
    )
    ray = p.add_argument_group("Ray cluster (pip install 'genfx[ray]'; see docs/ray.md)")
    ray.add_argument(
        "--ray",
        nargs="?",
        const="auto",
        metavar="ADDRESS",
        help="render on a running Ray cluster, one actor per GPU: 'auto' (the cluster this node is in,"
        " the default) or the head's host:port; this process stays the front door, job store and writer",
    )
    ray.add_argument(
        "--ray-cpu-actors",
        type=int,
        default=0,
        metavar="N",
        help="CPU-only cluster (tests, demos): N actors of one CPU on every node instead of one per GPU",
    )
    ray.add_argument(
        "--ray-node-resource",
        default="",
        metavar="NAME",
        help="only nodes started with this custom resource get actors (ray start --resources)",
    )
    ray.add_argument(
        "--ray-cache-dir",
        metavar="DIR",
        help="on every node: built-in models and passes sent by the head (default <data-dir>/ray-cache)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genfx-server", description="GenFX inference server.")
    parser.add_argument("--version", action="version", version=f"genfx-server {genfx.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="run the inference server until SIGTERM/SIGINT")
    add_serve_arguments(p)
    p.set_defaults(func=cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, OSError) as exc:
        print(f"genfx-server {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
