"""Size buckets: each frame is centre-cropped to the aspect of the nearest bucket, then area-resized."""

from __future__ import annotations

import math
import re

from genfx.resample import centre_crop_box

_SIZE = re.compile(r"^(\d+)x(\d+)$")
LATENT_MULTIPLE = 8  # SD's VAE downsamples by 8 and the UNet by up to 8 more: sizes are multiples of 64


def parse_bucket(text: str) -> tuple[int, int]:
    m = _SIZE.match(text.strip())
    if not m or int(m[1]) <= 0 or int(m[2]) <= 0:
        raise ValueError(f"bucket {text!r}: expected WIDTHxHEIGHT, e.g. 768x768")
    w, h = int(m[1]), int(m[2])
    if w % LATENT_MULTIPLE or h % LATENT_MULTIPLE:
        raise ValueError(f"bucket {text!r}: width and height must be multiples of {LATENT_MULTIPLE}")
    return w, h


def choose_bucket(width: int, height: int, buckets: list[tuple[int, int]]) -> tuple[int, int]:
    """The bucket whose aspect ratio is nearest (in log ratio) to the frame's; first wins ties."""
    aspect = math.log(width / height)
    return min(buckets, key=lambda b: abs(math.log(b[0] / b[1]) - aspect))


def crop_for(width: int, height: int, bucket: tuple[int, int]) -> tuple[int, int, int, int]:
    return centre_crop_box(width, height, bucket[0] / bucket[1])
