"""Reading an expanded (``hotl -x``) asset library the way Houdini does, and the rules every real one follows.

The rules come from expanded libraries written by Houdini itself (SideFXLabs keeps its assets expanded in
git; CapybaraCrowporation/houdini-comfyui-bridge too), not from our own files:

* every section folder (the library, each definition, each ``*.dir`` of a section) holds a ``Sections.list``:
  a first line ``""``, then ``<file>\\t<section>`` lines (a name with spaces is quoted);
* every listed entry exists: a file, a folder, or for ``X.gz`` the folder ``X.dir``; a listed folder has its
  own ``Sections.list``. A folder Houdini finds on disk but not in the list is not part of the asset;
* a definition with ``Contents`` also lists ``InternalFileOptions`` (JSON);
* ``Contents.dir/Sections.list`` is ``""`` then ``Contents.mime\\tContents.mime``;
* ``Contents.mime`` is one multipart MIME document: the declared boundary, every part named
  (``filename=``) once, with a Content-Type, closed by the final boundary;
* in it, each child listed in ``hdaroot.order`` has ``.init`` (its type) and ``.def`` (flags, inputs); each
  input is a sibling in the order list or ``(n)``, the asset's own input n, within ``Inputs:`` of the index;
  and a SOP asset has an ``output`` node with ``outputidx`` 0, or a child with the display flag.

``load_contents`` is what the fake ``hou`` builds the asset's children from: a definition whose
``Sections.list`` does not lead to ``Contents.mime`` loads with no children, as in Houdini.
"""

from __future__ import annotations

import email
import email.message
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

SECTIONS = "Sections.list"


@dataclass
class Child:
    """One node inside the asset: its type, flags and inputs (source name or "(n)" per input index)."""

    name: str
    type_name: str
    display: bool = False
    inputs: dict[int, str] = field(default_factory=dict)
    parms: str = ""

    def parm_value(self, name: str) -> str | None:
        match = re.search(rf"^{re.escape(name)}\t\[[^\]]*\]\t\(\t(.*?)\t\)$", self.parms, re.M)
        return match.group(1).strip() if match else None


def read_sections(folder: Path) -> dict[str, str] | None:
    """``{file: section}`` from ``folder/Sections.list``; None when Houdini would find no list."""
    path = folder / SECTIONS
    if not path.is_file():
        return None
    lines = path.read_text(encoding="utf-8").split("\n")
    entries: dict[str, str] = {}
    if lines[0] != '""':
        raise ValueError(f"{path}: first line is {lines[0]!r}, not '\"\"'")
    for line in lines[1:]:
        if not line:
            continue
        parts = line.split("\t")
        if len(parts) != 2:
            raise ValueError(f"{path}: {line!r} is not <file>TAB<section>")
        entries[parts[0].strip('"')] = parts[1].strip('"')
    return entries


def entry_path(folder: Path, file_name: str) -> Path:
    """Where a listed entry lives on disk: ``X.gz`` sections are expanded into an ``X.dir`` folder."""
    if file_name.endswith(".gz"):
        return folder / (file_name[: -len(".gz")] + ".dir")
    return folder / file_name


def mime_parts(text: str) -> dict[str, str]:
    message = email.message_from_string(text)
    return {
        str(p.get_filename()): str(p.get_payload())
        for p in message.walk()
        if p.get_filename() and not p.is_multipart()
    }


def load_contents(definition: Path) -> dict[str, str] | None:
    """The asset's Contents as Houdini reads an expanded definition: through the Sections.list files.
    None when the definition has no Contents Houdini can find."""
    sections = read_sections(definition)
    if sections is None or "Contents.gz" not in sections:
        return None
    contents_dir = entry_path(definition, "Contents.gz")
    inner = read_sections(contents_dir)
    if inner is None or "Contents.mime" not in inner:
        return None
    return mime_parts((contents_dir / "Contents.mime").read_text(encoding="utf-8"))


def _def_block(text: str, name: str) -> list[str]:
    match = re.search(rf"^{name}\n\{{\n(.*?)^\}}", text, re.M | re.S)
    return match.group(1).splitlines() if match else []


def children(parts: dict[str, str]) -> list[Child]:
    """The nodes inside the asset, in ``hdaroot.order``."""
    order = parts.get("hdaroot.order", "0").split()
    count, names = int(order[0]), order[1:]
    if count != len(names):
        raise ValueError(f"hdaroot.order says {count} nodes but lists {names}")
    out = []
    for name in names:
        init = parts[f"hdaroot/{name}.init"]
        definition = parts[f"hdaroot/{name}.def"]
        type_match = re.search(r"^type = (\S+)$", init, re.M)
        flags = re.search(r"^flags = (.*)$", definition, re.M)
        inputs = {}
        for line in _def_block(definition, "inputs"):
            fields = line.split()
            inputs[int(fields[0])] = fields[1]
        out.append(
            Child(
                name=name,
                type_name=type_match.group(1) if type_match else "",
                display=bool(flags and re.search(r"\bdisplay on\b", flags.group(1))),
                inputs=inputs,
                parms=parts.get(f"hdaroot/{name}.parm", ""),
            )
        )
    return out


