"""One place owns each rule, searched for across the tree (non-test sources):

- the request defaults (30 steps, guidance 7.5, strength 0.6, output name "genfx") are written down only in
  inference_server/defaults.py; clients leave fields unset and show ServerInfo.defaults;
- a frame's file name (``<name>.<frame:04d>.exr``) is built only by the server
  (inference_server/frame_writer.py); clients read FrameInfo.file_name / FrameDone.file_name /
  Job.file_pattern.

The searches are plain regular expressions over lines: pragmatic, and each is checked to find the code it
is meant to catch (the server's own definitions, and the client code this replaced).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCE_SUFFIXES = {".py", ".js", ".jsx", ".html", ".proto"}
SOURCE_NAMES = {"DialogScript", "PythonModule"}  # the Houdini asset's sections
# Generated from protos/ (which is searched), or not ours to ship.
SKIPPED_DIRS = {"node_modules", "proto", "tests", ".venv", ".git", "__pycache__"}

DEFAULTS_HOME = "inference_server/defaults.py"
FRAME_NAME_HOME = "inference_server/frame_writer.py"
CLIENT_ROOTS = ("genfx", "houdini_hda", "ae_bridge")

DEFAULT_PATTERNS = {
    "steps default 30": re.compile(
        r"""(?i)\bsteps\b.*(?<![\w.])30(?!\w|\.\d)|(?<![\w.])30(?!\w|\.\d).*\bsteps\b|default\s*\{\s*"30"\s*\}"""
    ),
    "guidance default 7.5": re.compile(r"(?<![\w.])7\.5(?!\w|\.\d)"),
    "strength default 0.6": re.compile(r"(?<![\w.])0\.6(?!\w|\.\d)"),
    'output name default "genfx"': re.compile(
        r"""(?:\bor\b|\|\||\?|:|\breturn\b|default\s*\{)\s*["']genfx["']|(?i:name)\w*\s*[=:]\s*["']genfx["']"""
    ),
}
# "genfx" that is not an output name: the pip distribution's name.
NOT_AN_OUTPUT_NAME = {
    ("houdini_hda/install_deps.py", """'name = "genfx"' in pyproject"""),
    ("houdini_hda/install_deps.py", 'return "genfx"'),
}

_PADDED = r"(?::0\d+d|:0\{|%0\d*d|padStart\(\s*\d|\$F\d)"  # a zero-padded frame number, any language
FRAME_NAME_PATTERNS = {
    "a zero-padded frame next to .exr": re.compile(rf"{_PADDED}.*\.exr|\.exr.*{_PADDED}"),
    "a string ending in .exr glued to a number": re.compile(r"""\+\s*["']\.exr["']|\.exr\.part"""),
    "the old ES3 helper": re.compile(r"\bframeFileName\b"),
}


def sources(*roots: str) -> Iterator[tuple[str, str]]:
    """(path relative to the repo, text) of every source file under ``roots``."""
    for root in roots:
        for path in sorted((ROOT / root).rglob("*")):
            rel = path.relative_to(ROOT)
            if any(part in SKIPPED_DIRS for part in rel.parts[:-1]) or not path.is_file():
                continue
            if path.suffix in SOURCE_SUFFIXES or path.name in SOURCE_NAMES:
                yield rel.as_posix(), path.read_text(encoding="utf-8")


def code_lines(text: str) -> Iterator[tuple[int, str]]:
    """(number, line) of the lines that are code: comments and Python docstrings left out, so prose
    may describe a name (``plate.$F4.exr``) without building one."""
    in_docstring = False
    for number, line in enumerate(text.splitlines(), 1):
        quotes = line.count('"""')
        if in_docstring or quotes:
            in_docstring = in_docstring != (quotes % 2 == 1)
            continue
        if not line.lstrip().startswith(("#", "//", "/*", "*")):
            yield number, line


def hits(
    patterns: dict[str, re.Pattern[str]], roots: tuple[str, ...], *, code_only: bool = False
) -> list[str]:
    found = []
    for rel, text in sources(*roots):
        lines = code_lines(text) if code_only else enumerate(text.splitlines(), 1)
        for number, line in lines:
            for what, pattern in patterns.items():
                if pattern.search(line):
                    found.append(f"{rel}:{number}: {what}: {line.strip()}")
    return found


