"""Acceptance run of the GenFX Houdini package in a real Houdini (this never ran here: no Houdini).

    hython houdini_hda/acceptance/hda_acceptance.py                      # the asset, offline
    hython houdini_hda/acceptance/hda_acceptance.py --server gpu:50051   # and a 2-frame Generate

Run it with the package enabled (HOUDINI_PACKAGE_DIR=<repo>/houdini_hda, or a genfx.json in your packages
folder) and the client installed (install_deps.py). It checks what the tests can only check against the fake
``hou``: that Houdini loads the expanded asset WITH its contents (the output node inside), that the node
passes geometry through unchanged, that every parameter genfx_houdini reads exists with its type, that the
Mantra pass ROP builds with every parameter GenFX sets (not rendered), that hdefereval does not import in
hython, and with --server that Generate makes frames while the network below the node re-cooks only a few
times. Prints one line per check; exit code 1 on any failure.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import hou

HERE = Path(__file__).resolve().parent
LIBRARY = HERE.parent / "otls" / "genfx.generate_collapse.1.0.hda"
NODE_TYPE = "genfx::generate_collapse::1.0"
# DialogScript type -> hou.parmTemplateType name
TEMPLATE_TYPES = {
    "string": "String",
    "oppath": "String",
    "image": "String",
    "directory": "String",
    "integer": "Int",
    "toggle": "Toggle",
    "float": "Float",
    "button": "Button",
    "ordinal": "Menu",
    "multiparm": "Folder",  # a multiparm's count parm belongs to a FolderParmTemplate (MultiparmBlock)
}
failures: list[str] = []


def check(what: str, ok: bool, detail: str = "") -> None:
    print(("PASS  " if ok else "FAIL  ") + what + (f"  ({detail})" if detail else ""))
    if not ok:
        failures.append(what)


def sop(node: object) -> hou.SopNode:
    if not isinstance(node, hou.SopNode):
        raise TypeError(f"{node!r} is not a SOP")
    return node


def parm(node: hou.OpNode, name: str) -> hou.Parm:
    found = node.parm(name)
    if found is None:
        raise KeyError(f"{node.path()} has no parm {name!r}")
    return found


def obj() -> hou.OpNode:
    found = hou.node("/obj")
    assert isinstance(found, hou.OpNode)
    return found


def guarded(what: str, fn: Callable[[], None]) -> None:
    try:
        fn()
    except Exception as exc:  # report and go on with the other checks
        check(what, False, f"{type(exc).__name__}: {exc}")


def asset_loads() -> hou.SopNode:
    if hou.nodeType(hou.sopNodeTypeCategory(), NODE_TYPE) is None:
        hou.hda.installFile(str(LIBRARY))  # an expanded library folder; the package's otls/ is the usual way
    node_type = hou.nodeType(hou.sopNodeTypeCategory(), NODE_TYPE)
    check("the asset type is known", isinstance(node_type, hou.OpNodeType))
    assert isinstance(node_type, hou.OpNodeType)
    definition = node_type.definition()
    sections = definition.sections() if definition is not None else {}
    check("its definition has Contents", "Contents.gz" in sections, ", ".join(sorted(sections)))
    geo = obj().createNode("geo", "genfx_acceptance")
    box = sop(geo.createNode("box"))
    node = sop(geo.createNode(NODE_TYPE))
    node.setInput(0, box)
    after = sop(geo.createNode("null", "after_genfx"))
    after.setInput(0, node)
    after.setDisplayFlag(True)
    names = [c.type().name() for c in node.children()]
    check("the node has its inner output node", "output" in names, str(names))
    box_geo, out_geo = box.geometry(), node.geometry()
    check("the node cooks to geometry", out_geo is not None)
    assert box_geo is not None and out_geo is not None
    same = len(out_geo.points()) == len(box_geo.points()) and len(out_geo.prims()) == len(box_geo.prims())
    pairs = zip(out_geo.points(), box_geo.points(), strict=True)
    same = same and all(a.position().isAlmostEqual(b.position()) for a, b in pairs)
    check("geometry passes through unchanged", same, f"{len(out_geo.points())} points")
    return node


def parms_match(node: hou.SopNode) -> None:
    from genfx_houdini import parms as P

    parm(node, P.LORAS).set(1)  # a row, so the instance parms (names with '#') exist
    for name, kind in P.TYPES.items():
        found = node.parm(P.instance(name, 1))
        got = found.parmTemplate().type().name() if found is not None else "missing"
        check(f"parm {name} is {kind}", got == TEMPLATE_TYPES[kind], got)


def no_hdefereval() -> None:
    try:
        import hdefereval  # noqa: F401

        check("hdefereval does not import without a UI", hou.isUIAvailable(), "it imported")
    except ImportError:
        check("hdefereval does not import without a UI", True)


def pass_rop(node: hou.SopNode) -> None:
    """Builds the Mantra pass ROP without rendering (no render licence needed): every parameter GenFX
    sets exists on this Houdini's Mantra node (passes_rop names a missing one)."""
    from genfx_houdini import node as genfx_node
    from genfx_houdini import passes_rop

    cam = obj().createNode("cam", "genfx_acceptance_passcam")
    parm(node, "pass_dir").set(tempfile.mkdtemp(prefix="genfx_acceptance_passes_"))
    rop = genfx_node.build_pass_rop(node, cam.path(), 1, 2)
    check("the pass ROP is a Mantra node in /out", rop.type().name() == passes_rop.ROP_TYPE, rop.path())
    planes = [parm(rop, f"vm_variable_plane{n}").evalAsString() for n in (1, 2, 3)]
    check("it renders Pz, the motion export and Af", planes == ["Pz", "motion_vector", "Af"], str(planes))
    files = passes_rop.pass_files(rop, 1)
    check("one file per pass for frame 1", sorted(files) == ["depth", "mask", "motion"], str(files))


