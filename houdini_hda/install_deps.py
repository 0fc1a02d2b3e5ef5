"""Install the GenFX client and its light dependencies where Houdini's Python finds them.

Run it with Houdini's own Python, so the wheels match it (Houdini 20.5 and 21 use Python 3.11)::

    hython /path/to/houdini_hda/install_deps.py                 # Linux / macOS
    "C:\\Program Files\\Side Effects Software\\Houdini 20.5.487\\bin\\hython.exe" install_deps.py

Houdini's own plain Python (``$HFS/python/bin/python3.11``; ``python311\\python.exe`` on Windows; the
``Python.framework`` beside Houdini's on macOS) runs pip and the import check when it is there: the same
interpreter as hython without starting Houdini each time. It runs
``<that python> -m pip install --target <package>/python3.11libs/genfx_deps`` with: the ``genfx`` client
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


def bundled_python(hfs: Path | None, platform: str = sys.platform) -> Path | None:
    """Houdini's plain Python 3.11 inside ``hfs`` (the Houdini install), or None when it is not there."""
    if hfs is None:
        return None
    if platform == "win32":
        candidates = [hfs / "python311" / "python.exe", hfs / "python" / "python.exe"]
    elif platform == "darwin":
        # $HFS = .../Frameworks/Houdini.framework/Versions/<v>/Resources; Python.framework sits beside it.
        tail = Path("Python.framework", "Versions", "3.11", "bin", "python3.11")
        candidates = [parent / tail for parent in hfs.parents]
    else:
        candidates = [hfs / "python" / "bin" / "python3.11", hfs / "python" / "bin" / "python3"]
    return next((c for c in candidates if c.is_file()), None)


def houdini_hfs(environ: dict[str, str]) -> Path | None:
    """$HFS (hython sets it), else the install that holds the running hython ($HFS/bin/hython)."""
    if environ.get("HFS"):
        return Path(environ["HFS"])
    exe = Path(sys.executable)
    return exe.parent.parent if exe.parent.name == "bin" and exe.name.startswith("hython") else None


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
    parser.add_argument("--python", help="the Python to run pip with (default: Houdini's own python3.11)")
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
    python = args.python or str(bundled_python(houdini_hfs(dict(os.environ))) or sys.executable)
    print(f"Houdini's Python for pip: {python}")
    cmd = pip_command(
        python,
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
    args.target.mkdir(parents=True, exist_ok=True)
    # Two starts of that Python in all: pip, then the import check.
    result = subprocess.run(cmd, env=env, stderr=subprocess.PIPE, text=True)
    if result.returncode != 0:
        sys.stderr.write(result.stderr or "")
        if "No module named pip" in (result.stderr or ""):
            print(f"pip is missing: run `{python} -m ensurepip --upgrade`, then this again.", file=sys.stderr)
        else:
            print("pip failed: see its messages above.", file=sys.stderr)
        return 1
    check = (
        "import sys; sys.path.append(sys.argv[1]); import genfx, genfx.client, OpenEXR;"
        " print('genfx', genfx.__version__, 'importable from', sys.argv[1])"
    )
    if subprocess.run([python, "-c", check, str(args.target)], env=env).returncode != 0:
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
