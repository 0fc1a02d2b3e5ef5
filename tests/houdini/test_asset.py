"""The expanded asset genfx::generate_collapse::1.0 agrees with the Python that drives it."""

from __future__ import annotations

import ast
import email
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.houdini import dialogscript
from tests.houdini.conftest import DEFINITION, HDA, LIBS

PACKAGE_SRC = LIBS / "genfx_houdini"
STRING_TYPES = {"string", "oppath", "file", "image", "directory"}
# Helper in genfx_houdini.node -> the DialogScript types it may read.
READERS = {
    "_str": STRING_TYPES | {"ordinal"},  # an ordinal menu evaluates to its token as a string
    "_int": {"integer", "toggle", "multiparm"},  # a multiparm's value is its instance count
    "_instance_parm": {"string", "float"},  # a multiparm row's parm (name with '#')
    "_float": {"float"},
    "_set": STRING_TYPES | {"integer", "toggle", "float"},
    "_parm": STRING_TYPES | {"integer", "toggle", "float"},
}


@pytest.fixture(scope="module")
def ds() -> dialogscript.DialogScript:
    return dialogscript.load(DEFINITION / "DialogScript")


def _parms_module() -> object:
    from genfx_houdini import parms

    return parms


def test_every_parm_the_python_uses_exists_with_its_type(ds: dialogscript.DialogScript) -> None:
    from genfx_houdini import parms as P

    for name, kind in P.TYPES.items():
        assert name in ds.names, f"{name} is used by genfx_houdini but missing from the DialogScript"
        assert ds.parm(name).type == kind, (
            f"{name}: DialogScript type {ds.parm(name).type}, Python expects {kind}"
        )
    for name in P.PASSES:
        assert P.TYPES[name] in STRING_TYPES


def _calls(path: Path) -> list[ast.Call]:
    return [n for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))) if isinstance(n, ast.Call)]


def test_the_python_reads_node_parms_only_through_the_table_and_with_the_right_type() -> None:
    from genfx_houdini import parms as P

    seen: set[str] = set()
    for path in sorted(PACKAGE_SRC.glob("*.py")):
        for call in _calls(path):
            func = call.func
            if isinstance(func, ast.Name) and func.id in READERS and len(call.args) >= 2:
                arg = call.args[1]
                where = f"{path.name}:{call.lineno}"
                if isinstance(arg, ast.Name) and arg.id in ("name", "parm_name"):
                    continue  # inside the helpers themselves, and the loop over P.PASSES
                assert (
                    isinstance(arg, ast.Attribute) and isinstance(arg.value, ast.Name) and arg.value.id == "P"
                ), f"{where}: node parms are named through genfx_houdini.parms (P.X), not {ast.unparse(arg)}"
                name = getattr(P, arg.attr)
                assert name in P.TYPES, f"{where}: {arg.attr} is not in parms.TYPES"
                assert P.TYPES[name] in READERS[func.id], f"{where}: {func.id} reads {name} ({P.TYPES[name]})"
                seen.add(name)
            elif isinstance(func, ast.Name) and func.id == "_cam_parm":
                arg = call.args[1]
                assert isinstance(arg, ast.Constant) and arg.value in P.CAMERA_PARMS, ast.unparse(call)
            elif (
                isinstance(func, ast.Attribute)
                and func.attr in ("parm", "evalParm", "parmTuple")
                and call.args
            ):
                arg = call.args[0]
                where = f"{path.name}:{call.lineno}"
                if isinstance(arg, ast.Constant):
                    assert arg.value in P.CAMERA_PARMS, f"{where}: {arg.value!r} is not a known camera parm"
                elif isinstance(arg, ast.Attribute):
                    assert getattr(P, arg.attr) in P.TYPES, where
                else:  # a variable: only inside the helpers that take the name as an argument
                    assert isinstance(arg, ast.Name) and arg.id == "name", f"{where}: {ast.unparse(arg)}"
    readable = {n for n, t in P.TYPES.items() if t != "button"}
    # The loop over P.PASSES reads plate/mask/depth through a variable.
    assert readable - seen - set(P.PASSES) == set(), (
        f"parms in the table that nothing reads: {readable - seen}"
    )


def _python_module() -> ast.Module:
    return ast.parse((DEFINITION / "PythonModule").read_text(encoding="utf-8"))


