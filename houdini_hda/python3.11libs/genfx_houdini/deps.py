"""Where the GenFX client and its light dependencies live inside the Houdini package.

``install_deps.py`` pip-installs them into ``<package>/python3.11libs/genfx_deps`` (or the folder named by
the ``GENFX_HOUDINI_DEPS`` environment variable). That folder is APPENDED to ``sys.path``, so anything
Houdini already ships (numpy above all) keeps winning over a copy of ours. ``GENFX_HOUDINI_DEPS_FIRST=1``
puts it first instead, for a studio whose path holds an older grpcio or protobuf from another tool.
"""

from __future__ import annotations

import os
import re
import sys
import traceback
from pathlib import Path

from genfx_houdini.errors import UserError

ENV_VAR = "GENFX_HOUDINI_DEPS"
FIRST_ENV_VAR = "GENFX_HOUDINI_DEPS_FIRST"
DEFAULT_DIR = Path(__file__).resolve().parent.parent / "genfx_deps"
# (import name, distribution name) of what genfx.client needs at import time.
_NEEDED = (("grpc", "grpcio"), ("google/protobuf", "protobuf"), ("genfx", "genfx"), ("OpenEXR", "openexr"))


def deps_dir() -> Path:
    return Path(os.environ.get(ENV_VAR) or DEFAULT_DIR)


def add_to_path() -> None:
    folder = str(deps_dir())
    if not os.path.isdir(folder):
        return
    if os.environ.get(FIRST_ENV_VAR, "") not in ("", "0"):
        if sys.path[:1] != [folder]:
            if folder in sys.path:
                sys.path.remove(folder)
            sys.path.insert(0, folder)
    elif folder not in sys.path:
        sys.path.append(folder)


def _version_at(entry: Path, module: str, dist: str) -> str:
    """The version of ``module`` installed in the sys.path entry ``entry``: from its .dist-info folder,
    else its ``__version__`` line; "?" when neither says."""
    for info in entry.glob("*.dist-info"):
        match = re.fullmatch(rf"{re.escape(dist)}-([^-]+)\.dist-info", info.name, re.IGNORECASE)
        if match:
            return match.group(1)
    init = entry / module / "__init__.py"
    try:
        found = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", init.read_text(errors="replace"), re.M)
    except OSError:
        found = None
    return found.group(1) if found else "?"


def copies_on_path() -> list[str]:
    """Every copy of each needed library on sys.path, in the order Python searches (the first wins)."""
    lines = []
    for module, dist in _NEEDED:
        found = []
        for entry in sys.path:
            base = Path(entry or ".")
            if (base / module).is_dir() or (base / f"{module}.py").is_file():
                found.append(f"{_version_at(base, module, dist)} at {base / module}")
        name = module.replace("/", ".")
        lines.append(f"{name} " + ("; ".join(found) if found else "not found"))
    return lines


def require_sdk() -> None:
    """Raise a UserError that says how to install the client when ``genfx`` cannot be imported, and which
    copies of grpc/protobuf Python found when the import fails another way (an older copy from another
    tool earlier on the path fails with a version error, not an ImportError)."""
    add_to_path()
    try:
        import genfx.client  # noqa: F401
    except ImportError as exc:
        raise UserError(
            "The GenFX client is not installed for Houdini's Python. Run\n"
            "    hython <genfx package>/install_deps.py\n"
            f"(it installs into {deps_dir()}), then restart Houdini.",
            details=f"{type(exc).__name__}: {exc}\nsys.path = {sys.path}",
        ) from exc
    except Exception as exc:  # a version check in grpc's or protobuf's generated code, most likely
        found = "\n".join(f"    {line}" for line in copies_on_path())
        raise UserError(
            f"The GenFX client is installed in {deps_dir()} but does not load: {type(exc).__name__}."
            " Copies found on Houdini's Python path, the first one wins:\n"
            f"{found}\n"
            "An older copy from another tool (PYTHONPATH, another package) comes before GenFX's. Remove it"
            f" from the path, or set {FIRST_ENV_VAR}=1 (houdini.env or the package file) to put GenFX's"
            " folder first, then restart Houdini.",
            details=f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}\nsys.path = {sys.path}",
        ) from exc
