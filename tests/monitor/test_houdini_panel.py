"""The Houdini Python panel (.pypanel): its XML, and its script run the way Houdini runs it (exec, then
onCreateInterface / onDestroyInterface), with a stand-in `hou` module. Real Houdini is not run here."""

from __future__ import annotations

import sys
import types
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

from genfx.client import Client
from genfx.local_server import LocalServer
from genfx.monitor.widget import MonitorWidget, job_state
from genfx.shot import Shot

from ..conftest import ROOT, small_request

PANEL = ROOT / "houdini_hda" / "python_panels" / "genfx_monitor.pypanel"


@pytest.fixture(autouse=True)
def hutil_qt(monkeypatch: pytest.MonkeyPatch) -> None:
    """Houdini's ``hutil.Qt``: the Qt binding of the running Houdini (PySide6 here, as in Houdini 21)."""
    from PySide6 import QtCore, QtGui, QtWidgets

    hutil = types.ModuleType("hutil")
    qt = types.ModuleType("hutil.Qt")
    qt.QtCore, qt.QtGui, qt.QtWidgets = QtCore, QtGui, QtWidgets  # type: ignore[attr-defined]
    qt.__binding__ = "PySide6"  # type: ignore[attr-defined]
    hutil.Qt = qt  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "hutil", hutil)
    monkeypatch.setitem(sys.modules, "hutil.Qt", qt)


def load_panel() -> dict[str, Any]:
    """Parses the .pypanel and runs its script in a fresh namespace, like Houdini does per panel."""
    root = ET.parse(PANEL).getroot()
    assert root.tag == "pythonPanelDocument"
    (interface,) = root.findall("interface")
    assert (interface.get("name"), interface.get("label")) == ("genfx_monitor", "GenFX Monitor")
    assert interface.find("includeInPaneTabMenu") is not None
    script = interface.findtext("script")
    assert script
    namespace: dict[str, Any] = {"__name__": "genfx_monitor_pypanel"}
    exec(compile(script, str(PANEL), "exec"), namespace)
    assert namespace["createInterface"] is namespace["onCreateInterface"]
    return namespace


@pytest.mark.slow
def test_panel_builds_the_monitor_from_houdini_env(
    qtbot: QtBot,
    monkeypatch: pytest.MonkeyPatch,
    monitor_server: LocalServer,
    api: Client,
    shot: Shot,
    tmp_path: Path,
) -> None:
    # Houdini's variables (houdini.env, package json) come through hou.getenv.
    hou = types.ModuleType("hou")
    hou.getenv = {"GENFX_SERVER": monitor_server.address}.get  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "hou", hou)
    monkeypatch.setenv("GENFX_SERVER", "127.0.0.1:1")  # loses to hou.getenv
    monkeypatch.setenv("GENFX_MONITOR_CACHE", str(tmp_path))
    for name in ("GENFX_TOKEN", "GENFX_TLS_CA"):
        monkeypatch.delenv(name, raising=False)

    panel = load_panel()
    widget = panel["onCreateInterface"]()
    qtbot.addWidget(widget)
    assert isinstance(widget, MonitorWidget)
    assert widget.server_edit.text() == monitor_server.address
    job = api.submit(small_request(shot, frames=1, steps=1, prompt="seen from Houdini"))
    qtbot.waitUntil(lambda: job_state(widget, job.id) is not None, timeout=120_000)
    backend = widget.controller.backend
    assert backend is not None
    panel["onDestroyInterface"]()
    assert backend.closed
    api.wait(job.id)


def test_panel_without_the_sdk_explains_the_install(qtbot: QtBot, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "genfx.monitor.widget", None)  # import fails as if not installed
    panel = load_panel()
    widget = panel["onCreateInterface"]()
    qtbot.addWidget(widget)
    assert isinstance(widget, QLabel)
    assert "install_deps.py" in widget.text()
    panel["onDestroyInterface"]()  # nothing to stop; must not fail


def test_panel_on_houdini_20_5_says_it_needs_houdini_21(
    qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Houdini 20.5 ships PySide2, 21 PySide6. The monitor is PySide6, so on 20.5 the panel explains
    itself with a label made through hutil.Qt (the binding-neutral shim SideFX's own panels import)."""
    # Houdini 20.5's hutil.Qt is bound to PySide2 (the widgets here are PySide6 ones standing in).
    monkeypatch.setattr(sys.modules["hutil.Qt"], "__binding__", "PySide2", raising=False)
    monkeypatch.setitem(sys.modules, "genfx.monitor.widget", None)  # must not even be tried
    hou = types.ModuleType("hou")
    hou.applicationVersion = lambda: (20, 5, 487)  # type: ignore[attr-defined]
    hou.getenv = {}.get  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "hou", hou)
    panel = load_panel()
    widget = panel["onCreateInterface"]()
    qtbot.addWidget(widget)
    assert isinstance(widget, QLabel)
    assert "Houdini 21" in widget.text() and "genfx monitor" in widget.text()
    assert "20.5.487" in widget.text()
    panel["onDestroyInterface"]()
