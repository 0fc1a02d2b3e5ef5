"""`genfx` command line: generate, info, jobs, cancel, fetch, demo, monitor; `serve` launches the server.

GENFX_SERVER and GENFX_TOKEN give the defaults for --server and --token.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from genfx import __version__
from genfx.client import Client, GenFXError, state_name
from genfx.frames import local_path
from genfx.proto import genfx_pb2 as pb
from genfx.request import COLORSPACES, COMPRESSIONS, TEMPORAL_MODES, build_request, parse_lora

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SAMPLE_SHOT = EXAMPLES / "shots" / "building_orbit.json"
# The procedural collapse seen through the sample shot's camera: depth, motion and mask passes.
DEMO_PASSES = EXAMPLES / "shots" / "collapse_orbit"
DEMO_MODEL = EXAMPLES.parent / "models" / "demo"
DEMO_PROMPT = "a concrete building collapsing into rubble"
# No mask: the server makes a mask pass the frames' alpha (an FX element to composite), and the demo
# shows the whole frame; the sim conditioning's debris channel is then 0.
DEMO_PASS_KINDS = ("depth", "motion")


FRAMES_PATTERN = re.compile(r"^(-?\d+)(?:-(-?\d+))?$")


def parse_frames(text: str) -> tuple[int, int]:
    """'1001-1048' or '1001' -> (start, end)."""
    match = FRAMES_PATTERN.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"expected A-B or A, got {text!r}")
    start = int(match.group(1))
    end = int(match.group(2)) if match.group(2) is not None else start
    if end < start:
        raise argparse.ArgumentTypeError(f"{end} is before {start}")
    return start, end


# ---- serve ----------------------------------------------------------------------------------------


def launch_server(argv: Sequence[str]) -> int:
    """`genfx serve ARGS` runs `genfx-server serve ARGS` as its own process: the SDK never imports the
    server, which needs the server extra (torch, diffusers)."""
    if importlib.util.find_spec("inference_server") is None:
        print("genfx serve needs the server extra: pip install 'genfx[server]'", file=sys.stderr)
        return 2
    cmd = [sys.executable, "-m", "inference_server", "serve", *argv]
    if os.name == "posix":
        os.execv(sys.executable, cmd)  # the server gets our pid, so signals reach it directly
    return subprocess.call(cmd)


def _client(args: argparse.Namespace) -> Client:
    """A Client from --server/--token and the optional TLS files."""

    def read(value: str | None) -> bytes | None:
        return Path(value).read_bytes() if value else None

    return Client(
        args.server,
        args.token,
        root_certificates=read(args.tls_ca),
        private_key=read(args.tls_key),
        certificate_chain=read(args.tls_cert),
    )


# ---- generate -------------------------------------------------------------------------------------


class Progress:
    """One progress bar for a job: frames as the unit, steps shown as the fraction in between."""

    def __init__(self, total: int, quiet: bool) -> None:
        from tqdm import tqdm

        self.bar = tqdm(
            total=total,
            unit="frame",
            disable=quiet,
            file=sys.stderr,
            dynamic_ncols=True,
            bar_format="{l_bar}{bar}| {n:.1f}/{total} frames [{elapsed}<{remaining}] {postfix}",
        )

    def update(self, event: pb.JobEvent) -> None:
        kind = event.WhichOneof("kind")
        if kind == "progress":
            p = event.progress
            self.bar.n = round(p.fraction * self.bar.total, 2)
            self.bar.set_postfix_str(f"frame {p.frame} step {p.step}/{p.steps}")
        elif kind == "frame_done":
            self.bar.n = event.frame_done.frames_done
            self.bar.set_postfix_str(f"frame {event.frame_done.frame} done")
        elif kind == "state":
            self.bar.set_postfix_str(state_name(event.state.state))
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


UPSCALE_WORDS = {
    "upscale_x4+lanczos": "the tiled x4 diffusion upscaler, then a Lanczos resize",
    "lanczos": "a Lanczos resize",
}


def duration(seconds: float) -> str:
    """1h 05m / 3m 20s / 12s: how long, to the precision a person plans with."""
    s = round(seconds)
    if s >= 3600:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{max(s, 1)}s" if seconds > 0 else "0s"


def describe_estimate(request: pb.GenerateRequest, est: pb.JobEstimate) -> list[str]:
    """What a size costs, in the server's words (EstimateJob), before the job starts."""
    out = f"{request.output.width}x{request.output.height}" if request.output.width else "the shot's size"
    gen = f"{est.generation_width}x{est.generation_height}"
    path = UPSCALE_WORDS.get(est.upscale, est.upscale)
    upscale = f" + {est.upscale_steps} upscale steps" if est.upscale_steps else ""
    lines = [
        f"size: generated at {gen}, then {path} to {out}",
        f"work: {est.keyframes} of {est.frames} frames by diffusion, {est.diffusion_steps} steps{upscale}"
        + ("" if est.keyframes == est.frames else "; the rest reprojected"),
    ]
    if est.estimated_seconds > 0:
        per = f"{est.diffusion_seconds_per_step:.3g} s/step diffusion"
        if est.upscale_steps:
            per += f", {est.upscale_seconds_per_step:.3g} s/step upscale"
        lines.append(f"estimate: about {duration(est.estimated_seconds)} on one device ({per}; {est.basis})")
    else:
        lines.append(f"estimate: none yet ({est.basis})")
    return lines


