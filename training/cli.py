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