def generate(node: hou.SopNode, server: str) -> None:
    from genfx_houdini import node as genfx_node

    cam = obj().createNode("cam", "genfx_acceptance_cam")
    parm(cam, "tz").set(10.0)
    parm(cam, "resx").set(128)
    parm(cam, "resy").set(72)
    parm(node, "camera").set(cam.path())
    parm(node, "server").set(server)
    parm(node, "frame_start").set(1)
    parm(node, "frame_end").set(2)
    parm(node, "steps").set(4)
    parm(node, "outdir").set(tempfile.mkdtemp(prefix="genfx_acceptance_"))
    after = sop(node.outputs()[0])
    cooks = after.cookCount()
    result = genfx_node.generate(node)  # hython: modal; Ctrl-C would cancel the job on the server
    check("Generate succeeded", result is not None and result.state == "succeeded", str(result))
    frames = sorted(Path(parm(node, "outdir").evalAsString()).glob("*.exr"))
    check("two frames on disk", len(frames) == 2, ", ".join(f.name for f in frames))
    after.geometry()
    recooks = after.cookCount() - cooks
    check("the network below re-cooked only at milestones", recooks <= 7, str(recooks))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--server", help="host:port of a GenFX server (genfx-server serve, tiny model is enough)"
    )
    args = parser.parse_args()
    print(f"Houdini {hou.applicationVersionString()}, Python {sys.version.split()[0]}")
    node: list[hou.SopNode] = []
    guarded("the asset loads and passes geometry", lambda: node.append(asset_loads()))
    if node:
        guarded("parameters", lambda: parms_match(node[0]))
    if node:
        guarded("pass ROP", lambda: pass_rop(node[0]))
    guarded("hdefereval", no_hdefereval)
    if args.server and node:
        guarded("Generate", lambda: generate(node[0], args.server))
    print(f"{len(failures)} failed" if failures else "all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