def run_generate(
    client: Client, request: pb.GenerateRequest, out_dir: Path, *, fetch: bool = True, quiet: bool = False
) -> tuple[pb.Job, list[Path]]:
    """Says what the job will cost, submits, shows progress, downloads each frame as soon as it is done.
    Ctrl-C detaches."""
    try:
        for line in describe_estimate(request, client.estimate(request)):
            print(line, file=sys.stderr)
    except GenFXError as exc:
        if exc.code != "UNIMPLEMENTED":  # an older server: no estimate, the job still runs
            raise
    job = client.submit(request)
    print(
        f"job {job.id}: {job.frames_total} frames, model {job.request.model}, seed {job.seed}",
        file=sys.stderr,
    )
    paths: list[Path] = []
    progress = Progress(job.frames_total, quiet)
    try:
        for event in client.watch(job.id):
            progress.update(event)
            if fetch and event.WhichOneof("kind") == "frame_done":
                dest = local_path(out_dir, event.frame_done.file_name)
                paths.append(client.fetch_frame(job.id, event.frame_done.frame, dest))
    except KeyboardInterrupt:
        progress.close()
        print(
            f"\ndetached; job {job.id} keeps running on the server. "
            f"`genfx fetch {job.id}` downloads it, `genfx cancel {job.id}` stops it.",
            file=sys.stderr,
        )
        raise
    progress.close()
    return client.get_job(job.id), sorted(paths)