def test_request_defaults_are_written_down_once() -> None:
    roots = (*CLIENT_ROOTS, "inference_server", "protos", "scripts", "examples")
    found = [
        hit
        for hit in hits(DEFAULT_PATTERNS, roots)
        if not hit.startswith(DEFAULTS_HOME + ":")
        and not any(hit.startswith(f"{path}:") and snippet in hit for path, snippet in NOT_AN_OUTPUT_NAME)
    ]
    assert found == [], "defaults belong to inference_server/defaults.py only:\n" + "\n".join(found)


# Sequences a client renders itself (inputs of a job, not its frames): the Houdini node's pass ROP.
PASS_SEQUENCE_HOME = ("houdini_hda/python3.11libs/genfx_houdini/passes_rop.py", "def pass_sequence")


def test_no_client_builds_a_frame_file_name() -> None:
    home, definition = PASS_SEQUENCE_HOME
    found = [
        hit
        for hit in hits(FRAME_NAME_PATTERNS, CLIENT_ROOTS, code_only=True)
        if not (hit.startswith(home + ":") and _in_function(home, definition, hit))
    ]
    assert found == [], "clients use the server's frame names:\n" + "\n".join(found)


def _in_function(path: str, definition: str, hit: str) -> bool:
    """Whether the hit's line is the first code line after ``definition`` (a one-line function body)."""
    lines = (ROOT / path).read_text(encoding="utf-8").splitlines()
    number = int(hit.split(":")[1])
    start = next(i for i, line in enumerate(lines, 1) if line.startswith(definition))
    body = [n for n, line in code_lines("\n".join(lines)) if n > start]
    return bool(body) and body[0] == number


@pytest.mark.parametrize(
    ("patterns", "line"),
    [
        # The server's own definitions: the searches above would find a copy of them.
        (DEFAULT_PATTERNS, "STEPS = 30"),
        (DEFAULT_PATTERNS, "GUIDANCE = 7.5"),
        (DEFAULT_PATTERNS, "STRENGTH = 0.6  # img2img strength"),
        (DEFAULT_PATTERNS, 'OUTPUT_NAME = "genfx"'),
        (FRAME_NAME_PATTERNS, 'return f"{name}.{frame:0{PADDING}d}.exr"'),
        # What clients had before the server named frames and published its defaults.
        (
            DEFAULT_PATTERNS,
            'p.add_argument("--steps", type=int, default=0, help="denoising steps (default 30)")',
        ),
        (DEFAULT_PATTERNS, 'default { "7.5" }'),
        (DEFAULT_PATTERNS, '<input id="steps" type="number" min="1" placeholder="30">'),
        (DEFAULT_PATTERNS, 'return name or "genfx"'),
        (DEFAULT_PATTERNS, 'return s.length ? s : "genfx";'),
        (DEFAULT_PATTERNS, """return f"{job.request.output.name or 'genfx'}.{frame:04d}.exr\""""),
        (FRAME_NAME_PATTERNS, 'dest = out / f"{name}.{frame:04d}.exr"'),
        (FRAME_NAME_PATTERNS, 'suffix = f".{frame:04d}.exr"'),
        (FRAME_NAME_PATTERNS, 'pattern = text[: -len(suffix)] + ".$F4.exr"'),
        (FRAME_NAME_PATTERNS, 'return name + "." + (frame < 0 ? "-" : "") + digits + ".exr";'),
        (
            FRAME_NAME_PATTERNS,
            "fs.writeFileSync(path.join(dir, name + '.' + String(f).padStart(4, '0') + '.exr'))",
        ),
        (FRAME_NAME_PATTERNS, 'for stale in spec.out_dir.glob(f"{spec.name}.*.exr.part"):'),
    ],
)
def test_the_searches_find_what_they_look_for(patterns: dict[str, re.Pattern[str]], line: str) -> None:
    assert any(p.search(line) for p in patterns.values()), line


def test_code_lines_leave_out_comments_and_docstrings() -> None:
    text = 'a = 1\n# x\n"""doc\nmore\n"""\nb = 2\n    // js\n * jsdoc\nc = """one line"""\nd = 4\n'
    assert [line for _, line in code_lines(text)] == ["a = 1", "b = 2", "d = 4"]


def test_the_homes_hold_the_definitions() -> None:
    """The files the searches exempt really define the rules (so the exemption hides no copy)."""
    defaults = (ROOT / DEFAULTS_HOME).read_text(encoding="utf-8")
    for pattern in DEFAULT_PATTERNS.values():
        assert pattern.search(defaults), pattern.pattern
    assert FRAME_NAME_PATTERNS["a zero-padded frame next to .exr"].search(
        (ROOT / FRAME_NAME_HOME).read_text(encoding="utf-8")
    )
