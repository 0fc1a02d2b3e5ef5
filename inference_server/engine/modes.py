"""Which generation mode a shot runs, from the passes the request carries (no torch here)."""

from __future__ import annotations

from collections.abc import Collection


def shot_mode(passes: Collection[str]) -> str:
    """The diffusion mode for a shot whose frames carry ``passes`` (subset of plate/mask/depth).

    Depth wins (the simulation's shape drives the look; a mask then only sets the output alpha), then a
    mask (inpaint inside it), then a plate (img2img over it); nothing given is text-to-image.
    """
    if "depth" in passes:
        return "depth"
    if "mask" in passes:
        return "inpaint"
    if "plate" in passes:
        return "img2img"
    return "txt2img"
