"""The Mantra render node (type ``ifd``, in /out) as far as genfx_houdini sets it up.

Sources: SideFX's docs for the Mantra render node (nodes/out/ifd.html: Valid Frame Range, Start/End/Inc,
Camera, Candidate and Forced Objects, Output Picture, Images > Extra Image Planes) and the parameter
names SideFX's own assets save for an ``ifd`` node (sideeffects/SideFXLabs: ``motion_vectors.hda``
stores ``trange``, ``f1``/``f2``, ``camera``, ``vobject``, ``forceobject``, ``vm_picture``,
``vm_numaux``; ``texture_sheets.hda`` and ``games_baker.hda`` store the extra-plane multiparm
``vm_disable_plane#``, ``vm_variable_plane#``, ``vm_vextype_plane#``, ``vm_channel_plane#``,
``vm_usefile_plane#``, ``vm_filename_plane#``, ``vm_quantize_plane#``, ``vm_sfilter_plane#``,
``vm_pfilter_plane#``; instances count from 1). Only these exist on the fake node: a parameter name
that is not here is ``None`` from ``Node.parm``, as in Houdini, so a typo in genfx_houdini cannot pass.

``f`` is a float tuple in Houdini; the fake holds its components f1, f2, f3 (what the code sets).
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import OpenEXR

from tests.houdini.dialogscript import Default, ParmDef


def _p(name: str, kind: str, default: str = "", menu: tuple[tuple[str, str], ...] = ()) -> ParmDef:
    return ParmDef(name=name, type=kind, defaults=[Default(default)], menu_items=list(menu))


def _expr(name: str, expression: str) -> ParmDef:
    return ParmDef(name=name, type="float", defaults=[Default(expression, True, "hscript-expr")])


PLANE = [
    _p("vm_disable_plane#", "toggle", "0"),
    _p("vm_variable_plane#", "string", ""),
    _p(
        "vm_vextype_plane#",
        "string",
        "vector",
        (
            ("float", "Float Type"),
            ("vector", "Vector Type"),
            ("vector4", "Vector4 Type"),
            ("unitvector", "Unit Vector Type"),
        ),
    ),
    _p("vm_channel_plane#", "string", ""),
    _p("vm_usefile_plane#", "toggle", "0"),
    _p("vm_filename_plane#", "image", ""),
    _p(
        "vm_quantize_plane#",
        "string",
        "half",
        (
            ("8", "8 bit integer"),
            ("16", "16 bit integer"),
            ("half", "16 bit float"),
            ("float", "32 bit float"),
        ),
    ),
    _p("vm_sfilter_plane#", "string", "alpha"),
    _p("vm_pfilter_plane#", "string", ""),
]

IFD_PARMS = [
    _p("execute", "button"),
    _p(
        "trange",
        "ordinal",
        "0",
        (
            ("off", "Render Current Frame"),
            ("normal", "Render Frame Range"),
            ("on", "Render Frame Range Only (Strict)"),
        ),
    ),
    _expr("f1", "$FSTART"),
    _expr("f2", "$FEND"),
    _p("f3", "float", "1"),
    _p("camera", "oppath", "/obj/cam1"),
    _p("vobject", "string", "*"),
    _p("forceobject", "string", ""),
    _p("vm_picture", "image", "$HIP/render/$HIPNAME.$OS.$F4.exr"),
    _p("override_camerares", "toggle", "0"),
    _p("vm_quickplane_Pz", "toggle", "0"),
    ParmDef(name="vm_numaux", type="multiparm", defaults=[Default("0")], instances=PLANE, start_offset=1),
]


# ---------------------------------------------------------------------------------------------------
# Rendering: what a Mantra node writes when it renders (RopNode.render on an ``ifd`` node)
#
# Behaviour modelled (SideFX's Mantra render node docs): the frames are ``render``'s frame_range, else
# the node's Start/End/Inc when Valid Frame Range renders a range, else the current frame; the image is
# the camera's resolution; Output Picture gets the beauty (R, G, B, A) plus every enabled extra plane
# that does not write its own file; a plane with "Different File" on writes its own file. A VEX variable
# that no shader exports renders as zeros (Mantra warns, it does not fail); ``Pz`` and ``Af`` are
# Mantra's own. A missing camera or an unwritable output is an error, and the render raises.
# Assumed (no SideFX page states it): a float plane is one channel named by its Channel Name; a vector
# plane is <name>.r/.g/.b.
#
# The scene is the simplest that makes the planes testable: every rendered object covers the middle of
# the frame at the distance from the camera to the world origin, moving by MOTION pixels per frame.

MOTION = (2.0, -1.0)  # what a shader exporting screen-space motion writes, in pixels, +Y up


class RenderError(Exception):
    """An error Mantra reports; the fake RopNode.render raises it as hou.OperationFailed."""


def _frames(rop: Any, frame_range: Sequence[float], current: float) -> list[float]:
    if frame_range:
        start, end = float(frame_range[0]), float(frame_range[1])
        step = float(frame_range[2]) if len(frame_range) > 2 else 1.0
    elif rop.parm("trange").evalAsString() == "off":
        return [current]
    else:
        start, end, step = (rop.parm(f"f{i}").evalAtFrame(current) for i in (1, 2, 3))
    frames, f = [], start
    while f <= end + 1e-9:
        frames.append(f)
        f += step
    return frames


def _rendered_objects(rop: Any) -> list[Any]:
    """Objects Mantra renders: Candidate Objects (``vobject``, a name pattern) plus Forced Objects."""
    obj = rop.node("/obj")
    found = []
    for child in obj.children() if obj is not None else ():
        candidates = rop.parm("vobject").evalAsString().split()
        forced = rop.parm("forceobject").evalAsString().split()
        if any(fnmatch.fnmatchcase(child.name(), p) for p in candidates) or any(
            fnmatch.fnmatchcase(child.path(), p) for p in forced
        ):
            found.append(child)
    return found


def _write(path: str, channels: dict[str, npt.NDArray[Any]]) -> None:
    if not os.path.isdir(os.path.dirname(path) or "."):
        raise RenderError(f"Unable to open output file {path}")  # Mantra does not make folders
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    with OpenEXR.File(header, {k: np.ascontiguousarray(v) for k, v in channels.items()}) as f:
        f.write(path)


def render(
    rop: Any,
    frame_range: Sequence[float],
    current: float,
    exports: set[str],
    frame_to_time: Callable[[float], float],
) -> list[float]:
    """Renders like Mantra; returns the frames rendered. ``exports``: VEX variables the objects'
    shaders export."""
    frames = _frames(rop, frame_range, current)
    for frame in frames:
        cam = rop.node(rop.parm("camera").evalAsStringAtFrame(frame))
        if cam is None or cam.type().name() != "cam":
            raise RenderError(f"Unable to find camera {rop.parm('camera').evalAsStringAtFrame(frame)!r}")
        w, h = int(cam.parm("resx").evalAtFrame(frame)), int(cam.parm("resy").evalAtFrame(frame))
        covered = np.zeros((h, w), np.float32)
        if _rendered_objects(rop):
            covered[h // 4 : h - h // 4, w // 4 : w - w // 4] = 1.0
        distance = float(
            np.linalg.norm(np.asarray(cam.worldTransformAtTime(frame_to_time(frame)).extractTranslates()))
        )
        values = {
            "Pz": [covered * distance],
            "Af": [covered],
            "Cf": [covered * 0.5] * 3,
        }
        beauty = {"R": covered * 0.5, "G": covered * 0.5, "B": covered * 0.5, "A": covered}
        for n in range(1, int(rop.parm("vm_numaux").eval()) + 1):
            if rop.parm(f"vm_disable_plane{n}").eval():
                continue
            variable = rop.parm(f"vm_variable_plane{n}").evalAsString()
            if not variable:
                continue
            vextype = rop.parm(f"vm_vextype_plane{n}").evalAsString()
            channel = rop.parm(f"vm_channel_plane{n}").evalAsString() or variable
            dtype = np.float32 if rop.parm(f"vm_quantize_plane{n}").evalAsString() == "float" else np.float16
            if variable in values:
                data = values[variable]
            elif variable in exports and vextype == "vector":
                data = [covered * MOTION[0], covered * MOTION[1], covered * 0.0]
            else:
                data = [covered * 0.0] * (1 if vextype == "float" else 3)
            if vextype == "float":
                plane = {channel: data[0].astype(dtype)}
            else:
                plane = {f"{channel}.{c}": d.astype(dtype) for c, d in zip("rgb", data, strict=False)}
            if rop.parm(f"vm_usefile_plane{n}").eval():
                _write(rop.parm(f"vm_filename_plane{n}").evalAsStringAtFrame(frame), plane)
            else:
                beauty.update(plane)
        _write(rop.parm("vm_picture").evalAsStringAtFrame(frame), beauty)
    return frames
