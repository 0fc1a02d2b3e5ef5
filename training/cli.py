"""``genfx-train``: synth -> ingest -> fit. Exit status 2 on bad input, with a message naming the file."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

from tqdm import tqdm


def _synth(args: argparse.Namespace) -> int:
    from training.synth.generate import SynthSettings, synthesize

    settings = SynthSettings(
        shots=args.shots,
        frames=args.frames,
        width=args.width,
        height=args.height,
        seed=args.seed,
        fps=Fraction(args.fps),
    )
    with tqdm(total=settings.shots, unit="shot", desc="synth", file=sys.stderr) as bar:
        shots = synthesize(args.out, settings, progress=lambda n: bar.update(n - bar.n))
    print(f"wrote {len(shots)} shots x {settings.frames} frames to {args.out}")
    return 0


def _ingest(args: argparse.Namespace) -> int:
    from training.etl.ingest import IngestSettings, ingest

    settings = IngestSettings(
        buckets=tuple(args.bucket or ("512x512",)),
        shard_size=args.shard_size,
        ray_address=args.ray_address,
        workers=args.workers,
        latent_model=args.cache_latents,
    )
    manifest = ingest(args.sources, args.out, settings)
    for refused in manifest["refused"]:
        print(f"REFUSED {refused['path']}: {refused['reason']}", file=sys.stderr)
    for error in manifest["errors"]:
        print(f"UNREADABLE {error['error']}", file=sys.stderr)
    print(
        f"dataset {args.out}: {len(manifest['samples'])} samples in {len(manifest['shards'])} shards from "
        f"{len(manifest['sources'])} source(s); {len(manifest['refused'])} refused, "
        f"{len(manifest['errors'])} unreadable; dataset_sha256 {manifest['dataset_sha256']}"
    )
    return 0


def _fit(args: argparse.Namespace) -> int:
    from training.train.cli import run_fit

    return run_fit(args)


def _init_model(args: argparse.Namespace) -> int:
    from training.demo.recipe import build_demo_base

    build_demo_base(args.out)
    print(f"wrote the untrained demo-architecture model to {args.out}")
    return 0


def _assemble(args: argparse.Namespace) -> int:
    import json

    from training.demo.assemble import assemble

    info = json.loads(args.build_info.read_text(encoding="utf-8")) if args.build_info else None
    out = assemble(args.out, base=args.base_model, parts=args.part, half=args.fp16, build_info=info)
    print(f"assembled {out}")
    return 0


def _demo_shot(args: argparse.Namespace) -> int:
    from training.demo.demo_shot import write_demo_shot

    written = write_demo_shot(args.camera, args.out, args.width, args.height, beauty=args.beauty)
    print(f"wrote {len(written)} pass files to {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genfx-train", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("synth", help="procedural collapse renders (EXR passes + camera + source.json)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--shots", type=int, default=4)
    p.add_argument("--frames", type=int, default=12)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--height", type=int, default=96)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fps", type=int, default=24)
    p.set_defaults(func=_synth)

    p = sub.add_parser("ingest", help="licensed source folders -> webdataset shards + manifest (Ray Data)")
    p.add_argument("sources", type=Path, nargs="+")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--bucket", action="append", help="WIDTHxHEIGHT, repeatable (default 512x512)")
    p.add_argument("--shard-size", type=int, default=256)
    p.add_argument("--ray-address", default=None, help="join a Ray cluster (default: a local ray.init())")
    p.add_argument("--workers", type=int, default=None, help="CPUs for the local Ray instance")
    p.add_argument("--cache-latents", type=Path, default=None, metavar="MODEL_DIR")
    p.set_defaults(func=_ingest)

    p = sub.add_parser("fit", help="train LoRA / sim-pass ControlNet / UNet on a dataset (accelerate)")
    from training.train.options import add_fit_arguments

    add_fit_arguments(p)
    p.set_defaults(func=_fit)

    p = sub.add_parser("init-model", help="the demo model's architecture with seeded, untrained weights")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=_init_model)

    p = sub.add_parser(
        "assemble", help="a model folder from a base model and trained parts (fit runs' vae/unet/controlnet)"
    )
    p.add_argument("--base-model", type=Path, required=True)
    p.add_argument(
        "--part", action="append", default=[], metavar="RUN", help="a finished fit run folder (repeatable)"
    )
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--fp16", action="store_true", help="store the weights as float16")
    p.add_argument("--build-info", type=Path, help="a JSON object recorded as the card's 'build' (timings)")
    p.set_defaults(func=_assemble)

    p = sub.add_parser(
        "demo-shot", help="the procedural collapse's passes through a shot camera (genfx demo)"
    )
    p.add_argument("--camera", type=Path, default=Path("examples/shots/building_orbit.json"))
    p.add_argument("--out", type=Path, default=Path("examples/shots/collapse_orbit"))
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--height", type=int, default=144)
    p.add_argument("--beauty", action="store_true", help="also the procedural render (ground truth)")
    p.set_defaults(func=_demo_shot)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # weights come from local folders only, never a hub
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, FileExistsError, FileNotFoundError) as exc:
        print(f"genfx-train {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