def _report(job: pb.Job, paths: Sequence[Path], out_dir: Path) -> int:
    if job.state != pb.JOB_STATE_SUCCEEDED:
        print(f"job {job.id} {state_name(job.state)}: {job.message}", file=sys.stderr)
        return 1
    print(f"job {job.id} succeeded: {len(paths)} frames in {out_dir}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from genfx.shot import load_shot

    shot = load_shot(args.shot)
    start, end = args.frames or (shot.frame_start, shot.frame_end)
    patterns = {"plate": args.plate, "mask": args.mask, "depth": args.depth, "motion": args.motion}
    out_dir = Path(args.out)
    with _client(args) as client:
        passes: dict[int, dict[str, str]] = {}
        if any(patterns.values()):
            from genfx.sequences import upload_passes

            passes, assets = upload_passes(client, patterns, range(start, end + 1))
            fresh = sum(not a.deduplicated for a in assets)
            print(
                f"passes: {len(assets)} files ({fresh} uploaded, the rest already on the server)",
                file=sys.stderr,
            )
        request = build_request(
            prompt=args.prompt,
            camera=shot.camera,
            frame_start=start,
            frame_end=end,
            fps=shot.fps,
            keyframe_step=args.keyframe_step,
            negative_prompt=args.negative_prompt,
            seed=args.seed,
            steps=args.steps,
            guidance=args.guidance,
            model=args.model,
            loras=args.lora or [],
            width=args.width,
            height=args.height,
            compression=args.compression,
            colorspace=args.colorspace,
            name=args.name or shot.name,
            passes=passes,
            strength=args.strength,
            plane_distance=args.plane_distance,
            controlnet_scale=args.controlnet_scale,
            temporal=args.temporal,
            priority=args.priority,
            client_tag=f"cli:{shot.name}",
        )
        job, paths = run_generate(client, request, out_dir, fetch=not args.no_fetch, quiet=args.quiet)
    return _report(job, paths, out_dir)


# ---- small commands -------------------------------------------------------------------------------


def cmd_info(args: argparse.Namespace) -> int:
    with _client(args) as client:
        info = client.info()
    print(f"GenFX server {info.version} at {client.address} (auth {'on' if info.auth_required else 'off'})")
    for m in info.models:
        print(
            f"  model {m.name:<12} {m.family:<6} native {m.native_width}x{m.native_height}"
            f"  modes: {', '.join(m.capabilities)}  hash {m.hash[:12]}"
        )
        if m.HasField("sim_controlnet"):
            cn = m.sim_controlnet
            print(f"        sim ControlNet {cn.hash[:12]}  dataset {cn.dataset_hash[:12] or '-'}")
    for lora in info.loras:
        print(
            f"  lora  {lora.name:<12} hash {lora.hash[:12]}  base {lora.base_model_hash[:12] or '-'}"
            f"  dataset {lora.dataset_hash[:12] or '-'}  models: {', '.join(lora.models) or 'none here'}"
        )
    for d in info.devices:
        busy = f"running {d.running_job_id}" if d.running_job_id else "idle"
        print(f"  device {d.name:<8} {d.description}  {busy}")
    lim = info.limits
    print(
        f"  limits: {lim.max_frames_per_job} frames/job, {lim.max_width}x{lim.max_height} px, "
        f"{lim.max_steps} steps, {lim.max_queued_jobs} queued jobs, {lim.max_upload_bytes >> 20} MiB uploads"
    )
    print(f"  defaults: {describe_defaults(info.defaults)}")
    if not info.step_times:
        print("  step times: none measured yet (the first job's keyframes measure them)")
    for t in info.step_times:
        print(
            f"  step time {t.model:<12} {t.stage:<10} at {t.width}x{t.height}:"
            f" {t.seconds_per_step:.3g} s/step (median of {t.samples} keyframes)"
        )
    print(
        "  sizes: frames are generated at a model's native scale, then upscaled (x4 diffusion upscaler"
        " when the output is at least twice that, else Lanczos); `genfx generate` prints the estimate"
    )
    return 0


def describe_defaults(d: pb.RequestDefaults) -> str:
    """What the server fills in for settings left unset, in the words `genfx generate --help` uses."""
    return (
        f"{d.steps} steps, guidance {d.guidance:g}, strength {d.strength:g}, "
        f"keyframe step {d.keyframe_step}, output name {d.output_name!r}, "
        f"controlnet scale {d.controlnet_conditioning_scale:g}"
    )


def cmd_jobs(args: argparse.Namespace) -> int:
    states = [pb.JobState.Value(f"JOB_STATE_{s.upper()}") for s in args.state or []]
    with _client(args) as client:
        jobs = client.list_jobs(states, args.limit)
    print(f"{'JOB':<32}  {'STATE':<9} {'FRAMES':>9} {'PROG':>5}  {'CREATED':<19}  PROMPT")
    for job in jobs:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(job.created_at))
        print(
            f"{job.id:<32}  {state_name(job.state):<9} {job.frames_done:>4}/{job.frames_total:<4} "
            f"{job.progress * 100:>4.0f}%  {created}  {job.request.prompt[:60]}"
        )
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    with _client(args) as client:
        job = client.cancel(args.job)
    print(
        f"job {job.id}: {state_name(job.state)}"
        + (f" ({job.message})" if job.message else " (stops after the current step)")
    )
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    with _client(args) as client:
        reply = client.delete_job(args.job)
    print(f"job {reply.job_id}: deleted with its {reply.frames_deleted} frame(s)")
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    out_dir = Path(args.out)
    with _client(args) as client:
        job = client.get_job(args.job)
        paths = client.fetch_job(args.job, out_dir)
    print(f"job {job.id} ({state_name(job.state)}): {len(paths)} frames in {out_dir}")
    return 0


