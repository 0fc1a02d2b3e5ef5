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
LORAS: Final = "loras"  # multiparm: one row per LoRA
LORA_NAME: Final = "lora#"  # '#' = the row number, from 1
LORA_WEIGHT: Final = "lora_weight#"
CONTROLNET_SCALE: Final = "controlnet_scale"
RECORDED: Final = "recorded"  # read-only: the LoRAs / ControlNet the last frames' headers record

PLATE: Final = "plate"
MASK: Final = "mask"
DEPTH: Final = "depth"
MOTION: Final = "motion"
STRENGTH: Final = "strength"
PASS_SOURCE: Final = "pass_source"  # menu: FROM_FILES or FROM_RENDER
PASS_OBJECTS: Final = "pass_objects"
MOTION_EXPORT: Final = "motion_export"
PASS_DIR: Final = "pass_dir"
PASS_ROP: Final = "pass_rop"  # read-only: the Mantra node that renders the passes
RENDER_PASSES: Final = "render_passes"

# Pass Source menu tokens.
FROM_FILES: Final = "files"
FROM_RENDER: Final = "render"

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
    LORAS: "multiparm",
    LORA_NAME: "string",
    LORA_WEIGHT: "float",
    CONTROLNET_SCALE: "float",
    RECORDED: "string",
    PLATE: "image",
    MASK: "image",
    DEPTH: "image",
    MOTION: "image",
    STRENGTH: "float",
    PASS_SOURCE: "ordinal",
    PASS_OBJECTS: "string",
    MOTION_EXPORT: "string",
    PASS_DIR: "directory",
    PASS_ROP: "string",
    RENDER_PASSES: "button",
    OUTDIR: "directory",
    SET_BACKGROUND: "toggle",
    SERVER: "string",
    TOKEN: "string",
}

# Conditioning passes: parm -> the SDK's pass kind (genfx.request.PASS_FIELDS).
PASSES: Final[dict[str, str]] = {PLATE: "plate", MASK: "mask", DEPTH: "depth", MOTION: "motion"}
# The passes the pass ROP renders instead of Mask / Depth / Motion (the Plate stays a file sequence).
RENDERED_PASSES: Final[frozenset[str]] = frozenset({"mask", "depth", "motion"})


def instance(name: str, number: int) -> str:
    """A multiparm instance's parm name: ``instance(LORA_NAME, 2)`` -> "lora2"."""
    return name.replace("#", str(number))


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
