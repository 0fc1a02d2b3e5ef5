"""4K in-between frames per second on this machine (no diffusion: reproject + blend two keyframes).

Two 4096x2160 keyframes and per-frame depth come from the synthetic wall-and-card shot (exact depth);
each in-between reprojects both keyframes into its camera with depth tests and blends them. Reported:
the in-between itself, and the whole frame the worker writes (colour via OCIO + alpha + EXR ZIP write).

    python -m bench.bench_inbetween_4k [--frames 4] [--width 4096 --height 2160]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

from genfx.exr import FrameMetadata, write_frame
from inference_server.engine.motion import ShotFlow
from inference_server.engine.reproject import View
from inference_server.engine.temporal import inbetween
from inference_server.frame_output import encode_rgba
from tests.synthetic import render, track


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=4, help="in-betweens to time")
    parser.add_argument("--width", type=int, default=4096)
    parser.add_argument("--height", type=int, default=2160)
    args = parser.parse_args()
    w, h, n = args.width, args.height, args.frames
    t = track(range(1, n + 3), w, h, step=0.05)
    views = {s.frame: View(s, w, h) for s in t.samples}
    first, last = t.samples[0].frame, t.samples[-1].frame
    scenes = {f: render(views[f].sample, w, h) for f in views}
    flow = ShotFlow(w, h, views, lambda f: scenes[f][1], None, depth_test=True)

    t0 = time.perf_counter()
    outs = {}
    for f in range(first + 1, last):
        outs[f], coverage = inbetween(f, (first, scenes[first][0]), (last, scenes[last][0]), flow)
    warp_s = (time.perf_counter() - t0) / n

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        for f, img in outs.items():
            rgba = encode_rgba(img, None, "linear_rec709")
            meta = FrameMetadata(views[f].sample, w, h, f, Fraction(24))
            write_frame(Path(tmp) / f"ib.{f:04d}.exr", rgba, meta)
        write_s = (time.perf_counter() - t0) / n

    print(
        f"{w}x{h} in-between (reproject 2 keyframes + blend): {warp_s:.2f} s/frame"
        f" = {1 / warp_s:.2f} frames/s"
    )
    print(f"  + colour (OCIO) + premultiply + EXR ZIP write:   {write_s:.2f} s/frame")
    print(
        f"  whole in-between frame: {1 / (warp_s + write_s):.2f} frames/s (coverage of last {coverage:.3f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