def max_inputs(library: Path) -> int:
    index = (library / "INDEX__SECTION").read_text(encoding="utf-8")
    match = re.search(r"^Inputs:\s+(\d+) to (\d+)$", index, re.M)
    return int(match.group(2)) if match else 0


def problems(library: Path) -> list[str]:
    """Every way ``library`` (an expanded ``.hda`` folder) breaks the rules above; [] when none."""
    found: list[str] = []

    def walk(folder: Path) -> None:
        try:
            sections = read_sections(folder)
        except ValueError as exc:
            found.append(str(exc))
            return
        if sections is None:
            found.append(f"{folder.relative_to(library.parent)} has no {SECTIONS}")
            return
        for file_name in sections:
            path = entry_path(folder, file_name)
            if not path.exists():
                found.append(f"{folder.relative_to(library.parent)}/{SECTIONS} lists {file_name}: missing")
            elif path.is_dir():
                walk(path)

    walk(library)
    library_sections = read_sections(library) or {}
    for file_name in library_sections:
        definition = library / file_name
        if not definition.is_dir():
            continue
        found += _definition_problems(library, definition)
    return found


def _definition_problems(library: Path, definition: Path) -> list[str]:
    found: list[str] = []
    sections = read_sections(definition) or {}
    if "Contents.gz" not in sections:
        return found
    if "InternalFileOptions" not in sections:
        found.append(f"{definition.name}: Contents without InternalFileOptions in {SECTIONS}")
    elif (definition / "InternalFileOptions").is_file():
        json.loads((definition / "InternalFileOptions").read_text(encoding="utf-8"))
    contents_dir = entry_path(definition, "Contents.gz")
    if read_sections(contents_dir) != {"Contents.mime": "Contents.mime"}:
        found.append(f"{definition.name}/Contents.dir/{SECTIONS} is not '\"\"' + Contents.mime")
    mime = contents_dir / "Contents.mime"
    if not mime.is_file():
        return found + [f"{definition.name}: no Contents.mime"]
    found += _mime_problems(mime.read_text(encoding="utf-8"))
    parts = mime_parts(mime.read_text(encoding="utf-8"))
    try:
        nodes = children(parts)
    except (KeyError, ValueError) as exc:
        return found + [f"Contents.mime: a child lacks its parts ({exc})"]
    names = {c.name for c in nodes}
    limit = max_inputs(library)
    for child in nodes:
        for index, source in child.inputs.items():
            indirect = re.fullmatch(r"\((\d+)\)", source)
            if indirect and int(indirect.group(1)) >= limit:
                found.append(f"{child.name} input {index} is the asset's input {source}; it has {limit}")
            elif not indirect and source not in names:
                found.append(f"{child.name} input {index} comes from {source!r}, not a node of the asset")
    if parts.get("node_type", "").strip() == "Sop":
        outputs = [c for c in nodes if c.type_name == "output" and (c.parm_value("outputidx") or "0") == "0"]
        if not outputs and not any(c.display for c in nodes):
            found.append("Contents: no output node with outputidx 0 and no child with the display flag")
    return found


def _mime_problems(text: str) -> list[str]:
    found: list[str] = []
    header = re.search(r'^Content-Type: multipart/mixed; boundary="([^"]+)"$', text, re.M)
    if not header or not text.startswith("MIME-Version: 1.0\n"):
        return ["Contents.mime: no MIME-Version / multipart boundary header"]
    boundary = header.group(1)
    if not text.rstrip("\n").endswith(f"--{boundary}--"):
        found.append("Contents.mime: not closed by the final boundary")
    chunks = text.split(f"\n--{boundary}")[1:]
    seen: set[str] = set()
    for chunk in chunks:
        if chunk.startswith("--"):
            continue
        name = re.search(r'^Content-Disposition: attachment; filename="([^"]+)"$', chunk, re.M)
        if not name or not re.search(r"^Content-Type: \S+$", chunk, re.M):
            found.append(f"Contents.mime: a part without filename or Content-Type: {chunk[:80]!r}")
            continue
        if name.group(1) in seen:
            found.append(f"Contents.mime: {name.group(1)} appears twice")
        seen.add(name.group(1))
    message = email.message_from_string(text)
    if not message.is_multipart() or message.defects:
        found.append(f"Contents.mime: not a well-formed multipart document ({message.defects})")
    return found