# ---- demo -----------------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    from genfx.contact_sheet import write_contact_sheet
    from genfx.local_server import LocalServer
    from genfx.sequences import attach_passes
    from genfx.shot import load_shot

    out_dir = Path(args.out).resolve()
    frames_dir = out_dir / "frames"
    shot = load_shot(SAMPLE_SHOT)
    data_dir = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="genfx-demo-"))
    demo = args.model == "demo"
    extra: tuple[str, ...] = ()
    if demo:
        config = Path(args.model_dir) / "models.json"
        if not config.is_file():
            print(f"genfx demo: {config} not found (`make model` builds the demo model)", file=sys.stderr)
            return 2
        extra = ("--models-config", str(config))
    what = "the demo model" if demo else "the random-weight tiny model"
    print(f"starting a GenFX server with {what} (data in {data_dir}) ...", file=sys.stderr)
    with LocalServer(data_dir, extra_args=extra) as server, Client(server.address) as client:
        request = build_request(
            prompt=DEMO_PROMPT if demo else "a concrete office building collapsing into dust, photoreal",
            negative_prompt="" if demo else "cartoon, text, watermark",
            camera=shot.camera,
            frame_start=shot.frame_start,
            frame_end=shot.frame_end,
            fps=shot.fps,
            seed=args.seed,
            steps=args.steps,
            # The demo model never saw an empty prompt in training: no classifier-free guidance.
            guidance=1.0 if demo else None,
            model=args.model,
            width=args.width,
            height=args.height,
            name=shot.name,
            keyframe_step=args.keyframe_step,
            temporal="reproject" if args.keyframe_step > 1 else "",
            client_tag="demo",
        )
        if demo:
            attach_passes(request, client, {k: str(DEMO_PASSES / f"{k}.####.exr") for k in DEMO_PASS_KINDS})
        job, paths = run_generate(client, request, frames_dir, quiet=args.quiet)
        if job.state != pb.JOB_STATE_SUCCEEDED:
            return _report(job, paths, frames_dir)
    kinds = {f.frame: "key" if f.keyframe else "in-between" for f in job.frame_infos}
    labels = [f"{f.frame} {kinds[f.frame]}" for f in sorted(job.frame_infos, key=lambda f: f.frame)]
    sheet = write_contact_sheet(paths, out_dir / "contact_sheet.png", labels=labels)
    print(f"demo: {len(paths)} EXR frames in {frames_dir}")
    print(f"demo: contact sheet {sheet}")
    return 0


# ---- parser ---------------------------------------------------------------------------------------


def _connection_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--server",
        default=os.environ.get("GENFX_SERVER", "127.0.0.1:50051"),
        help="HOST:PORT of the GenFX server (env GENFX_SERVER; default %(default)s)",
    )
    p.add_argument("--token", default=os.environ.get("GENFX_TOKEN"), help="bearer token (env GENFX_TOKEN)")
    p.add_argument(
        "--tls-ca",
        default=os.environ.get("GENFX_TLS_CA"),
        help="PEM CA that signed the server's certificate: connect with TLS (env GENFX_TLS_CA)",
    )
    p.add_argument("--tls-cert", help="client certificate chain (PEM), for servers that require mutual TLS")
    p.add_argument("--tls-key", help="client private key (PEM), with --tls-cert")


SERVER_DEFAULT = "default: the server's (see genfx info)"


