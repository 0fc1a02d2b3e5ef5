"""``source.json``: who owns a source folder, under which licence, with whose consent (pure, no torch).

Every source folder handed to ``genfx-train ingest`` carries one. It is the only way material enters a
dataset, so a studio can prove what a model was trained on::

    {"owner": "Studio X", "licence": "proprietary-with-consent", "consent": true,
     "description": "rubble sim renders, show ABC", "kind": "render",
     "caption": "a concrete building collapsing, {view}{dust}"}

``kind`` (render / plate / scan) and ``caption`` (a template, see etl/captions.py) are optional.

ACCEPTED_LICENCES is the one list of licences the ETL accepts; anything else is refused by name.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SOURCE_FILE = "source.json"

# SPDX ids for open licences that allow training and redistribution of derived weights, plus one
# studio-internal term: material the studio owns or licensed, with written consent (``consent: true``).
# CC-BY-NC / ND, "unknown" and footage without consent are deliberately absent.
ACCEPTED_LICENCES: tuple[str, ...] = ("CC0-1.0", "CC-BY-4.0", "CC-BY-SA-4.0", "proprietary-with-consent")
SOURCE_KINDS = ("render", "plate", "scan")


class SourceError(ValueError):
    """A source that cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class SourceRecord:
    owner: str
    licence: str
    consent: bool
    description: str
    kind: str
    caption: str  # template; "" = the default template
    sha256: str  # of the source.json bytes: the manifest pins exactly which record was accepted

    def as_json(self) -> dict[str, Any]:
        return {
            "owner": self.owner,
            "licence": self.licence,
            "consent": self.consent,
            "description": self.description,
            "kind": self.kind,
            "caption": self.caption,
            "source_json_sha256": self.sha256,
        }


def _text(data: dict[str, Any], key: str, path: Path, *, required: bool = True) -> str:
    value = data.get(key, "" if not required else None)
    if not isinstance(value, str) or (required and not value.strip()):
        raise SourceError(f"{path}: '{key}' must be a non-empty string (got {value!r})")
    return value.strip()


def parse_source(raw: bytes, path: Path) -> SourceRecord:
    """Validate the bytes of a source.json; SourceError naming ``path`` and the field on bad input."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise SourceError(f"{path}: must be a JSON object")
    licence = _text(data, "licence", path)
    if licence not in ACCEPTED_LICENCES:
        raise SourceError(
            f"{path}: licence {licence!r} is not accepted (accepted: {', '.join(ACCEPTED_LICENCES)})"
        )
    consent = data.get("consent")
    if consent is not True:
        raise SourceError(f"{path}: 'consent' must be true (got {consent!r}): no footage without permission")
    kind = data.get("kind", "render")
    if kind not in SOURCE_KINDS:
        raise SourceError(f"{path}: 'kind' must be one of {', '.join(SOURCE_KINDS)} (got {kind!r})")
    return SourceRecord(
        owner=_text(data, "owner", path),
        licence=licence,
        consent=True,
        description=_text(data, "description", path, required=False),
        kind=str(kind),
        caption=_text(data, "caption", path, required=False),
        sha256=hashlib.sha256(raw).hexdigest(),
    )


def read_source(folder: Path) -> SourceRecord:
    """The folder's source.json, validated; SourceError when missing, unreadable or not accepted."""
    path = Path(folder) / SOURCE_FILE
    if not path.is_file():
        raise SourceError(f"{path}: missing (every source folder needs a {SOURCE_FILE} licence record)")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SourceError(f"{path}: unreadable ({exc.strerror or exc})") from None
    return parse_source(raw, path)


def source_json(owner: str, licence: str, description: str, kind: str = "render", caption: str = "") -> str:
    """The text of a source.json (what the procedural generator writes for its own output)."""
    record: dict[str, Any] = {
        "owner": owner,
        "licence": licence,
        "consent": True,
        "description": description,
        "kind": kind,
    }
    if caption:
        record["caption"] = caption
    return json.dumps(record, indent=2, sort_keys=True) + "\n"
