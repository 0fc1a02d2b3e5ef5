"""Install the GenFX client and its light dependencies where Houdini's Python finds them.

Run it with Houdini's own Python, so the wheels match it (Houdini 20.5 and 21 use Python 3.11)::

    hython /path/to/houdini_hda/install_deps.py                 # Linux / macOS
    "C:\\Program Files\\Side Effects Software\\Houdini 20.5.487\\bin\\hython.exe" install_deps.py

It runs ``hython -m pip install --target <package>/python3.11libs/genfx_deps`` with: the ``genfx`` client
(from this checkout, or ``--genfx SPEC``), grpcio, protobuf and openexr. Never torch. numpy is installed
only when the running Python has none: Houdini ships numpy, and a second copy could clash with it.
``genfx_houdini`` appends that folder to ``sys.path`` (Houdini's own modules keep precedence).

Offline / studio installs: ``--find-links WHEELHOUSE --no-index``. ``--register PACKAGES_DIR`` also writes a
``genfx.json`` with this package's absolute path into a Houdini packages folder (e.g.
``$HOUDINI_USER_PREF_DIR/packages``). ``--dry-run`` prints the commands and changes nothing.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_TARGET = PACKAGE_DIR / "python3.11libs" / "genfx_deps"
REPO_ROOT = PACKAGE_DIR.parent
# The client's runtime needs (genfx/client.py, camera.py, exr.py); same ranges as pyproject.toml.
LIGHT_DEPS = ("grpcio>=1.85.1", "protobuf>=7.35,<8", "openexr>=3.3,<4")
NUMPY = "numpy>=1.24"
HOUDINI_PYTHON = (3, 11)


def genfx_source() -> str:
    """This checkout (a directory pip can build) when there is one, else the package name."""
    pyproject = REPO_ROOT / "pyproject.toml"
    if pyproject.is_file() and 'name = "genfx"' in pyproject.read_text(encoding="utf-8"):
        return str(REPO_ROOT)
    return "genfx"


def requirements(genfx: str, *, with_numpy: bool) -> list[str]:
    return [genfx, *LIGHT_DEPS, *([NUMPY] if with_numpy else [])]


def pip_command(
    python: str,
    target: Path,
    reqs: Sequence[str],
    *,
    find_links: Sequence[str] = (),
    no_index: bool = False,
) -> list[str]:
    # --no-deps: exactly the list above, so genfx's own metadata cannot drag in numpy or extras.
    cmd = [python, "-m", "pip", "install", "--upgrade", "--no-deps", "--target", str(target)]
    for link in find_links:
        cmd += ["--find-links", link]
    if no_index:
        cmd.append("--no-index")
    return cmd + list(reqs)


def pip_env(environ: dict[str, str]) -> dict[str, str]:
    """The environment for pip: without PYTHONPATH, so other tools' packages cannot leak in."""
    env = dict(environ)
    env.pop("PYTHONPATH", None)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def package_json(package_dir: Path) -> dict[str, object]:
    """genfx.json for a Houdini packages folder, pointing at ``package_dir`` by absolute path."""
    return {
        "load_package_once": True,
        "enable": "houdini_version >= '20.5' and houdini_version < '22'",
        "env": [{"GENFX_HOUDINI": package_dir.as_posix()}],
        "hpath": "$GENFX_HOUDINI",
    }


def has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--target", type=Path, default=DEFAULT_TARGET, help="install folder (default: %(default)s)"
    )
    parser.add_argument(
        "--genfx", default=genfx_source(), help="genfx requirement: a path, wheel or 'genfx==X'"
    )
    parser.add_argument("--find-links", action="append", default=[], metavar="DIR", help="extra wheel folder")
    parser.add_argument("--no-index", action="store_true", help="do not use the package index")
    parser.add_argument("--register", type=Path, metavar="PACKAGES_DIR", help="also write genfx.json there")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, change nothing")
    args = parser.parse_args(argv)

    if sys.version_info[:2] != HOUDINI_PYTHON:
        print(
            f"This is Python {sys.version_info[0]}.{sys.version_info[1]}; Houdini 20.5/21 use Python 3.11."
            " Run this script with hython so the wheels match Houdini's Python.",
            file=sys.stderr,
        )
        if not args.dry_run:
            return 2
    with_numpy = not has_module("numpy")
    cmd = pip_command(
        sys.executable,
        args.target,
        requirements(args.genfx, with_numpy=with_numpy),
        find_links=args.find_links,
        no_index=args.no_index,
    )
    print(("would run: " if args.dry_run else "running: ") + " ".join(cmd))
    if not with_numpy:
        print("numpy: using the numpy this Python already has")
    if args.register:
        print(f"{'would write' if args.dry_run else 'writing'} {args.register / 'genfx.json'}")
    if args.dry_run:
        return 0

    env = pip_env(dict(os.environ))
    if subprocess.run([sys.executable, "-m", "pip", "--version"], env=env).returncode != 0:
        print(
            "pip is not available in this Python. Try `hython -m ensurepip --upgrade`, then run this again.",
            file=sys.stderr,
        )
        return 1
    args.target.mkdir(parents=True, exist_ok=True)
    if subprocess.run(cmd, env=env).returncode != 0:
        print("pip failed: see its messages above.", file=sys.stderr)
        return 1
    check = (
        "import sys; sys.path.append(sys.argv[1]); import genfx, genfx.client, OpenEXR;"
        " print('genfx', genfx.__version__, 'importable from', sys.argv[1])"
    )
    if subprocess.run([sys.executable, "-c", check, str(args.target)], env=env).returncode != 0:
        print("The client was installed but does not import: see the error above.", file=sys.stderr)
        return 1
    if args.register:
        args.register.mkdir(parents=True, exist_ok=True)
        text = json.dumps(package_json(PACKAGE_DIR), indent=4) + "\n"
        (args.register / "genfx.json").write_text(text, encoding="utf-8")  # no BOM: Houdini rejects it
    print("Done. Restart Houdini.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
