"""Errors the artist can act on, and the wording of server errors (no Houdini imports)."""

from __future__ import annotations

TITLE = "GenFX: Generate Collapse"


class UserError(Exception):
    """Something the artist can fix. ``message`` says what is wrong and what to do; ``details`` holds
    the raw server text or a traceback for the dialog's details pane."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.details = details


def _hint_for_precondition(message: str) -> str:
    """The parm to change for a mode the model lacks (mode names: ModelInfo.capabilities in the proto)."""
    if "'temporal'" in message:
        return (
            " Keyframe Step > 1 needs the temporal mode, which this model does not offer:"
            " set Keyframe Step to 1, or pick a model that supports it."
        )
    passes = {"'img2img'": "Plate", "'inpaint'": "Mask", "'depth'": "Depth"}
    for mode, parm in passes.items():
        if mode in message:
            return f" Clear {parm} on the Passes tab, or pick a model that supports it."
    return ""


def describe_server_error(code: str, message: str, address: str) -> UserError:
    """A GenFXError (gRPC status name + server message) -> words for the artist."""
    details = f"{code}: {message}"
    if code == "UNAVAILABLE":
        text = (
            f"Cannot reach the GenFX server at {address}. Is it running, and is the address right"
            " (Server tab, or the GENFX_SERVER environment variable)?"
        )
    elif code == "DEADLINE_EXCEEDED":
        text = f"The GenFX server at {address} did not answer in time. Try again, or check the server."
    elif code in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
        text = (
            f"The GenFX server at {address} refused the token: set Token on the Server tab, or the"
            f" GENFX_TOKEN environment variable. ({message})"
        )
    elif code == "FAILED_PRECONDITION":
        text = f"The server cannot run this request: {message}.{_hint_for_precondition(message)}"
    elif code == "INVALID_ARGUMENT":
        text = f"The server rejected a setting: {message}"
    elif code == "RESOURCE_EXHAUSTED":
        text = f"The server is at one of its limits: {message}"
    elif code == "NOT_FOUND":
        text = f"The server does not know this: {message}"
    elif code == "DATA_LOSS":
        text = f"A frame arrived damaged: {message}. Click Load Results to fetch it again."
    else:
        text = f"The GenFX server reported an error ({code}): {message}"
    return UserError(text, details)
