"""Where the GenFX client and its light dependencies live inside the Houdini package.

``install_deps.py`` pip-installs them into ``<package>/python3.11libs/genfx_deps`` (or the folder named by
the ``GENFX_HOUDINI_DEPS`` environment variable). That folder is APPENDED to ``sys.path``, so anything
Houdini already ships (numpy above all) keeps winning over a copy of ours.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from genfx_houdini.errors import UserError

ENV_VAR = "GENFX_HOUDINI_DEPS"
DEFAULT_DIR = Path(__file__).resolve().parent.parent / "genfx_deps"


def deps_dir() -> Path:
    return Path(os.environ.get(ENV_VAR) or DEFAULT_DIR)


def add_to_path() -> None:
    folder = str(deps_dir())
    if os.path.isdir(folder) and folder not in sys.path:
        sys.path.append(folder)


def require_sdk() -> None:
    """Raise a UserError that says how to install the client when ``genfx`` cannot be imported."""
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
