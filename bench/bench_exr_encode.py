"""EXR encode time per 4K frame through the SDK (genfx.exr.encode_frame) against a raw OpenEXR write of
the same pixels and the same header, interleaved in one run; prints the ratios.

- "SDK, half in": what the server's frame writer does (its colour step writes half pixels straight).
  Target: within 1.05x of raw.
- "SDK, float32 in": the same frame handed over as float32 (the SDK casts it to half first). Against
  raw half pixels this was the old comparison of this bench (1.35x): the difference is the cast, not
  the SDK. Its fair baseline is raw OpenEXR given the same float32 array and casting it to half itself
  (the file is half either way); that ratio is printed too. Raw with a minimal header shows what the
  full header costs (nothing measurable).

    python -m bench.bench_exr_encode [--repeats 9] [--compression zip]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np
import OpenEXR

from genfx.exr import COMPRESSIONS, FrameMetadata, encode_frame, header_attributes
from tests.synthetic import camera


def _raw(header: dict[str, Any], pixels: np.ndarray) -> int:
    buf = io.BytesIO()
    with OpenEXR.File(dict(header), {"RGBA": pixels}) as f:
        f.write(buf)
    return len(buf.getvalue())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--compression", default="zip", choices=COMPRESSIONS)
    parser.add_argument("--width", type=int, default=3840)
    parser.add_argument("--height", type=int, default=2160)
    args = parser.parse_args()
    w, h = args.width, args.height
    rng = np.random.default_rng(0)
    # Smooth image + grain: compresses like a render, not like noise.
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([np.sin(xx / 97), np.cos(yy / 61), np.sin((xx + yy) / 143)], -1) * 0.4 + 0.5
    rgba = np.concatenate([base + rng.normal(0, 0.01, base.shape), np.ones((h, w, 1))], -1).astype(np.float32)
    half = np.ascontiguousarray(rgba, dtype=np.float16)
    meta = FrameMetadata(camera(1001, 0.0), w, h, 1001, Fraction(24), job_id="bench", prompt="dust")
    header = header_attributes(meta, args.compression)
    minimal = {"compression": header["compression"], "type": header["type"]}

    cases: dict[str, Callable[[], int]] = {
        "raw OpenEXR, half in, same header": lambda: _raw(header, half),
        "SDK encode_frame, half in": lambda: len(encode_frame(half, meta, args.compression)),
        "SDK encode_frame, float32 in": lambda: len(encode_frame(rgba, meta, args.compression)),
        "raw OpenEXR, half in, minimal header": lambda: _raw(minimal, half),
        "raw OpenEXR, float32 in, cast to half": lambda: _raw(header, rgba.astype(np.float16)),
    }
    wall: dict[str, list[float]] = {k: [] for k in cases}
    cpu: dict[str, list[float]] = {k: [] for k in cases}
    sizes = {}
    for i in range(args.repeats):  # interleaved, rotating the order, so contention hits all alike
        names = list(cases)
        for name in names[i % len(names) :] + names[: i % len(names)]:
            t0, c0 = time.perf_counter(), time.process_time()
            sizes[name] = cases[name]()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    base_name = next(iter(cases))
    base_wall, base_cpu = statistics.median(wall[base_name]), statistics.median(cpu[base_name])
    print(
        f"{w}x{h} RGBA half, {args.compression}, OpenEXR threads {OpenEXR.global_thread_count()},"
        f" median of {args.repeats} (wall / CPU seconds, ratio to raw):"
    )
    for name in cases:
        mw, mc = statistics.median(wall[name]), statistics.median(cpu[name])
        print(
            f"  {name:<37} {mw:6.3f} s {mw / base_wall:5.2f}x   CPU {mc:6.3f} s {mc / base_cpu:5.2f}x"
            f"   {sizes[name] / 1e6:.1f} MB"
        )
    med = statistics.median
    sdk_half = med(wall["SDK encode_frame, half in"]) / base_wall
    sdk_f32 = med(wall["SDK encode_frame, float32 in"]) / med(wall["raw OpenEXR, float32 in, cast to half"])
    print(f"  SDK / raw on the same input: half {sdk_half:.2f}x, float32 {sdk_f32:.2f}x (target <= 1.05)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