def test_python_module_only_forwards_to_genfx_houdini() -> None:
    from genfx_houdini import node

    tree = _python_module()
    functions = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.ImportFrom):
            assert stmt.module == "genfx_houdini" and [a.name for a in stmt.names] == ["node"]
            continue
        assert isinstance(stmt, ast.FunctionDef), (
            f"PythonModule holds more than forwarding functions: {ast.dump(stmt)}"
        )
        assert [a.arg for a in stmt.args.args] == ["kwargs"]
        (body,) = stmt.body
        assert isinstance(body, (ast.Expr, ast.Return)) and isinstance(body.value, ast.Call)
        target = body.value.func
        assert (
            isinstance(target, ast.Attribute)
            and isinstance(target.value, ast.Name)
            and target.value.id == "_genfx"
        )
        assert [ast.unparse(a) for a in body.value.args] == ["kwargs"]
        assert callable(getattr(node, target.attr)), f"genfx_houdini.node has no {target.attr}"
        functions[stmt.name] = target.attr
    assert functions, "empty PythonModule"


def test_every_callback_names_a_function_of_the_python_module(ds: dialogscript.DialogScript) -> None:
    module_functions = {s.name for s in _python_module().body if isinstance(s, ast.FunctionDef)}
    scripts = []
    for parm in ds.parms:
        if parm.type == "button":
            assert parm.callback, f"button {parm.name} has no callback"
            assert parm.tags.get("script_callback_language") == "python"
        if parm.callback:
            scripts.append((parm.name, parm.callback))
        if parm.menu_script:
            assert parm.menu_language == "python"
            scripts.append((parm.name, parm.menu_script))
    assert {n for n, _ in scripts} >= {"generate", "cancel", "load_results", "model", "camera"}
    for name, script in scripts:
        match = re.fullmatch(r"hou\.phm\(\)\.(\w+)\(kwargs\)", script)
        assert match, f"{name}: callback {script!r} should be hou.phm().<function>(kwargs)"
        assert match.group(1) in module_functions, f"{name}: PythonModule has no {match.group(1)}()"


def test_parm_layout_matches_the_issue(ds: dialogscript.DialogScript) -> None:
    assert ds.name == "genfx::generate_collapse::1.0" and ds.label == "Generate Collapse"
    # Settings whose default the server owns start at 0 = "the server's default", and say so.
    for name in ("keyframe_step", "steps", "guidance", "strength"):
        parm = ds.parm(name)
        assert float(parm.defaults[0].value) == 0 and parm.range[0] == "0!", name
        assert "0 = the server's default" in parm.help, name
    # Read-only displays: disabled whatever their value (no Progress parm: progress stays out of parms).
    for read_only in ("status", "server_defaults"):
        assert ds.parm(read_only).disablewhen == f'{{ {read_only} == "" }} {{ {read_only} != "" }}'
    assert "progress" not in ds.names
    assert ds.parm("frame_start").defaults[0] == dialogscript.Default("$FSTART", True, "hscript-expr")
    assert ds.parm("frame_end").defaults[0] == dialogscript.Default("$FEND", True, "hscript-expr")
    assert ds.parm("outdir").defaults[0].value == "$HIP/genfx/$OS"
    assert ds.parm("camera").tags["opfilter"] == "!!OBJ/CAMERA!!"
    assert ds.parm("model").menu_kind == "menureplace"
    assert ds.input_labels[1] == "Collapse Geometry"
    # Tabs of one folder set: folder0, folder0_1, ...
    assert [f[1] for f in ds.folders] == ["folder0"] + [f"folder0_{i}" for i in range(1, len(ds.folders))]


def test_help_documents_every_parameter(ds: dialogscript.DialogScript) -> None:
    text = (DEFINITION / "Help").read_text(encoding="utf-8")
    assert "#internal: genfx::generate_collapse::1.0" in text and "#context: sop" in text
    ids = set(re.findall(r"#id: ([\w#]+)", text))  # a multiparm row's parms keep their '#'
    documented = {p.name for p in ds.all_parms() if p.type != "separator"} - {
        "frame_end",
        "resy",
    }  # tuples share one entry
    assert documented - ids == set(), f"Help has no entry for {documented - ids}"
    assert ids - {p.name for p in ds.all_parms()} == set()


