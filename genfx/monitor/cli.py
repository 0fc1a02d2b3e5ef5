"""`genfx monitor`: the monitor widget in a window of its own.

Qt is imported only when the command runs, so `genfx --help` works without the `gui` extra.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any


def add_monitor_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Adds `monitor` to the `genfx` sub-commands (`subparsers` from add_subparsers())."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "monitor",
        help="watch the server's jobs in a window (needs the gui extra: pip install 'genfx[gui]')",
        description="GenFX Monitor: jobs with state, progress and keyframe previews; cancel, re-run "
        "with a new seed, open the output folder, copy the job id.",
    )
    p.add_argument(
        "--server",
        default=os.environ.get("GENFX_SERVER", "127.0.0.1:50051"),
        help="HOST:PORT of the GenFX server (env GENFX_SERVER; default %(default)s)",
    )
    p.add_argument("--token", default=os.environ.get("GENFX_TOKEN"), help="bearer token (env GENFX_TOKEN)")
    p.add_argument(
        "--tls-ca",
        metavar="FILE",
        default=os.environ.get("GENFX_TLS_CA"),
        help="PEM CA that signed the server's certificate: connect with TLS (env GENFX_TLS_CA)",
    )
    p.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="where fetched frames go (env GENFX_MONITOR_CACHE; default: the user cache folder)",
    )
    p.set_defaults(func=cmd_monitor)
    return p


def cmd_monitor(args: argparse.Namespace) -> int:
    try:
        from PySide6.QtWidgets import QApplication

        from genfx.monitor.widget import MonitorWidget
    except ImportError as exc:
        print(f"genfx monitor needs the gui extra (pip install 'genfx[gui]'): {exc}", file=sys.stderr)
        return 2
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("GenFX Monitor")
    widget = MonitorWidget(
        args.server,
        args.token or "",
        args.tls_ca,
        cache_dir=Path(args.cache_dir) if args.cache_dir else None,
    )
    widget.resize(widget.sizeHint())
    widget.show()
    return int(app.exec())
