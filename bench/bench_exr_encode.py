"""EXR encode time per 4K frame through the SDK (genfx.exr.encode_frame: full header, camera matrices,
half conversion) against a raw OpenEXR write of the same array in the same run; prints the ratio.

    python -m bench.bench_exr_encode [--repeats 5] [--compression zip]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from fractions import Fraction

import numpy as np
import OpenEXR

from genfx.exr import _COMPRESSION, FrameMetadata, encode_frame
from tests.synthetic import camera


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--compression", default="zip", choices=sorted(_COMPRESSION))
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
    meta = FrameMetadata(camera(1001, 0.0), w, h, 1001, Fraction(24))

    def sdk() -> int:
        return len(encode_frame(rgba, meta, args.compression))

    def raw() -> int:
        buf = io.BytesIO()
        header = {"compression": _COMPRESSION[args.compression], "type": OpenEXR.scanlineimage}
        with OpenEXR.File(header, {"RGBA": half}) as f:
            f.write(buf)
        return len(buf.getvalue())

    times: dict[str, list[float]] = {"sdk": [], "raw": []}
    sizes = {}
    for _ in range(args.repeats):  # interleaved, so contention hits both alike
        for name, fn in (("sdk", sdk), ("raw", raw)):
            t0 = time.perf_counter()
            sizes[name] = fn()
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{w}x{h} RGBA half, {args.compression}, median of {args.repeats}:")
    print(
        f"  SDK encode_frame (float32 in, header, matrices): {med['sdk']:.3f} s  {sizes['sdk'] / 1e6:.1f} MB"
    )
    print(
        f"  raw OpenEXR write (float16 in, minimal header):  {med['raw']:.3f} s  {sizes['raw'] / 1e6:.1f} MB"
    )
    print(f"  ratio SDK / raw: {med['sdk'] / med['raw']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
