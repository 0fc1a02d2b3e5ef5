"""The import layers, read from the source (every import statement, at any depth, lazy ones included):

    genfx (SDK, DCC plug-ins)  ->  genfx shared layer  <-  inference_server, training
                                   (camera, colour, exr, wire, hashing, proto, shot,
                                    passes, resample, sim_condition)

passes, resample, sim_condition and model_card joined the shared layer (issue 12): the server must read
motion and depth passes with the trainer's channel names and motion-vector sign, build the sim
ControlNet's conditioning exactly as the trainer's ETL did, and read the model cards it writes; small
numpy/json-only modules both import keep one owner per rule without letting the server import the
trainer (or the reverse).

- the SDK and the DCC code never import the server, the trainer or the GPU stack;
- the shared layer never imports the client side of the SDK (client, CLI, monitor, ...);
- the server and the trainer reach `genfx` only through the shared layer;
- the engine knows nothing of RPCs, jobs or workers; the trainer nothing of the serving side;
- no product code imports the tests.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HOUDINI_LIBS = ROOT / "houdini_hda" / "python3.11libs"
# The package root (genfx/__init__.py: the version only) belongs to the shared layer too.
SHARED = (
    "genfx.__version__",
    "genfx.camera",
    "genfx.colour",
    "genfx.exr",
    "genfx.wire",
    "genfx.hashing",
    "genfx.proto",
    "genfx.shot",
    "genfx.passes",
    "genfx.resample",
    "genfx.sim_condition",
    "genfx.model_card",
    "genfx.parallel",
)
GPU_STACK = ("torch", "diffusers", "transformers", "accelerate", "peft", "ray", "safetensors")
SERVING = (
    "inference_server.service",
    "inference_server.jobs",
    "inference_server.worker",
    "inference_server.server",
)


def _module_name(path: Path, base: Path) -> str:
    parts = list(path.relative_to(base).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, module: str) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in the file; relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield node.lineno, target
            for alias in node.names:  # `from pkg import module` imports pkg.module
                yield node.lineno, f"{target}.{alias.name}"


def _sources(package: str, base: Path = ROOT) -> Iterator[tuple[Path, str]]:
    folder = base / package
    if not folder.is_dir():
        return
    for path in sorted(folder.rglob("*.py")):
        if "node_modules" not in path.parts:
            yield path, _module_name(path, base)


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _violations(
    sources: Iterator[tuple[Path, str]], forbidden: tuple[str, ...], allowed: tuple[str, ...] = ()
) -> list[str]:
    found = []
    for path, module in sources:
        for line, target in _imports(path, module):
            shared_root = target == "genfx" and "genfx.__version__" in allowed
            if _within(target, forbidden) and not _within(target, allowed) and not shared_root:
                found.append(f"{os.path.relpath(path, ROOT)}:{line} imports {target}")
    return found


def _shared_layer() -> Iterator[tuple[Path, str]]:
    return ((p, m) for p, m in _sources("genfx") if _within(m, SHARED))


def _client_side() -> Iterator[tuple[Path, str]]:
    return ((p, m) for p, m in _sources("genfx") if m != "genfx" and not _within(m, SHARED))


def test_the_sdk_never_imports_the_server_the_trainer_or_the_gpu_stack() -> None:
    forbidden = ("inference_server", "training", *GPU_STACK)
    assert _violations(_sources("genfx"), forbidden) == []
    assert _violations(_sources("genfx_houdini", HOUDINI_LIBS), forbidden) == []


def test_the_shared_layer_never_imports_the_client_side() -> None:
    client_modules = tuple(m for _, m in _client_side())
    assert client_modules, "the client side of the SDK was not found"
    assert _violations(_shared_layer(), client_modules) == []


@pytest.mark.parametrize("package", ["inference_server", "training"])
def test_server_and_trainer_reach_genfx_only_through_the_shared_layer(package: str) -> None:
    assert _violations(_sources(package), ("genfx",), allowed=SHARED) == []


def test_the_engine_knows_nothing_of_rpcs_jobs_or_workers() -> None:
    engine_pkg = ("inference_server.engine",)
    engine = ((p, m) for p, m in _sources("inference_server") if _within(m, engine_pkg))
    forbidden = tuple(
        m for _, m in _sources("inference_server") if m != "inference_server" and not _within(m, engine_pkg)
    )
    assert "inference_server.service" in forbidden
    assert _violations(engine, forbidden) == []


def test_the_trainer_knows_nothing_of_serving() -> None:
    assert _violations(_sources("training"), SERVING) == []


def test_no_product_code_imports_the_tests() -> None:
    for package in ("genfx", "inference_server", "training"):
        assert _violations(_sources(package), ("tests",)) == []
    assert _violations(_sources("genfx_houdini", HOUDINI_LIBS), ("tests",)) == []


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    """The rules above would catch a real breach: a lazy, relative import of the server in the SDK."""
    pkg = tmp_path / "genfx"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "cli.py").write_text("def serve():\n    from inference_server import server\n")
    (pkg / "camera.py").write_text("from .cli import serve\n")
    assert _violations(_sources("genfx", tmp_path), ("inference_server",)) == [
        f"{os.path.relpath(pkg / 'cli.py', ROOT)}:2 imports inference_server",
        f"{os.path.relpath(pkg / 'cli.py', ROOT)}:2 imports inference_server.server",
    ]
    assert _violations(_sources("genfx", tmp_path), ("genfx.cli",)) == [
        f"{os.path.relpath(pkg / 'camera.py', ROOT)}:1 imports genfx.cli",
        f"{os.path.relpath(pkg / 'camera.py', ROOT)}:1 imports genfx.cli.serve",
    ]
