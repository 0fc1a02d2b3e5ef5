"""The Mantra render node that makes a Generate Collapse node's passes from the simulation (main thread).

Mantra (node type ``ifd`` in /out; SideFX's docs: "Mantra render node", nodes/out/ifd.html) renders the
node's camera over its frame range and writes three extra image planes (Images > Extra Image Planes,
the ``vm_numaux`` multiparm), each to its own EXR sequence in the node's Pass Folder:

=========  ================================================  ======  ==============  =================
pass       VEX variable (``vm_variable_plane#``)              type    channel         file
=========  ================================================  ======  ==============  =================
depth      ``Pz``: camera-space Z, along the view axis        float   ``Z``           depth.$F4.exr
motion     the shader export named by Motion Vector Export    vector  motionvector    motion.$F4.exr
mask       ``Af``: the rendered objects' alpha (coverage)     float   ``A``           mask.$F4.exr
=========  ================================================  ======  ==============  =================

The channel names are ones the server reads (genfx/passes.py: depth ``Z``, motion ``motionvector.R/G``
and the other spellings, a mask's alpha; a file holding one image plane is read by its first channels
too). Mantra has no built-in screen-space motion variable: the material of the rendered objects must
export it, in pixels to the next frame with +Y up (SideFX's "MotionVector Example for Mantra" on the
getblurP VOP page exports ``motion_vector``; SideFXLabs' Motion Vectors ROP builds the same with getblurP
and toNDC). An empty Motion Vector Export renders no motion plane.

Only the objects named by Render Objects are rendered (``forceobject``; ``vobject`` empty), by default
the object that holds the node, so the mask is the simulation's coverage. Parameter names (``trange``,
``f1``..``f3``, ``camera``, ``vobject``, ``forceobject``, ``vm_picture``, ``vm_numaux`` and the plane
multiparm) are the ones SideFX's docs describe and SideFX's own Labs assets save on a Mantra node; a
missing one raises UserError naming it rather than being skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import hou

from genfx_houdini.errors import UserError

ROP_TYPE = "ifd"
OUT = "/out"
RENDER_FRAME_RANGE = 1  # `trange` menu index of "normal": Render Frame Range ("off" = current frame only)


@dataclass(frozen=True)
class Plane:
    kind: str  # the SDK's pass kind
    variable: str  # "" = the Motion Vector Export parm's value
    vextype: str
    channel: str
    file_stem: str


PLANES = (
    Plane("depth", "Pz", "float", "Z", "depth"),
    Plane("motion", "", "vector", "motionvector", "motion"),
    Plane("mask", "Af", "float", "A", "mask"),
)


def rop_name(node: hou.OpNode) -> str:
    """/out/genfx_passes_<object>_<node>: one pass ROP per Generate Collapse node."""
    parent = node.parent()
    owner = parent.name() if parent is not None else ""
    return re.sub(r"[^A-Za-z0-9_]", "_", f"genfx_passes_{owner}_{node.name()}")


def hip_relative(path: str) -> str:
    """/shots/a/genfx/x -> $HIP/genfx/x when the hip file is in /shots/a (the hip file can move)."""
    hip = hou.text.expandString("$HIP").rstrip("/")
    return "$HIP" + path[len(hip) :] if hip and path.startswith(hip + "/") else path


def _rop_parm(rop: hou.OpNode, name: str) -> hou.Parm:
    parm = rop.parm(name)
    if parm is None:
        raise UserError(
            f"{rop.path()} has no parameter {name!r}: this Houdini's Mantra render node differs from the"
            " one GenFX sets up (houdini_hda/README.md, Passes). Render the passes yourself and use"
            " Existing Pass Sequences."
        )
    return parm


def _set_rop(rop: hou.OpNode, name: str, value: str | int | float) -> None:
    parm = _rop_parm(rop, name)
    parm.deleteAllKeyframes()  # f1/f2 hold $FSTART/$FEND expressions: a set value must not fight them
    parm.set(value)


def _find_or_create(node: hou.OpNode) -> hou.RopNode:
    out = hou.node(OUT)
    if out is None:
        raise UserError(f"This scene has no {OUT} network to hold the pass render node.")
    name = rop_name(node)
    rop = out.node(name)
    if rop is None:
        rop = out.createNode(ROP_TYPE, name)
    if not isinstance(rop, hou.RopNode) or rop.type().name() != ROP_TYPE:
        raise UserError(f"{OUT}/{name} exists and is not a Mantra render node: rename or delete it.")
    return rop


def build(
    node: hou.OpNode,
    *,
    camera_path: str,
    frame_start: int,
    frame_end: int,
    pass_dir: str,
    objects: str,
    motion_export: str,
) -> hou.RopNode:
    """Creates (or updates) the node's Mantra ROP: camera, frame range, objects and one extra image plane
    per pass, each written to ``<pass_dir>/<pass>.$F4.exr``. Returns it; nothing is rendered."""
    rop = _find_or_create(node)
    folder = hip_relative(pass_dir.rstrip("/"))
    _set_rop(rop, "camera", camera_path)
    _set_rop(rop, "trange", RENDER_FRAME_RANGE)
    _set_rop(rop, "f1", frame_start)
    _set_rop(rop, "f2", frame_end)
    _set_rop(rop, "f3", 1)
    _set_rop(rop, "vobject", "")
    _set_rop(rop, "forceobject", objects)
    _set_rop(rop, "vm_picture", pass_sequence(folder, "beauty"))
    planes = [p for p in PLANES if p.variable or motion_export]
    _set_rop(rop, "vm_numaux", len(planes))
    for number, plane in enumerate(planes, start=1):
        _set_rop(rop, f"vm_disable_plane{number}", 0)
        _set_rop(rop, f"vm_variable_plane{number}", plane.variable or motion_export)
        _set_rop(rop, f"vm_vextype_plane{number}", plane.vextype)
        _set_rop(rop, f"vm_channel_plane{number}", plane.channel)
        _set_rop(rop, f"vm_quantize_plane{number}", "float")  # depth and motion need 32-bit floats
        _set_rop(rop, f"vm_usefile_plane{number}", 1)
        _set_rop(rop, f"vm_filename_plane{number}", pass_sequence(folder, plane.file_stem))
    return rop


def pass_sequence(folder: str, stem: str) -> str:
    """The one name of a pass sequence the ROP renders (an input of the job, not a generated frame:
    those the server names); Houdini expands ``$F4`` per frame."""
    return f"{folder}/{stem}.$F4.exr"


def pass_files(rop: hou.OpNode, frame: int) -> dict[str, str]:
    """{pass kind: the file the ROP writes for ``frame``}, read back from the ROP's own parms."""
    by_channel = {plane.channel: plane.kind for plane in PLANES}
    files = {}
    for number in range(1, _rop_parm(rop, "vm_numaux").evalAsInt() + 1):
        kind = by_channel.get(_rop_parm(rop, f"vm_channel_plane{number}").evalAsString())
        if kind is not None:  # a channel GenFX does not write is not a pass it uploads
            files[kind] = _rop_parm(rop, f"vm_filename_plane{number}").evalAsStringAtFrame(frame)
    return files


def render(rop: hou.RopNode, frame_start: int, frame_end: int) -> None:
    """Renders the frame range (blocks, as Render to Disk does; Esc in Houdini's render stops it)."""
    try:
        rop.render(frame_range=(frame_start, frame_end, 1), verbose=False)
    except hou.OperationFailed as exc:
        raise UserError(f"Rendering the passes with {rop.path()} failed: {exc.instanceMessage()}") from exc
