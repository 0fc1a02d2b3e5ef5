"""ListJobs page tokens: where the previous page ended, and which listing it belongs to. Opaque to
clients (base64url of a small JSON object); a token from another listing is refused."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence

from inference_server.jobs import Cursor
from inference_server.validation import invalid

_VERSION = 1


def encode(cursor: Cursor, states: Sequence[int]) -> str:
    body = {"v": _VERSION, "c": cursor.created_at, "i": cursor.job_id, "s": sorted(set(states))}
    return base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode()).decode().rstrip("=")


def decode(token: str, states: Sequence[int]) -> Cursor:
    """The cursor in ``token``; INVALID_ARGUMENT naming page_token when it is not one of ours or belongs
    to a listing with other states."""
    try:
        body = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if not isinstance(body, dict) or body.get("v") != _VERSION:
            raise ValueError("unknown version")
        cursor = Cursor(float(body["c"]), str(body["i"]))
        token_states = sorted(int(s) for s in body["s"])
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise invalid("page_token: not a token from ListJobs; pass next_page_token as it came") from exc
    if token_states != sorted(set(states)):
        raise invalid("page_token: comes from a listing with other states; keep the same states")
    return cursor
