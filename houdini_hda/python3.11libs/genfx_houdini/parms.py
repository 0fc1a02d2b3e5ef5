"""Every parameter of genfx::generate_collapse::1.0 that the Python reads or writes, with its
DialogScript type. A test parses the asset's DialogScript and checks this table against it, and that no
other parameter name is used on the node."""

from __future__ import annotations

from typing import Final

# name -> DialogScript `type`
GENERATE: Final = "generate"
CANCEL: Final = "cancel"
LOAD_RESULTS: Final = "load_results"
STATUS: Final = "status"  # milestones only: progress is kept out of cooking parms (node.py)
JOB_ID: Final = "job_id"

CAMERA: Final = "camera"
FRAME_START: Final = "frame_start"
FRAME_END: Final = "frame_end"
KEYFRAME_STEP: Final = "keyframe_step"
OVERRIDE_RES: Final = "override_res"
RESX: Final = "resx"
RESY: Final = "resy"

PROMPT: Final = "prompt"
NEGATIVE_PROMPT: Final = "negative_prompt"
MODEL: Final = "model"
SEED: Final = "seed"
STEPS: Final = "steps"
GUIDANCE: Final = "guidance"
SERVER_DEFAULTS: Final = "server_defaults"  # read-only: what the server uses for parms left at 0

PLATE: Final = "plate"
MASK: Final = "mask"
DEPTH: Final = "depth"
STRENGTH: Final = "strength"

OUTDIR: Final = "outdir"
SET_BACKGROUND: Final = "set_background"

SERVER: Final = "server"
TOKEN: Final = "token"

TYPES: Final[dict[str, str]] = {
    GENERATE: "button",
    CANCEL: "button",
    LOAD_RESULTS: "button",
    STATUS: "string",
    JOB_ID: "string",
    CAMERA: "oppath",
    FRAME_START: "integer",
    FRAME_END: "integer",
    KEYFRAME_STEP: "integer",
    OVERRIDE_RES: "toggle",
    RESX: "integer",
    RESY: "integer",
    PROMPT: "string",
    NEGATIVE_PROMPT: "string",
    MODEL: "string",
    SEED: "integer",
    STEPS: "integer",
    GUIDANCE: "float",
    SERVER_DEFAULTS: "string",
    PLATE: "image",
    MASK: "image",
    DEPTH: "image",
    STRENGTH: "float",
    OUTDIR: "directory",
    SET_BACKGROUND: "toggle",
    SERVER: "string",
    TOKEN: "string",
}

# Conditioning passes: parm -> the SDK's pass kind (genfx.request.PASS_FIELDS).
PASSES: Final[dict[str, str]] = {PLATE: "plate", MASK: "mask", DEPTH: "depth"}

# Parameters of the OBJ camera (Houdini's `cam` type) that the camera export reads or writes.
CAMERA_PARMS: Final[frozenset[str]] = frozenset(
    {
        "focal",
        "focalunits",
        "aperture",
        "resx",
        "resy",
        "aspect",
        "near",
        "far",
        "projection",
        "winx",
        "winy",
        "winsizex",
        "winsizey",
        "vm_background",
    }
)
