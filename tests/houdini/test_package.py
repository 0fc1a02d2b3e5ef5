"""The Houdini package around the asset: package JSON, shelf tool, dependency installer, type check."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType

import pytest
import tomllib

from tests.houdini.conftest import LIBS, PACKAGE, ROOT, STUBS


def _install_deps() -> ModuleType:
    spec = importlib.util.spec_from_file_location("install_deps", PACKAGE / "install_deps.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_package_json_is_valid_for_houdini_20_5_and_21() -> None:
    raw = (PACKAGE / "genfx.json").read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf"), "Houdini ignores package files with a UTF-8 BOM"
    package = json.loads(raw)
    assert package["hpath"] == "$GENFX_HOUDINI"
    assert package["env"] == [{"GENFX_HOUDINI": "$HOUDINI_PACKAGE_PATH"}]
    assert package["enable"] == "houdini_version >= '20.5' and houdini_version < '22'"
    # What HOUDINI_PATH then holds: the folders Houdini scans.
    for folder in ("otls", "python3.11libs", "toolbar"):
        assert (PACKAGE / folder).is_dir(), folder
    assert (LIBS / "genfx_houdini" / "__init__.py").is_file()
    # The installer writes the same package file, with an absolute path.
    written = _install_deps().package_json(Path("/studio/genfx/houdini_hda"))
    assert written == {**package, "env": [{"GENFX_HOUDINI": "/studio/genfx/houdini_hda"}]}


def test_shelf_tool_creates_the_node_wired_to_the_selection(hou: ModuleType) -> None:
    tree = ET.parse(PACKAGE / "toolbar" / "genfx.shelf")
    shelf = tree.getroot().find("toolshelf")
    assert shelf is not None and [m.get("name") for m in shelf] == ["genfx_generate_collapse"]
    tool = tree.getroot().find("tool[@name='genfx_generate_collapse']")
    assert tool is not None and tool.get("label") == "Generate Collapse"
    script = tool.find("script")
    assert script is not None and script.get("scriptType") == "python" and script.text

    obj = hou.node("/obj")
    cam = obj.createNode("cam", "shotcam")
    cam.parm("resx").set(1280)
    cam.parm("resy").set(720)
    obj.createNode("cam", "witness")
    geo = obj.createNode("geo", "collapse")
    sim = geo.createNode("file", "dop_import")
    sim.setSelected(True, clear_all_selected=True)
    cam.setSelected(True)
    exec(script.text, {"hou": hou, "kwargs": {}})  # noqa: S102 - what Houdini does with a shelf script

    created = geo.node("generate_collapse1")
    assert created is not None and created.type().name() == "genfx::generate_collapse::1.0"
    assert created.inputs() == (sim,)
    assert created.parm("camera").eval() == "/obj/shotcam"
    assert (created.parm("resx").eval(), created.parm("resy").eval()) == (1280, 720)
    assert hou.selectedNodes() == (created,)


def test_shelf_tool_picks_the_only_camera_and_the_display_sop_of_a_selected_object(hou: ModuleType) -> None:
    from genfx_houdini.shelf import create_generate_collapse

    obj = hou.node("/obj")
    obj.createNode("cam", "shotcam")
    geo = obj.createNode("geo", "collapse")
    geo.createNode("file", "sim")
    last = geo.createNode("null", "OUT")
    last.setDisplayFlag(True)
    geo.setSelected(True, clear_all_selected=True)
    created = create_generate_collapse({})
    assert created is not None and created.inputs() == (last,)
    camera = created.parm("camera")
    assert camera is not None and camera.eval() == "/obj/shotcam"


def test_shelf_tool_without_geometry_explains_itself(hou: ModuleType) -> None:
    from genfx_houdini.shelf import create_generate_collapse

    hou.clearAllSelected()
    assert create_generate_collapse({}) is None
    assert hou._session.messages[0]["text"].startswith("Select the collapse geometry")


def test_installer_installs_the_light_client_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    install = _install_deps()
    reqs = install.requirements("/src/genfx", with_numpy=False)
    cmd = install.pip_command(
        "/opt/hfs/bin/hython", tmp_path / "deps", reqs, find_links=["/wheels"], no_index=True
    )
    assert cmd[:5] == ["/opt/hfs/bin/hython", "-m", "pip", "install", "--upgrade"]
    assert cmd[cmd.index("--target") + 1] == str(tmp_path / "deps")
    assert "--no-deps" in cmd and "--no-index" in cmd and cmd[cmd.index("--find-links") + 1] == "/wheels"
    assert not any(re.match(r"(torch|diffusers|transformers|numpy)\b", r) for r in reqs), reqs
    assert "numpy>=1.24" in install.requirements("genfx", with_numpy=True)
    # Same version ranges as the SDK's own dependencies.
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for req in install.LIGHT_DEPS:
        assert req in declared, f"{req} differs from pyproject.toml's {declared}"
    assert install.genfx_source() == str(ROOT)
    env = install.pip_env({"PYTHONPATH": "/other/tool", "HOME": "/home/a"})
    assert "PYTHONPATH" not in env and env["HOME"] == "/home/a"
    assert install.DEFAULT_TARGET == LIBS / "genfx_deps"

    assert (
        install.main(["--dry-run", "--target", str(tmp_path / "deps"), "--register", str(tmp_path / "pk")])
        == 0
    )
    out = capsys.readouterr().out
    assert "would run:" in out and "--target" in out and "would write" in out
    assert not (tmp_path / "deps").exists() and not (tmp_path / "pk").exists()


def test_deps_folder_is_ignored_by_git() -> None:
    result = subprocess.run(
        ["git", "check-ignore", "-q", str(LIBS / "genfx_deps" / "grpc" / "__init__.py")],
        cwd=ROOT,
        check=False,
    )
    if result.returncode == 128:
        pytest.skip("not a git checkout")
    assert result.returncode == 0


def test_genfx_houdini_type_checks_against_types_houdini(tmp_path: Path) -> None:
    """mypy --strict (the repo's config) on genfx_houdini, with `hou` from the types-houdini stubs
    (never the fake) and hdefereval from tests/houdini/stubs."""
    from importlib import metadata

    try:
        metadata.version("types-houdini")
    except metadata.PackageNotFoundError:
        pytest.fail(
            "types-houdini is not installed: pip install 'types-houdini==21.0.512.3' (a dev dependency)"
        )
    env = dict(os.environ, MYPYPATH=os.pathsep.join([str(LIBS), str(STUBS)]))
    env.pop("PYTHONPATH", None)
    cmd = [
        sys.executable,
        "-m",
        "mypy",
        "--config-file",
        str(ROOT / "pyproject.toml"),
        "--cache-dir",
        str(tmp_path / "mypy-cache"),
        str(LIBS / "genfx_houdini"),
        str(PACKAGE / "install_deps.py"),
    ]
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout


def test_installer_runs_houdinis_plain_python_not_hython(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each hython start loads Houdini (seconds, a licence check): pip and the import check run with the
    bundled python3.11 of $HFS when there is one, and the installer starts it twice, not hython thrice."""
    install = _install_deps()
    hfs = tmp_path / "hfs21.0"
    bundled = hfs / "python" / "bin" / "python3.11"
    bundled.parent.mkdir(parents=True)
    bundled.symlink_to(sys.executable)
    monkeypatch.setenv("HFS", str(hfs))
    calls: list[list[str]] = []

    def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        calls.append(list(cmd))
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(install.subprocess, "run", run)
    assert install.main(["--target", str(tmp_path / "deps")]) == 0
    assert [c[0] for c in calls] == [str(bundled), str(bundled)], calls
    assert calls[0][1:4] == ["-m", "pip", "install"]
    assert "Houdini's Python" in capsys.readouterr().out
    # Windows and macOS layouts of the same Python.
    windows = tmp_path / "win" / "python311" / "python.exe"
    windows.parent.mkdir(parents=True)
    windows.write_text("")
    assert install.bundled_python(tmp_path / "win", "win32") == windows
    framework = tmp_path / "mac" / "Frameworks"
    mac_python = framework / "Python.framework" / "Versions" / "3.11" / "bin" / "python3.11"
    mac_python.parent.mkdir(parents=True)
    mac_python.write_text("")
    mac_hfs = framework / "Houdini.framework" / "Versions" / "21.0" / "Resources"
    mac_hfs.mkdir(parents=True)
    assert install.bundled_python(mac_hfs, "darwin") == mac_python
    assert install.bundled_python(tmp_path / "nowhere", "linux") is None
