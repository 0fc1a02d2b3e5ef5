"""The "Generate Collapse" shelf tool: a node wired to the selected geometry, looking through the
selected (or the only) camera."""

from __future__ import annotations

from collections.abc import Mapping

import hou

from genfx_houdini import parms as P
from genfx_houdini.errors import UserError
from genfx_houdini.node import _report, on_camera_changed

NODE_TYPE = "genfx::generate_collapse::1.0"


def _is_camera(node: hou.Node) -> bool:
    return (
        isinstance(node, hou.ObjNode) and node.parm("focal") is not None and node.parm("aperture") is not None
    )


def _only_camera_in_scene() -> hou.ObjNode | None:
    obj = hou.node("/obj")
    cameras = [n for n in obj.children() if isinstance(n, hou.ObjNode) and _is_camera(n)] if obj else []
    return cameras[0] if len(cameras) == 1 else None


def _source_geometry(selected: tuple[hou.Node, ...]) -> hou.SopNode | None:
    for node in selected:
        if isinstance(node, hou.SopNode):
            return node
    for node in selected:
        if isinstance(node, hou.ObjNode) and not _is_camera(node):
            display = node.displayNode()
            if isinstance(display, hou.SopNode):
                return display
    return None


def create_generate_collapse(kwargs: Mapping[str, object] | None = None) -> hou.OpNode | None:
    """Creates genfx::generate_collapse::1.0 after the selected SOP (or the display SOP of the selected
    geometry object), with Camera set to the selected camera, or to the scene's only camera."""
    selected = hou.selectedNodes()
    source = _source_geometry(selected)
    if source is None:
        _report(
            None,
            UserError(
                "Select the collapse geometry (a SOP node, or the object that holds it) and, optionally,"
                " the shot camera, then click Generate Collapse again."
            ),
        )
        return None
    camera = next((n for n in selected if isinstance(n, hou.ObjNode) and _is_camera(n)), None)
    camera = camera or _only_camera_in_scene()
    network = source.parent()
    if network is None:  # pragma: no cover - a SOP always lives in a network
        raise TypeError(f"{source.path()} has no parent network")
    node = network.createNode(NODE_TYPE)
    if not isinstance(node, hou.OpNode):  # pragma: no cover - createNode always makes an OpNode here
        raise TypeError(f"{NODE_TYPE} did not create an OpNode")
    node.setInput(0, source)
    node.moveToGoodPosition()
    camera_parm = node.parm(P.CAMERA)
    if camera is not None and camera_parm is not None:
        camera_parm.set(camera.path())
        on_camera_changed({"node": node})
    node.setSelected(True, clear_all_selected=True)
    return node