def test_expanded_library_is_complete() -> None:
    sections = (HDA / "Sections.list").read_text().splitlines()
    assert sections[0] == '""'
    entries = dict(line.split("\t") for line in sections[1:])
    assert entries == {
        "INDEX__SECTION": "INDEX_SECTION",
        "houdini.hdalibrary": "houdini.hdalibrary",
        DEFINITION.name: "genfx::Sop/generate_collapse::1.0",
    }
    for file_name in entries:
        assert (HDA / file_name).exists(), file_name
    # The definition folder name encodes the section name: '_' -> '__', ':' -> '_8', '/' -> '_1'.
    encoded = "genfx::Sop/generate_collapse::1.0".replace("_", "__").replace(":", "_8").replace("/", "_1")
    assert DEFINITION.name == encoded
    index = (HDA / "INDEX__SECTION").read_text()
    assert "Operator:     genfx::generate_collapse::1.0" in index and "Table:        Sop" in index
    assert "Inputs:       1 to 1" in index

    def_sections = (DEFINITION / "Sections.list").read_text().splitlines()
    assert def_sections[0] == '""'
    for line in def_sections[1:]:
        file_name, section = line.split("\t")
        on_disk = DEFINITION / ("Contents.dir" if section == "Contents.gz" else file_name)
        assert on_disk.exists(), f"{section} is listed but {on_disk} is missing"
    listed = {line.split("\t")[0] for line in def_sections[1:]}
    assert {"DialogScript", "PythonModule", "Help", "Contents.gz", "ExtraFileOptions"} <= listed
    options = json.loads((DEFINITION / "ExtraFileOptions").read_text())
    assert options["PythonModule/IsPython"]["value"] is True


def test_contents_pass_the_input_through_unchanged() -> None:
    mime = email.message_from_string((DEFINITION / "Contents.dir" / "Contents.mime").read_text())
    parts: dict[str, str] = {}
    for part in mime.walk():
        if name := part.get_filename():
            payload = part.get_payload()
            assert isinstance(payload, str), name  # a file, not a multipart container
            parts[name] = payload
    assert parts["node_type"].strip() == "Sop"
    assert "type = genfx::generate_collapse::1.0" in parts["hdaroot.init"]
    assert parts["hdaroot.order"].split() == ["1", "output0"]  # one node inside: the output
    assert "type = output" in parts["hdaroot/output0.init"]
    definition = parts["hdaroot/output0.def"]
    # Its only input is the subnet's first input, "(0)".
    assert re.search(r"inputs\n\{\n0 \t\(0\) 0 1\n\}", definition), definition


# ---------------------------------------------------------------------------------------------------
# The expanded library against the rules every `hotl -x` output follows (tests/houdini/expanded_hda.py)


def test_expanded_library_follows_the_rules_of_real_hotl_output() -> None:
    from tests.houdini import expanded_hda

    assert expanded_hda.problems(HDA) == []


@pytest.mark.parametrize(
    ("break_it", "expected"),
    [
        (lambda d: (d / "Contents.dir" / "Sections.list").unlink(), "Contents.dir has no Sections.list"),
        (lambda d: (d / "Help").unlink(), "lists Help: missing"),
        (
            lambda d: (d / "Sections.list").write_text(
                (d / "Sections.list").read_text().replace("InternalFileOptions\tInternalFileOptions\n", "")
            ),
            "Contents without InternalFileOptions",
        ),
        (
            lambda d: (d / "Contents.dir" / "Contents.mime").write_text(
                (d / "Contents.dir" / "Contents.mime").read_text().replace("0 \t(0) 0 1", "0 \tsim 0 1")
            ),
            "comes from 'sim', not a node of the asset",
        ),
    ],
)
def test_the_rule_check_catches_a_broken_copy(tmp_path: Path, break_it: Any, expected: str) -> None:
    import shutil

    from tests.houdini import expanded_hda

    copy = tmp_path / HDA.name
    shutil.copytree(HDA, copy)
    break_it(copy / DEFINITION.name)
    assert any(expected in p for p in expanded_hda.problems(copy)), expanded_hda.problems(copy)


def test_the_asset_loads_its_children_and_passes_geometry_through(hou: ModuleType) -> None:
    geo = hou.node("/obj").createNode("geo", "collapse")
    sim = geo.createNode("file", "sim")
    sim.parm("file").set("$HIP/sim/collapse.bgeo.sc")
    node = geo.createNode("genfx::generate_collapse::1.0")
    node.setInput(0, sim)
    assert [c.name() for c in node.children()] == ["output0"]
    assert node.geometry().attribValue("source").endswith("/sim/collapse.bgeo.sc")
    assert node.cookCount() == 1 and node.geometry() is node.geometry()  # cooked once, then cached
