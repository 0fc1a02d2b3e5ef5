"""Per-frame export of a Houdini OBJ camera into the GenFX camera track (main thread only)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import hou

from genfx_houdini.errors import UserError

if TYPE_CHECKING:
    from genfx.camera import CameraTrack


def find_camera(node: hou.OpNode, path: str) -> hou.ObjNode:
    """The OBJ camera that ``path`` (absolute, or relative to ``node``) names."""
    if not path.strip():
        raise UserError("Camera is empty: pick the shot camera (an OBJ camera) on the Shot tab.")
    cam = node.node(path.strip())
    if cam is None:
        raise UserError(f"Camera {path!r} does not exist: pick the shot camera on the Shot tab.")
    if not isinstance(cam, hou.ObjNode) or cam.parm("focal") is None or cam.parm("aperture") is None:
        raise UserError(f"{cam.path()} is not a camera: pick an OBJ camera on the Shot tab.")
    return cam


def _cam_parm(cam: hou.ObjNode, name: str) -> hou.Parm:
    parm = cam.parm(name)
    if parm is None:
        raise UserError(
            f"{cam.path()} has no {name!r} parameter: pick a Houdini camera (cam) on the Shot tab."
        )
    return parm


def camera_resolution(cam: hou.ObjNode, frame: float) -> tuple[int, int]:
    return _cam_parm(cam, "resx").evalAsIntAtFrame(frame), _cam_parm(cam, "resy").evalAsIntAtFrame(frame)


def _check_lens(cam: hou.ObjNode, frame: int) -> None:
    """The wire carries a centred pinhole: refuse what would not line up rather than send it wrong."""
    projection = cam.parm("projection")
    if projection is not None and projection.evalAsStringAtFrame(frame) != "perspective":
        raise UserError(
            f"{cam.path()}: projection is {projection.evalAsStringAtFrame(frame)!r} at frame {frame};"
            " GenFX needs a perspective camera."
        )
    for name, neutral in (("winx", 0.0), ("winy", 0.0), ("winsizex", 1.0), ("winsizey", 1.0)):
        parm = cam.parm(name)
        if parm is not None and abs(parm.evalAsFloatAtFrame(frame) - neutral) > 1e-9:
            raise UserError(
                f"{cam.path()}: screen window {name} is {parm.evalAsFloatAtFrame(frame):g} at frame {frame};"
                f" GenFX frames are centred and uncropped: set {name} to {neutral:g}."
            )


def export_camera(cam: hou.ObjNode, frames: Sequence[int]) -> CameraTrack:
    """One CameraSample per frame: the world transform at that frame's time, and the lens parms
    evaluated at that frame (focal may be animated). The resolution is the camera's at the first frame."""
    from genfx.camera import CameraError, CameraTrack, from_houdini

    if not frames:
        raise UserError("The frame range is empty.")
    resx, resy = camera_resolution(cam, frames[0])
    samples = []
    for frame in frames:
        _check_lens(cam, frame)
        # worldTransformAtTime takes seconds, not frames. hou.Matrix4 is ROW-vector (p * M, translation
        # in the last row); the wire is COLUMN-vector. genfx.camera.from_houdini is the one place in
        # GenFX that transposes a Houdini matrix: pass asTuple() through untouched.
        world = cam.worldTransformAtTime(hou.frameToTime(frame))
        try:
            sample = from_houdini(
                world.asTuple(),
                frame=frame,
                focal=_cam_parm(cam, "focal").evalAsFloatAtFrame(frame),
                focal_units=_cam_parm(cam, "focalunits").evalAsStringAtFrame(frame),
                aperture=_cam_parm(cam, "aperture").evalAsFloatAtFrame(frame),
                resx=resx,
                resy=resy,
                aspect=_cam_parm(cam, "aspect").evalAsFloatAtFrame(frame),
                near=_cam_parm(cam, "near").evalAsFloatAtFrame(frame),
                far=_cam_parm(cam, "far").evalAsFloatAtFrame(frame),
            )
        except CameraError as exc:
            raise UserError(f"{cam.path()} at frame {frame}: {exc}") from exc
        samples.append(sample)
    return CameraTrack(width=resx, height=resy, samples=tuple(samples))
