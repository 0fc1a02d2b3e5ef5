"""Display images <-> the pixels a frame's EXR holds (scene-linear, premultiplied, half floats).

The worker keeps keyframes as ``written_display`` of what it wrote, and a resumed job reads the same
thing back from disk, so a keyframe seeds later frames identically whether or not the job was
interrupted in between.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from genfx.colour import model_to_scene, scene_to_model
from genfx.proto import genfx_pb2 as pb
from inference_server.engine.upscale import resize

F32 = npt.NDArray[np.float32]
F16 = npt.NDArray[np.float16]

COLORSPACE_NAMES = {
    pb.COLOR_SPACE_UNSPECIFIED: "linear_rec709",
    pb.COLOR_SPACE_LINEAR_REC709: "linear_rec709",
    pb.COLOR_SPACE_ACESCG: "acescg",
}
METRIC_WIDTH = 256  # the warping error is measured on frames this wide: cheap at 4K, stable at 64 px


def encode_rgba(display: F32, alpha: F32 | None, colorspace: str) -> F16:
    """Display sRGB (H, W, 3) -> scene-linear RGBA half, premultiplied by ``alpha`` (1 when None).
    Written straight into the half array: no float32 RGBA copy at 4K."""
    linear = model_to_scene(display, colorspace)
    rgba = np.empty(display.shape[:2] + (4,), np.float16)
    if alpha is None:
        rgba[..., :3] = linear
        rgba[..., 3] = 1.0
    else:
        a = alpha.astype(np.float32, copy=False)
        np.multiply(linear, a[..., None], out=linear)
        rgba[..., :3] = linear
        rgba[..., 3] = a
    return rgba


def written_display(rgba: npt.NDArray[np.floating], colorspace: str) -> F32:
    """Back from written pixels to straight (un-premultiplied) display sRGB; 0 where alpha is 0."""
    rgb = rgba[..., :3].astype(np.float32)
    a = rgba[..., 3:4].astype(np.float32)
    if not np.all(a == 1.0):  # no mask: nothing to un-premultiply
        rgb = np.divide(rgb, a, out=np.zeros_like(rgb), where=a > 1e-6)
    return scene_to_model(rgb, colorspace)


def metric_size(width: int, height: int) -> tuple[int, int]:
    mw = min(METRIC_WIDTH, width)
    return mw, max(1, round(height * mw / width))


def metric_image(rgba: npt.NDArray[np.floating], colorspace: str) -> F32:
    """The frame as the warping error sees it: premultiplied RGB, made small in linear light (where
    averaging pixels is right, and a 4K frame costs a resize instead of a 4K colour conversion), then
    in display encoding."""
    h, w = rgba.shape[:2]
    small = resize(rgba[..., :3].astype(np.float32), *metric_size(w, h), clip=False)
    return scene_to_model(small, colorspace)