def _lora_arg(text: str) -> tuple[str, float]:
    try:
        return parse_lora(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _names(table: Mapping[str, object]) -> list[str]:
    """A request option table's names, without "" (unset)."""
    return [name for name in table if name]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genfx", description="GenFX: generative frames for VFX shots.")
    parser.add_argument("--version", action="version", version=f"genfx {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    # Listed for --help only: main() hands `serve` and everything after it to the server's command.
    sub.add_parser("serve", help="run the inference server (genfx-server serve; see genfx-server serve -h)")

    p = sub.add_parser("generate", help="generate a shot's frames and download them")
    p.add_argument("--shot", required=True, help="shot JSON (camera track; see examples/shots)")
    p.add_argument("--prompt", required=True)
    p.add_argument("--negative-prompt", default="")
    p.add_argument("--frames", type=parse_frames, help="A-B (default: the shot's range)")
    p.add_argument("--model", default="", help="model name (default: the server's default)")
    p.add_argument(
        "--lora",
        action="append",
        type=_lora_arg,
        metavar="NAME[=WEIGHT]",
        help="apply a LoRA the server lists (genfx info) at WEIGHT (default 1); repeatable",
    )
    p.add_argument("--seed", type=int, help="job seed (default: the server picks one and reports it)")
    p.add_argument("--steps", type=int, default=0, help=f"denoising steps ({SERVER_DEFAULT})")
    p.add_argument("--guidance", type=float, help=f"guidance scale ({SERVER_DEFAULT})")
    p.add_argument("--width", type=int, default=0, help="output width (default: the shot's)")
    p.add_argument("--height", type=int, default=0, help="output height (default: the shot's)")
    p.add_argument(
        "--name",
        default="",
        help="frame file prefix (default: the shot's name), made file-safe by genfx.request.output_name",
    )
    p.add_argument("--compression", default="zip", choices=_names(COMPRESSIONS))
    p.add_argument("--priority", type=int, default=0)
    for kind, what in (
        ("plate", "live-action plate (img2img init)"),
        ("mask", "where to generate (inpaint) and the output alpha"),
        ("depth", "camera Z depth in scene units (depth conditioning, reprojection)"),
        ("motion", "motion vectors in pixels to the next frame, +Y up (moving debris; needs --depth)"),
    ):
        p.add_argument(
            f"--{kind}", metavar="PATTERN", help=f"{what}: one file per frame, e.g. {kind}.####.exr"
        )
    p.add_argument(
        "--strength",
        type=float,
        default=0.0,
        help=f"img2img strength in (0, 1] over the plate or a reprojected keyframe ({SERVER_DEFAULT})",
    )
    p.add_argument(
        "--controlnet-scale",
        type=float,
        help=f"sim mode (--depth + --motion, a model with a sim ControlNet): its strength ({SERVER_DEFAULT})",
    )
    p.add_argument(
        "--keyframe-step",
        type=int,
        default=0,
        help=f"diffuse every Nth frame, reproject in between ({SERVER_DEFAULT})",
    )
    p.add_argument(
        "--temporal", choices=_names(TEMPORAL_MODES), default="none", help="camera-aware coherence"
    )
    p.add_argument("--colorspace", choices=_names(COLORSPACES), default="linear_rec709")
    p.add_argument(
        "--plane-distance", type=float, default=0.0, help="without --depth: reprojection plane distance"
    )
    p.add_argument("--out", default="genfx_out", help="folder for the EXR frames (default %(default)s)")
    p.add_argument("--no-fetch", action="store_true", help="only submit and watch, download nothing")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _connection_args(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("info", help="server version, models, devices, limits")
    _connection_args(p)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("jobs", help="list jobs, newest first")
    p.add_argument(
        "--state", action="append", choices=["queued", "running", "succeeded", "failed", "cancelled"]
    )
    p.add_argument("--limit", type=int, default=50)
    _connection_args(p)
    p.set_defaults(func=cmd_jobs)

    p = sub.add_parser("cancel", help="cancel a job (stops between denoising steps)")
    p.add_argument("job")
    _connection_args(p)
    p.set_defaults(func=cmd_cancel)

    p = sub.add_parser("delete", help="delete a job that has ended, with its frames on the server")
    p.add_argument("job")
    _connection_args(p)
    p.set_defaults(func=cmd_delete)

    p = sub.add_parser("fetch", help="download a job's frames")
    p.add_argument("job")
    p.add_argument("--out", default="genfx_out")
    _connection_args(p)
    p.set_defaults(func=cmd_fetch)

    p = sub.add_parser(
        "demo", help="start a local server with the demo model and generate the sample shot's collapse"
    )
    p.add_argument(
        "--out", default="demo_out", help="where the EXRs and contact sheet go (default %(default)s)"
    )
    p.add_argument("--data-dir", help="server data dir (default: a new temp dir)")
    p.add_argument(
        "--model",
        choices=("demo", "tiny"),
        default="demo",
        help="demo: trained on procedural collapses, steered by the shot's passes (default);"
        " tiny: the random-weight test model (noise)",
    )
    p.add_argument("--model-dir", default=str(DEMO_MODEL), help="the demo model (default %(default)s)")
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--height", type=int, default=144)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument(
        "--keyframe-step", type=int, default=4, help="diffuse every Nth frame, reproject the rest (default 4)"
    )
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_demo)

    from genfx.monitor.cli import add_monitor_parser  # argparse only: Qt loads when `genfx monitor` runs

    add_monitor_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:
        return launch_server(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except GenFXError as exc:
        print(f"genfx {args.command}: {exc}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as exc:
        print(f"genfx {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
