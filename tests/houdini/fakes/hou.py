"""A fake of the parts of Houdini's ``hou`` module that genfx_houdini uses, with Houdini's semantics.

Only what the code under test touches, but each piece behaves as the types-houdini docstrings (generated
from Houdini 21.0.512) say the real one does:

* ``hou.Matrix4`` is row-major and multiplies ROW vectors (``p * M``); translation sits in the last row;
  ``M1 * M2`` applies M1 first. ``hmath.buildRotate`` composes x, y, z rotations in the given order.
* ``frameToTime(f) = (f - 1) / fps()``; ``timeToFrame(t) = t * fps() + 1`` (rounded to 6 digits unless
  ``full_precision``).
* Objects: ``worldTransformAtTime(time)`` evaluates the transform parms at ``timeToFrame(time)``,
  composes scale, rotate, translate in ``xOrd`` order (rotations in ``rOrd`` order) and multiplies by the
  parent object's world transform (input 0).
* Parms evaluate at a frame: constants, hscript expressions (``$FSTART``, ``$F``...) and Python
  expressions (``hou.frame()`` is the evaluation frame); string parms expand ``$HIP``, ``$OS``, ``$F4``...
* Node paths resolve absolute and relative (``..``) paths; ``hou.node()`` and ``Node.node()``.
* The asset node's parms are built from the asset's real DialogScript; its PythonModule is the real file,
  executed once per definition with ``hou`` bound; buttons run their ``script_callback`` with ``kwargs``.
* ``InterruptableOperation`` is a context manager only; ``updateProgress``/``updateLongProgress`` raise
  ``OperationInterrupted`` when the test's interrupt policy says the artist pressed Esc.
* Every call that touches the scene must come from the main thread (Houdini's rule for hou); a call from
  another thread is recorded in ``_session.thread_violations`` and raises.
* Parameters are "used for cooking" (HDK, Dependencies): setting one on a SOP dirties it and everything
  downstream, the viewport (with a UI) re-cooks the displayed SOP, and the hip file is marked modified.
  SOPs count their cooks (``cookCount``); ``geometry()`` cooks what is dirty, inputs first.
* The asset's children come from its expanded definition the way Houdini reads it: through the
  ``Sections.list`` files to ``Contents.dir/Contents.mime`` (tests/houdini/expanded_hda.py). A definition
  whose lists do not lead there loads with no children, and the asset then outputs empty geometry.
* Multiparms (the asset's LoRAs, Mantra's extra image planes): the count parm's value is the number of
  instances; setting it creates or removes the instance parms, named by the templates with '#' replaced
  by the instance number from the block's start offset (1 unless ``multistartoffset`` says otherwise;
  ``hou.Parm.multiParmInstances``, ``multiParmStartOffset`` docstrings). A name past the last instance
  is ``None`` from ``Node.parm``, as any unknown name is.
* ``Parm.deleteAllKeyframes`` leaves the value the parm evaluated to at the current frame (docstring).
* /out holds render nodes (category Driver). The Mantra node ``ifd`` has the parameters of
  tests/houdini/fakes/mantra.py (SideFX's docs and SideFXLabs' saved Mantra nodes) and nothing else.
  ``RopNode.render`` blocks until the frames are written (Render to Disk), by the fake Mantra of
  mantra.py: the files its parameters name, with the channels its planes name. A render that fails
  (no camera, an output folder that does not exist, or ``_session.render_failure``: a licence or a
  crash) raises hou.OperationFailed, as HOM raises a ROP's errors.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import threading
import types
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tests.houdini import dialogscript
from tests.houdini.dialogscript import Default, ParmDef
from tests.houdini.fakes import mantra
from tests.houdini.fakes.mantra import IFD_PARMS

ROOT = Path(__file__).resolve().parents[3]
HDA_DIR = (
    ROOT
    / "houdini_hda"
    / "otls"
    / "genfx.generate_collapse.1.0.hda"
    / "genfx_8_8Sop_1generate__collapse_8_81.0"
)

# ---------------------------------------------------------------------------------------------------
# Errors and enums


class Error(Exception):  # hou's names
    def __init__(self, *args: object) -> None:
        super().__init__(*args)

    def instanceMessage(self) -> str:
        return str(self.args[0]) if self.args else ""


class NodeError(Error):
    pass


class OperationFailed(Error):
    pass


class OperationInterrupted(Error):
    pass


class NotAvailable(Error):
    pass


class PermissionError(Error):  # hou.PermissionError shadows the builtin, as in Houdini
    pass


class InvalidInput(Error):
    pass


@dataclass(frozen=True)
class EnumValue:
    enum: str
    value_name: str

    def name(self) -> str:
        return self.value_name

    def __repr__(self) -> str:
        return f"hou.{self.enum}.{self.value_name}"


class severityType:
    Message = EnumValue("severityType", "Message")
    ImportantMessage = EnumValue("severityType", "ImportantMessage")
    Warning = EnumValue("severityType", "Warning")
    Error = EnumValue("severityType", "Error")
    Fatal = EnumValue("severityType", "Fatal")


class exprLanguage:
    Python = EnumValue("exprLanguage", "Python")
    Hscript = EnumValue("exprLanguage", "Hscript")


# ---------------------------------------------------------------------------------------------------
# Session state (one fake Houdini process)


@dataclass(frozen=True)
class RenderCall:
    """One ``RopNode.render`` call: the node and its ``frame_range`` argument."""

    rop: str
    frame_range: tuple[float, ...]


@dataclass
class _Session:
    fps: float = 24.0
    frame: float = 1.0
    frame_range: tuple[float, float] = (1.0, 240.0)
    hip: Path = Path("/tmp/untitled.hip")
    ui_available: bool = True
    messages: list[dict[str, Any]] = field(default_factory=list)
    status_messages: list[str] = field(default_factory=list)
    operations: list[InterruptableOperation] = field(default_factory=list)
    interrupt: Callable[[InterruptableOperation], bool] | None = None
    thread_violations: list[str] = field(default_factory=list)
    nodes_by_id: dict[int, Node] = field(default_factory=dict)
    next_id: int = 1
    selection: list[Node] = field(default_factory=list)
    pwd: list[Node] = field(default_factory=list)
    eval_frame: list[float] = field(default_factory=list)
    undo_disabled: int = 0
    undo_log: list[str] = field(default_factory=list)
    root: Node | None = None
    unsaved_changes: int = 0  # how often the hip file was marked modified
    renders: list[RenderCall] = field(default_factory=list)  # RopNode.render calls, in order
    shader_exports: set[str] = field(default_factory=set)  # VEX exports of the scene's shaders
    render_failure: str = ""  # a render error Houdini would report (licence, crash); "" = none

    def __setattr__(self, name: str, value: object) -> None:
        super().__setattr__(name, value)
        if name == "ui_available" and "_sync_hdefereval" in globals():
            _sync_hdefereval(bool(value))


_session = _Session()


def _sync_hdefereval(ui: bool) -> None:
    """hdefereval cannot be imported without a UI (Houdini's own module raises ImportError there)."""
    import sys

    from tests.houdini.fakes import hdefereval

    sys.modules["hdefereval"] = hdefereval if ui else None  # type: ignore[assignment]


def _main_thread(api: str) -> None:
    if threading.current_thread() is not threading.main_thread():
        _session.thread_violations.append(f"{api} from {threading.current_thread().name}")
        raise RuntimeError(f"hou.{api} called off Houdini's main thread")


def _reset(
    hip: Path,
    *,
    fps: float = 24.0,
    frame_range: tuple[float, float] = (1.0, 240.0),
    ui: bool = True,
) -> None:
    """A fresh scene: /obj, an untitled hip file at ``hip``, the given rate and range."""
    global _session
    _session = _Session(fps=fps, frame=frame_range[0], frame_range=frame_range, hip=hip, ui_available=ui)
    root = Node("", None, _node_type("Manager", "root"))
    _session.root = root
    root._create_child("obj", "Manager", "obj")
    root._create_child("out", "Manager", "out")


# ---------------------------------------------------------------------------------------------------
# Time


def fps() -> float:
    _main_thread("fps")
    return _session.fps


def setFps(value: float) -> None:
    _session.fps = float(value)


def frameToTime(frame: float) -> float:
    _main_thread("frameToTime")
    return (frame - 1.0) / _session.fps


def timeToFrame(time: float, full_precision: bool = False) -> float:
    _main_thread("timeToFrame")
    value = time * _session.fps + 1.0
    return value if full_precision else round(value, 6)


def frame(full_precision: bool = False) -> float:
    return _session.eval_frame[-1] if _session.eval_frame else _session.frame


def intFrame() -> int:
    return int(round(frame()))


def setFrame(value: float) -> None:
    _main_thread("setFrame")
    _session.frame = float(value)


class Vector2:
    def __init__(self, x: float = 0.0, y: float = 0.0) -> None:
        self._v = (float(x), float(y))

    def __getitem__(self, index: int) -> float:
        return self._v[index]

    def x(self) -> float:
        return self._v[0]

    def y(self) -> float:
        return self._v[1]


class playbar:
    @staticmethod
    def frameRange() -> Vector2:
        return Vector2(*_session.frame_range)

    @staticmethod
    def playbackRange() -> Vector2:
        return Vector2(*_session.frame_range)

    @staticmethod
    def setFrameRange(start: float, end: float) -> None:
        _session.frame_range = (float(start), float(end))


# ---------------------------------------------------------------------------------------------------
# Matrices (row-major, row vectors)


class Matrix4:
    """hou.Matrix4: 4x4, row-major; vectors are ROW vectors (``p * M``), translation in the last row."""

    def __init__(
        self,
        # An array too: the fake builds its own matrices with numpy (Houdini's takes sequences).
        values: float | Sequence[float] | Sequence[Sequence[float]] | npt.NDArray[np.floating[Any]] = 0.0,
    ) -> None:
        if isinstance(values, (int, float)):
            self._m = np.eye(4) * float(values)  # a number sets the diagonal (0 = zero matrix)
        else:
            arr = np.asarray(values, dtype=np.float64)
            if arr.size != 16:
                raise InvalidInput("Matrix4 needs 16 values or 4 rows of 4")
            self._m = arr.reshape(4, 4).copy()

    def asTuple(self) -> tuple[float, ...]:
        return tuple(float(v) for v in self._m.ravel())

    def asTupleOfTuples(self) -> tuple[tuple[float, ...], ...]:
        return tuple(tuple(float(v) for v in row) for row in self._m)

    def at(self, row: int, col: int) -> float:
        return float(self._m[row, col])

    def __mul__(self, other: Matrix4 | float) -> Matrix4:
        if isinstance(other, Matrix4):
            return Matrix4(self._m @ other._m)  # p * (A * B) = (p * A) * B: A applies first
        return Matrix4(self._m * float(other))

    def inverted(self) -> Matrix4:
        if abs(np.linalg.det(self._m)) < 1e-300:
            raise OperationFailed("Matrix4 is singular")
        return Matrix4(np.linalg.inv(self._m))

    def transposed(self) -> Matrix4:
        return Matrix4(self._m.T)

    def determinant(self) -> float:
        return float(np.linalg.det(self._m))

    def extractTranslates(self, transform_order: str = "srt") -> Vector3:
        return Vector3(*self._m[3, :3])

    def isAlmostEqual(self, other: Matrix4, tolerance: float = 0.00001) -> bool:
        return bool(np.allclose(self._m, other._m, atol=tolerance, rtol=0.0))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Matrix4) and bool(np.array_equal(self._m, other._m))

    def __hash__(self) -> int:  # pragma: no cover - hou.Matrix4 is hashable
        return hash(self.asTuple())

    def __repr__(self) -> str:
        return f"<hou.Matrix4 {self.asTupleOfTuples()}>"


class Vector3:
    def __init__(self, x: float | Sequence[float] = 0.0, y: float = 0.0, z: float = 0.0) -> None:
        if isinstance(x, (int, float)):
            self._v = np.array([x, y, z], dtype=np.float64)
        else:
            self._v = np.asarray(x, dtype=np.float64).reshape(3).copy()

    def __getitem__(self, index: int) -> float:
        return float(self._v[index])

    def __len__(self) -> int:
        return 3

    def __mul__(self, matrix: Matrix4) -> Vector3:
        """A point (w = 1) transformed as a row vector: ``p * M``."""
        row = np.append(self._v, 1.0) @ matrix._m
        return Vector3(*row[:3])

    def x(self) -> float:
        return float(self._v[0])

    def y(self) -> float:
        return float(self._v[1])

    def z(self) -> float:
        return float(self._v[2])


def _rotation(axis: str, degrees: float) -> np.ndarray:
    """Row-vector rotation by ``degrees`` (right-handed) about ``axis``: ``p * R``."""
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    m = np.eye(4)
    i, j = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}[axis]
    m[i, i], m[i, j], m[j, i], m[j, j] = c, s, -s, c
    return m


class hmath:
    @staticmethod
    def identityTransform() -> Matrix4:
        return Matrix4(1.0)

    @staticmethod
    def buildTranslate(tx: float | Sequence[float], ty: float = 0.0, tz: float = 0.0) -> Matrix4:
        t = (tx, ty, tz) if isinstance(tx, (int, float)) else tuple(tx)
        m = np.eye(4)
        m[3, :3] = t
        return Matrix4(m)

    @staticmethod
    def buildScale(sx: float | Sequence[float], sy: float = 1.0, sz: float = 1.0) -> Matrix4:
        s = (sx, sy, sz) if isinstance(sx, (int, float)) else tuple(sx)
        return Matrix4(np.diag([*s, 1.0]))

    @staticmethod
    def buildRotate(
        rx: float | Sequence[float], ry: float = 0.0, rz: float = 0.0, order: str = "xyz"
    ) -> Matrix4:
        r = dict(zip("xyz", (rx, ry, rz) if isinstance(rx, (int, float)) else tuple(rx), strict=True))
        m = np.eye(4)
        for axis in order:
            m = m @ _rotation(axis, float(r[axis]))
        return Matrix4(m)


# ---------------------------------------------------------------------------------------------------
# Strings and expressions

_VAR = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def _variables(node: Node | None, at_frame: float) -> dict[str, str]:
    hip = _session.hip
    values = {
        "HIP": hip.parent.as_posix(),
        "HIPFILE": hip.as_posix(),
        "HIPNAME": hip.stem,
        "JOB": os.environ.get("JOB", hip.parent.as_posix()),
        "FPS": f"{_session.fps:g}",
        "FSTART": f"{_session.frame_range[0]:g}",
        "FEND": f"{_session.frame_range[1]:g}",
        "F": str(int(round(at_frame))),
        "FF": f"{at_frame:g}",
        "T": f"{(at_frame - 1.0) / _session.fps:g}",
    }
    for digits in range(2, 10):
        values[f"F{digits}"] = f"{int(round(at_frame)):0{digits}d}"
    if node is not None:
        values["OS"] = node.name()
    return values


def _expand(text: str, node: Node | None, at_frame: float) -> str:
    values = _variables(node, at_frame)

    def sub(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name in values:
            return values[name]
        env = os.environ.get(name)
        return env if env is not None else match.group(0)

    return _VAR.sub(sub, text)


def _eval_hscript(expr: str, node: Node | None, at_frame: float) -> float:
    """Hscript numeric expressions: variables and arithmetic (all our asset's defaults use)."""
    expanded = _expand(expr, node, at_frame)
    if not re.fullmatch(r"[0-9eE.+\-*/() ]+", expanded):
        raise OperationFailed(f"fake hscript cannot evaluate {expr!r}")
    return float(eval(expanded, {"__builtins__": {}}))  # digits and operators only


class text:
    @staticmethod
    def expandString(value: str, expand_tilde: bool = True) -> str:
        _main_thread("text.expandString")
        return _expand(value, None, frame())

    @staticmethod
    def expandStringAtFrame(value: str, at_frame: float, expand_tilde: bool = True) -> str:
        _main_thread("text.expandStringAtFrame")
        return _expand(value, None, at_frame)


class hipFile:
    @staticmethod
    def path() -> str:
        return _session.hip.as_posix()

    @staticmethod
    def name() -> str:
        return _session.hip.as_posix()

    @staticmethod
    def basename() -> str:
        return _session.hip.name

    @staticmethod
    def hasUnsavedChanges() -> bool:
        return _session.unsaved_changes > 0


def getenv(name: str, default_value: str | None = None) -> str | None:
    return os.environ.get(name, default_value)


# ---------------------------------------------------------------------------------------------------
# Parms

_STRING_TYPES = {"string", "oppath", "file", "image", "directory", "geometry"}
_INT_TYPES = {"integer", "toggle", "ordinal", "button", "multiparm"}
_FLOAT_TYPES = {"float"}


class Parm:
    def __init__(self, node: Node, template: ParmDef) -> None:
        self._node = node
        self._template = template
        self._value: object = None
        self._expression: str | None = None
        self._language: EnumValue = exprLanguage.Hscript
        self._locked = False
        self._disabled = False
        default = template.defaults[0] if template.defaults else Default("")
        if default.expression:
            self._expression = default.value
        elif template.type in _STRING_TYPES or template.type in ("separator", "label"):
            self._value = default.value
        elif template.type in _FLOAT_TYPES:
            self._value = float(default.value or 0)
        elif template.type == "toggle":
            self._value = 1 if default.value in ("1", "on") else 0
        elif template.type == "ordinal":
            tokens = [t for t, _ in template.menu_items]
            self._value = int(default.value) if default.value.isdigit() else tokens.index(default.value)
        else:
            self._value = int(default.value or 0)

    # ---- identity

    def node(self) -> Node:
        return self._node

    def name(self) -> str:
        return self._template.name

    def path(self) -> str:
        return f"{self._node.path()}/{self.name()}"

    def parmTemplate(self) -> ParmDef:
        return self._template

    def __repr__(self) -> str:
        return f"<hou.Parm {self.name()} in {self._node.path()}>"

    # ---- evaluation

    def _is_string(self) -> bool:
        return self._template.type in _STRING_TYPES

    def _raw_at(self, at_frame: float) -> object:
        _main_thread(f"Parm.eval({self.name()})")
        if self._expression is None:
            return self._value
        if self._language is exprLanguage.Python:
            _session.eval_frame.append(at_frame)
            _session.pwd.append(self._node)
            try:
                code = self._expression
                if "\n" in code:
                    scope: dict[str, object] = {"hou": _module()}
                    exec("def _expr():\n" + "\n".join("    " + ln for ln in code.splitlines()), scope)
                    return scope["_expr"]()  # type: ignore[operator]
                return eval(code, {"hou": _module()})
            finally:
                _session.eval_frame.pop()
                _session.pwd.pop()
        if self._is_string():
            return self._expression
        return _eval_hscript(self._expression, self._node, at_frame)

    def evalAtFrame(self, at_frame: float) -> int | float | str:
        raw = self._raw_at(at_frame)
        kind = self._template.type
        if self._is_string():
            return _expand(str(raw), self._node, at_frame)
        if kind in _FLOAT_TYPES:
            return float(raw)  # type: ignore[arg-type]
        return int(round(float(raw)))  # type: ignore[arg-type]

    def eval(self) -> int | float | str:
        return self.evalAtFrame(frame())

    def evalAsStringAtFrame(self, at_frame: float) -> str:
        value = self.evalAtFrame(at_frame)
        if self._template.menu_items and isinstance(value, int) and self._template.type == "ordinal":
            return self._template.menu_items[value][0]  # menus evaluate to their token
        return str(value)

    def evalAsString(self) -> str:
        return self.evalAsStringAtFrame(frame())

    def evalAsFloatAtFrame(self, at_frame: float) -> float:
        value = self.evalAtFrame(at_frame)
        if isinstance(value, str):
            raise TypeError(f"{self.path()} is a string parameter; it cannot evaluate as a float")
        return float(value)

    def evalAsFloat(self) -> float:
        return self.evalAsFloatAtFrame(frame())

    def evalAsIntAtFrame(self, at_frame: float) -> int:
        value = self.evalAtFrame(at_frame)
        if isinstance(value, str):
            raise TypeError(f"{self.path()} is a string parameter; it cannot evaluate as an int")
        return int(value)

    def evalAsInt(self) -> int:
        return self.evalAsIntAtFrame(frame())

    def unexpandedString(self) -> str:
        _main_thread("Parm.unexpandedString")
        if not self._is_string():
            raise OperationFailed(f"{self.path()} is not a string parameter")
        return str(self._expression if self._expression is not None else self._value)

    # ---- setting

    def set(
        self, value: object, language: EnumValue | None = None, follow_parm_reference: bool = True
    ) -> None:
        _main_thread(f"Parm.set({self.name()})")
        if self._locked:
            raise PermissionError(f"{self.path()} is locked")
        kind = self._template.type
        if self._is_string():
            if not isinstance(value, str):
                raise TypeError(f"{self.path()}: a string parameter takes a str (got {type(value).__name__})")
        elif kind in _FLOAT_TYPES | _INT_TYPES:
            if isinstance(value, str) or not isinstance(value, (int, float)):
                raise TypeError(
                    f"{self.path()}: a numeric parameter takes a number (got {type(value).__name__})"
                )
            value = float(value) if kind in _FLOAT_TYPES else int(value)
        if kind == "multiparm" and int(value) < 0:  # type: ignore[call-overload]
            raise InvalidInput(f"{self.path()}: a multiparm cannot have {value} instances")
        self._expression = None  # setting a value replaces an expression
        self._value = value
        if kind == "multiparm":
            self._node._resize_multiparm(self)
        if not _session.undo_disabled:
            _session.undo_log.append(f"set {self.path()}")
        self._node._parm_changed()

    def setExpression(
        self, expression: str, language: EnumValue | None = None, replace_expression: bool = True
    ) -> None:
        _main_thread("Parm.setExpression")
        self._expression = expression
        self._language = language or exprLanguage.Hscript
        self._node._parm_changed()

    def expression(self) -> str:
        if self._expression is None:
            raise OperationFailed(f"{self.path()} has no expression")
        return self._expression

    def deleteAllKeyframes(self) -> None:
        """Removes the expression; the parm keeps what it evaluated to at the current frame."""
        _main_thread("Parm.deleteAllKeyframes")
        if self._locked:
            raise PermissionError(f"{self.path()} is locked")
        if self._expression is not None:
            value = self.eval()
            self._expression = None
            self._value = value
            self._node._parm_changed()

    def multiParmInstances(self) -> tuple[Parm, ...]:
        """The instance parms of a multiparm's count parm, instance by instance; () for other parms."""
        return tuple(p for row in self._node._multi.get(self.name(), []) for p in row)

    def lock(self, on: bool) -> None:
        self._locked = on

    def isLocked(self) -> bool:
        return self._locked

    def disable(self, on: bool) -> None:
        self._disabled = on

    # ---- menus and buttons

    def _run_script(self, code: str, kwargs: dict[str, object], *, want_result: bool) -> object:
        scope: dict[str, object] = {"hou": _module(), "kwargs": kwargs}
        with _as_pwd(self._node):
            if want_result and "\n" not in code.strip():
                return eval(code, scope)  # a single-line menu script is an expression
            body = (
                code
                if not want_result
                else "def _menu():\n" + "\n".join("    " + ln for ln in code.splitlines())
            )
            exec(body, scope)
            return scope["_menu"]() if want_result else None  # type: ignore[operator]

    def _menu_pairs(self) -> list[tuple[str, str]]:
        t = self._template
        if t.menu_script:
            if t.menu_language != "python":
                raise OperationFailed("fake hou runs Python menu scripts only")
            items = self._run_script(t.menu_script, {"node": self._node, "parm": self}, want_result=True)
            flat = [str(i) for i in items]  # type: ignore[attr-defined]
            if len(flat) % 2:
                raise OperationFailed(f"{self.path()}: the menu script must return token/label pairs")
            return list(zip(flat[0::2], flat[1::2], strict=True))
        return list(t.menu_items)

    def menuItems(self) -> tuple[str, ...]:
        return tuple(token for token, _ in self._menu_pairs())

    def menuLabels(self) -> tuple[str, ...]:
        return tuple(label for _, label in self._menu_pairs())

    def pressButton(self, arguments: dict[str, object] | None = None) -> None:
        _main_thread("Parm.pressButton")
        callback = self._template.callback
        if not callback:
            return
        if self._template.tags.get("script_callback_language", "hscript") != "python":
            raise OperationFailed("fake hou runs Python callbacks only")
        kwargs: dict[str, object] = {
            "node": self._node,
            "parm": self,
            "parm_name": self.name(),
            "script_parm": self.name(),
            "script_value": str(self.eval()),
            "script_value0": str(self.eval()),
            "script_multiparm_index": "-1",
            "script_multiparm_nesting": "0",
        }
        kwargs.update(arguments or {})
        self._run_script(callback, kwargs, want_result=False)


# ---------------------------------------------------------------------------------------------------
# Node types


@dataclass
class NodeType:
    category_name: str
    type_name: str
    node_class: type[Node]
    parms: list[ParmDef]
    python_module: str = ""
    default_name: str = ""
    definition: Path | None = None  # an asset's expanded definition folder: its children come from there
    _module: types.ModuleType | None = None

    def name(self) -> str:
        return self.type_name

    def nameComponents(self) -> tuple[str, str, str, str]:
        parts = self.type_name.split("::")
        if len(parts) == 3:
            return ("", parts[0], parts[1], parts[2])
        return ("", "", self.type_name, "")

    def category(self) -> NodeTypeCategory:
        return NodeTypeCategory(self.category_name)

    def hdaModule(self) -> types.ModuleType:
        if not self.python_module:
            raise OperationFailed(f"{self.type_name} is not a digital asset with a PythonModule")
        if self._module is None:
            module = types.ModuleType(f"hdamodule_{self.type_name}")
            module.__dict__["hou"] = _module()
            exec(
                compile(self.python_module, f"opdef:/{self.type_name}?PythonModule", "exec"), module.__dict__
            )
            self._module = module
        return self._module


@dataclass(frozen=True)
class NodeTypeCategory:
    category_name: str

    def name(self) -> str:
        return self.category_name


def _p(name: str, kind: str, default: str = "", menu: Sequence[tuple[str, str]] = ()) -> ParmDef:
    return ParmDef(name=name, type=kind, defaults=[Default(default)], menu_items=list(menu))


_XFORM_PARMS = [
    *(_p(n, "float", "0") for n in ("tx", "ty", "tz", "rx", "ry", "rz")),
    *(_p(n, "float", "1") for n in ("sx", "sy", "sz", "scale")),
    _p("xOrd", "string", "srt"),
    _p("rOrd", "string", "xyz"),
]
# Houdini's `cam` object (defaults as in a fresh Houdini scene).
_CAM_PARMS = [
    *_XFORM_PARMS,
    _p("focal", "float", "50"),
    _p(
        "focalunits",
        "string",
        "mm",
        [("mm", "millimeters"), ("m", "meters"), ("nm", "nanometers"), ("in", "inches"), ("ft", "feet")],
    ),
    _p("aperture", "float", "41.4214"),
    _p("resx", "integer", "1920"),
    _p("resy", "integer", "1080"),
    _p("aspect", "float", "1"),
    _p("near", "float", "0.001"),
    _p("far", "float", "10000"),
    _p("projection", "string", "perspective", [("perspective", "Perspective"), ("ortho", "Orthographic")]),
    _p("winx", "float", "0"),
    _p("winy", "float", "0"),
    _p("winsizex", "float", "1"),
    _p("winsizey", "float", "1"),
    _p("vm_background", "image", ""),
]

_TYPES: dict[tuple[str, str], NodeType] = {}


def _node_type(category: str, name: str) -> NodeType:
    if not _TYPES:
        _register_types()
    try:
        return _TYPES[(category, name)]
    except KeyError:
        raise OperationFailed(f"Invalid node type name: {name!r} in {category}") from None


def _register_types() -> None:
    for t in (
        NodeType("Manager", "root", Node, []),
        NodeType("Manager", "obj", OpNode, []),
        NodeType("Manager", "out", OpNode, []),
        NodeType("Driver", "ifd", RopNode, list(IFD_PARMS), default_name="mantra"),
        NodeType("Object", "cam", ObjNode, _CAM_PARMS),
        NodeType("Object", "null", ObjNode, list(_XFORM_PARMS)),
        NodeType("Object", "geo", ObjNode, list(_XFORM_PARMS)),
        NodeType("Sop", "null", SopNode, []),
        NodeType("Sop", "file", SopNode, [_p("file", "geometry", "default.bgeo")]),
        NodeType("Sop", "output", SopNode, [_p("outputidx", "integer", "0")]),
    ):
        _TYPES[(t.category_name, t.type_name)] = t
    ds = dialogscript.load(HDA_DIR / "DialogScript")
    _TYPES[("Sop", ds.name)] = NodeType(
        "Sop",
        ds.name,
        SopNode,
        ds.parms,
        python_module=(HDA_DIR / "PythonModule").read_text(encoding="utf-8"),
        default_name=ds.name.split("::")[1],
        definition=HDA_DIR,
    )


_CHILD_CATEGORY = {"root": "Manager", "obj": "Object", "geo": "Sop", "out": "Driver"}


class Geometry:
    """hou.Geometry, as far as the tests look: detail attributes (``attribValue``)."""

    def __init__(self, detail: dict[str, str] | None = None) -> None:
        self._detail = dict(detail or {})

    def attribValue(self, name: str) -> str:
        if name not in self._detail:
            raise OperationFailed(f"no detail attribute {name!r}")
        return self._detail[name]

    def isEmpty(self) -> bool:  # our own shorthand: no attributes = nothing came through
        return not self._detail


@dataclass(frozen=True)
class _SubnetInput:
    """``(n)`` in an asset's Contents: the asset's own input n."""

    index: int


# ---------------------------------------------------------------------------------------------------
# Nodes


class NetworkMovableItem:
    pass


class Node(NetworkMovableItem):
    def __init__(self, name: str, parent: Node | None, node_type: NodeType) -> None:
        self._name = name
        self._parent = parent
        self._type = node_type
        self._children: dict[str, Node] = {}
        self._parms = {p.name: Parm(self, p) for p in node_type.parms}
        self._inputs: list[Node | None] = []
        self._id = _session.next_id
        self._position = (0.0, 0.0)
        self._display = False
        self._destroyed = False
        self._dirty = True
        self._cooks = 0
        self._geometry: Geometry | None = None
        self._cached_user_data: dict[str, object] = {}
        self._multi: dict[str, list[list[Parm]]] = {}  # multiparm count parm -> its instances' parms
        _session.next_id += 1
        _session.nodes_by_id[self._id] = self
        for parm in list(self._parms.values()):
            if parm._template.type == "multiparm":
                self._resize_multiparm(parm)

    def __repr__(self) -> str:
        return f"<hou.{type(self).__name__} {self.path()}>"

    # ---- identity and paths

    def name(self) -> str:
        return self._name

    def path(self) -> str:
        if self._parent is None:
            return "/"
        parent = self._parent.path()
        return f"{parent.rstrip('/')}/{self._name}"

    def type(self) -> NodeType:
        return self._type

    def sessionId(self) -> int:
        return self._id

    def parent(self) -> Node | None:
        return self._parent

    def children(self) -> tuple[Node, ...]:
        _main_thread("Node.children")
        return tuple(self._children.values())

    def node(self, node_path: str) -> Node | None:
        _main_thread("Node.node")
        if node_path.startswith("/"):
            current: Node | None = _session.root
        else:
            current = self
        for part in node_path.strip("/").split("/"):
            if current is None:
                return None
            if part in ("", "."):
                continue
            current = current._parent if part == ".." else current._children.get(part)
        return current

    # ---- parms

    def parm(self, parm_path: str) -> Parm | None:
        _main_thread(f"Node.parm({parm_path})")
        return self._parms.get(parm_path)

    def parms(self) -> tuple[Parm, ...]:
        return tuple(self._parms.values())

    def _resize_multiparm(self, count: Parm) -> None:
        """Creates or removes instance parms until the multiparm has as many instances as its value."""
        template = count._template
        rows = self._multi.setdefault(template.name, [])
        wanted = int(count._value)  # type: ignore[call-overload]
        while len(rows) > wanted:
            for parm in rows.pop():
                del self._parms[parm.name()]
        while len(rows) < wanted:
            number = str(template.start_offset + len(rows))
            row = [
                Parm(self, dataclasses.replace(t, name=t.name.replace("#", number)))
                for t in template.instances
            ]
            for parm in row:
                self._parms[parm.name()] = parm
            rows.append(row)

    def evalParm(self, parm_path: str) -> int | float | str:
        parm = self.parm(parm_path)
        if parm is None:
            raise OperationFailed(f"Invalid parameter name {parm_path!r}")
        return parm.eval()

    # ---- networks

    def _create_child(self, name: str | None, category: str, type_name: str) -> Node:
        node_type = _node_type(category, type_name)
        base = name or (node_type.default_name or type_name)
        if name is None:
            i = 1
            while f"{base}{i}" in self._children:
                i += 1
            base = f"{base}{i}"
        elif base in self._children:
            raise OperationFailed(f"A node named {base!r} already exists in {self.path()}")
        child = node_type.node_class(base, self, node_type)
        self._children[base] = child
        if isinstance(child, SopNode) and not any(
            isinstance(c, SopNode) and c._display for c in self._children.values()
        ):
            child._display = True  # the first SOP of a network gets the display flag
        if isinstance(child, SopNode) and node_type.definition is not None:
            child._load_contents(node_type.definition)
        return child

    def createNode(
        self,
        node_type_name: str,
        node_name: str | None = None,
        run_init_scripts: bool = True,
        load_contents: bool = True,
        exact_type_name: bool = False,
        force_valid_node_name: bool = False,
    ) -> Node:
        _main_thread("Node.createNode")
        category = _CHILD_CATEGORY.get(self._type.type_name)
        if category is None:
            raise OperationFailed(f"{self.path()} cannot contain nodes")
        return self._create_child(node_name, category, node_type_name)

    def inputs(self) -> tuple[Node | None, ...]:
        return tuple(self._inputs)

    def setInput(
        self, input_index: int, item_to_become_input: NetworkMovableItem | None, output_index: int = 0
    ) -> None:
        _main_thread("Node.setInput")
        if item_to_become_input is not None and (
            not isinstance(item_to_become_input, Node) or item_to_become_input._parent is not self._parent
        ):
            raise OperationFailed("inputs must come from the same network")
        while len(self._inputs) <= input_index:
            self._inputs.append(None)
        self._inputs[input_index] = item_to_become_input
        _session.unsaved_changes += 1
        self._dirty_downstream()

    def destroy(self) -> None:
        _main_thread("Node.destroy")
        for child in list(self._children.values()):
            child.destroy()
        if self._parent is not None:
            self._parent._children.pop(self._name, None)
        _session.nodes_by_id.pop(self._id, None)
        if self in _session.selection:
            _session.selection.remove(self)
        self._destroyed = True

    # ---- UI state

    def setSelected(
        self, on: bool, clear_all_selected: bool = False, show_asset_if_selected: bool = False
    ) -> None:
        if clear_all_selected:
            _session.selection.clear()
        if on and self not in _session.selection:
            _session.selection.append(self)
        if not on and self in _session.selection:
            _session.selection.remove(self)

    def isSelected(self) -> bool:
        return self in _session.selection

    def moveToGoodPosition(
        self,
        relative_to_inputs: bool = True,
        move_inputs: bool = True,
        move_outputs: bool = True,
        move_unconnected: bool = True,
    ) -> Vector2:
        source = next((i for i in self._inputs if i is not None), None)
        x, y = source._position if source is not None else (0.0, 0.0)
        self._position = (x, y - 1.0)
        return Vector2(*self._position)

    def position(self) -> Vector2:
        return Vector2(*self._position)

    def hdaModule(self) -> types.ModuleType:
        return self._type.hdaModule()

    def hm(self) -> types.ModuleType:
        return self.hdaModule()

    # ---- user data that is neither saved nor cooked (hou.Node.setCachedUserData)

    def setCachedUserData(self, name: str, value: object) -> None:
        _main_thread("Node.setCachedUserData")
        self._cached_user_data[name] = value

    def cachedUserData(self, name: str) -> object:
        _main_thread("Node.cachedUserData")
        return self._cached_user_data.get(name)

    # ---- cooking

    def _parm_changed(self) -> None:
        """Parms are used for cooking: the node and its dependents go dirty, the hip file is modified,
        and with a UI the viewport re-cooks what it displays."""
        _session.unsaved_changes += 1
        self._dirty_downstream()
        if _session.ui_available and self._parent is not None:
            shown = self._parent._displayed_sop()
            if shown is not None and shown._dirty:
                shown._cook()

    def _dirty_downstream(self) -> None:
        self._dirty = True
        if self._parent is None:
            return
        for sibling in self._parent._children.values():
            if any(i is self for i in sibling._inputs) and not sibling._dirty:
                sibling._dirty_downstream()
        if isinstance(self._parent, SopNode):  # a node inside an asset dirties the asset
            self._parent._dirty_downstream()

    def _displayed_sop(self) -> SopNode | None:
        return next((c for c in self._children.values() if isinstance(c, SopNode) and c._display), None)

    def _cook(self) -> Geometry:
        return Geometry()


class OpNode(Node):
    pass


class SopNode(OpNode):
    def cookCount(self) -> int:
        return self._cooks

    def geometry(self) -> Geometry:
        _main_thread("SopNode.geometry")
        return self._cook()

    def _input_geometry(self, index: int) -> Geometry:
        source = self._inputs[index] if index < len(self._inputs) else None
        if isinstance(source, _SubnetInput):  # inside an asset: the asset's own input
            parent = self._parent
            assert isinstance(parent, SopNode)
            return parent._input_geometry(source.index)
        return source._cook() if isinstance(source, SopNode) else Geometry()

    def _cook(self) -> Geometry:
        if not self._dirty and self._geometry is not None:
            return self._geometry
        kind = self._type.type_name
        if kind == "file":
            geometry = Geometry({"source": self._parms["file"].evalAsString()})
        elif self._type.definition is not None or kind == "subnet":
            inner = self._output_child()
            geometry = inner._cook() if inner is not None else Geometry()  # no children: nothing
        else:  # null, output and the like pass their first input through
            geometry = self._input_geometry(0)
        self._geometry, self._dirty = geometry, False
        self._cooks += 1
        return geometry

    def _output_child(self) -> SopNode | None:
        outputs = [
            c
            for c in self._children.values()
            if isinstance(c, SopNode) and c._type.type_name == "output" and c._parms["outputidx"].eval() == 0
        ]
        return outputs[0] if outputs else self._displayed_sop()

    def _load_contents(self, definition: Path) -> None:
        """The asset's children, read through the definition's Sections.list files as Houdini does."""
        from tests.houdini import expanded_hda

        parts = expanded_hda.load_contents(definition)
        if parts is None:
            return
        made = {}
        for child in expanded_hda.children(parts):
            node = self._create_child(child.name, "Sop", child.type_name)
            node._display = child.display
            made[child.name] = node
            value = child.parm_value("outputidx")
            if value is not None and "outputidx" in node._parms:
                node._parms["outputidx"]._value = int(value)
        for child in expanded_hda.children(parts):
            node = made[child.name]
            for index, source in sorted(child.inputs.items()):
                while len(node._inputs) <= index:
                    node._inputs.append(None)
                indirect = re.fullmatch(r"\((\d+)\)", source)
                node._inputs[index] = _SubnetInput(int(indirect.group(1))) if indirect else made[source]  # type: ignore[assignment]

    def setDisplayFlag(self, on: bool) -> None:
        if on and self._parent is not None:
            for sibling in self._parent._children.values():
                if isinstance(sibling, SopNode):
                    sibling._display = False
        self._display = on

    def isDisplayFlagSet(self) -> bool:
        return self._display


class ObjNode(OpNode):
    def _float(self, name: str, at_frame: float) -> float:
        parm = self._parms[name]
        return parm.evalAsFloatAtFrame(at_frame)

    def localTransformAtTime(self, time: float) -> Matrix4:
        at_frame = timeToFrame(time, full_precision=True)
        uniform = self._float("scale", at_frame)
        parts = {
            "s": hmath.buildScale(*(self._float(n, at_frame) * uniform for n in ("sx", "sy", "sz"))),
            "r": hmath.buildRotate(
                tuple(self._float(n, at_frame) for n in ("rx", "ry", "rz")),
                order=self._parms["rOrd"].evalAsStringAtFrame(at_frame),
            ),
            "t": hmath.buildTranslate(*(self._float(n, at_frame) for n in ("tx", "ty", "tz"))),
        }
        m = Matrix4(1.0)
        for step in self._parms["xOrd"].evalAsStringAtFrame(at_frame):
            m = m * parts[step]
        return m

    def worldTransformAtTime(self, time: float) -> Matrix4:
        """Local transform at ``time`` (seconds), then the parent object's (input 0) world transform."""
        _main_thread("ObjNode.worldTransformAtTime")
        local = self.localTransformAtTime(time)
        parent = self._inputs[0] if self._inputs else None
        if isinstance(parent, ObjNode):
            return local * parent.worldTransformAtTime(time)
        return local

    def worldTransform(self) -> Matrix4:
        return self.worldTransformAtTime(frameToTime(frame()))

    def displayNode(self) -> Node | None:
        return next((c for c in self._children.values() if isinstance(c, SopNode) and c._display), None)


class RopNode(OpNode):
    """A render node (/out). ``render`` records the call and writes nothing (no renderer here)."""

    def render(
        self,
        frame_range: Sequence[float] | None = None,
        res: Sequence[int] | None = None,
        output_file: str | None = None,
        output_format: str | None = None,
        to_flipbook: bool = False,
        quality: int = 2,
        ignore_inputs: bool = False,
        method: object = None,
        ignore_bypass_flags: bool = False,
        ignore_lock_flags: bool = False,
        verbose: bool = False,
        output_progress: bool = False,
    ) -> None:
        _main_thread("RopNode.render")
        _session.renders.append(RenderCall(self.path(), tuple(float(f) for f in frame_range or ())))
        if self.type().name() != "ifd":
            raise OperationFailed(f"{self.path()}: the fake renders Mantra nodes only")
        try:
            if _session.render_failure:
                raise mantra.RenderError(_session.render_failure)
            mantra.render(self, frame_range or (), frame(), _session.shader_exports, frameToTime)
        except mantra.RenderError as exc:
            raise OperationFailed(f"The attempted operation failed.\nError: {exc}") from exc


# ---------------------------------------------------------------------------------------------------
# Module-level scene access


def _module() -> types.ModuleType:
    import sys

    return sys.modules[__name__] if sys.modules.get("hou") is None else sys.modules["hou"]


@contextmanager
def _as_pwd(node: Node) -> Iterator[None]:
    _session.pwd.append(node)
    try:
        yield
    finally:
        _session.pwd.pop()


def node(path: str) -> Node | None:
    _main_thread("node")
    base = pwd()
    return base.node(path)


def nodeBySessionId(session_id: int) -> Node | None:
    _main_thread("nodeBySessionId")
    return _session.nodes_by_id.get(session_id)


def pwd() -> Node:
    if _session.pwd:
        return _session.pwd[-1]
    assert _session.root is not None
    obj = _session.root._children.get("obj")
    return obj if obj is not None else _session.root


def phm() -> types.ModuleType:
    return pwd().hdaModule()


def root() -> Node:
    assert _session.root is not None
    return _session.root


def selectedNodes(include_hidden: bool = False) -> tuple[Node, ...]:
    _main_thread("selectedNodes")
    return tuple(_session.selection)


def clearAllSelected() -> None:
    _session.selection.clear()


def isUIAvailable() -> bool:
    return _session.ui_available


class ui:
    @staticmethod
    def displayMessage(
        text: str,
        buttons: Sequence[str] = ("OK",),
        severity: EnumValue = severityType.Message,
        default_choice: int = 0,
        close_choice: int = -1,
        help: str | None = None,  # hou's keyword
        title: str | None = None,
        details: str | None = None,
        details_label: str | None = None,
        details_expanded: bool = False,
        suppress: EnumValue | None = None,
    ) -> int:
        _main_thread("ui.displayMessage")
        if not _session.ui_available:
            raise NotAvailable("hou.ui is not available without a graphical user interface")
        if severity is severityType.Fatal:
            raise SystemExit("hou.severityType.Fatal exits Houdini")
        _session.messages.append(
            {
                "text": text,
                "severity": severity,
                "title": title,
                "details": details,
                "buttons": tuple(buttons),
            }
        )
        return default_choice

    @staticmethod
    def setStatusMessage(message: str, severity: EnumValue = severityType.Message) -> None:
        _main_thread("ui.setStatusMessage")
        if not _session.ui_available:
            raise NotAvailable("hou.ui is not available without a graphical user interface")
        _session.status_messages.append(message)


class UndosDisabler:
    def __enter__(self) -> UndosDisabler:
        _session.undo_disabled += 1
        return self

    def __exit__(self, *exc: object) -> None:
        _session.undo_disabled -= 1


class undos:
    @staticmethod
    def disabler() -> UndosDisabler:
        return UndosDisabler()

    @staticmethod
    def areEnabled() -> bool:
        return _session.undo_disabled == 0


class InterruptableOperation:
    """Context manager only. updateProgress/updateLongProgress are where Esc is noticed: they raise
    OperationInterrupted when the session's interrupt policy says the artist pressed it."""

    def __init__(
        self,
        operation_name: str,
        long_operation_name: str | None = None,
        open_interrupt_dialog: bool = False,
        timeout_ms: int = 0,
    ) -> None:
        self.operation_name = operation_name
        self.long_operation_name = long_operation_name
        self.open_interrupt_dialog = open_interrupt_dialog
        self.active = False
        self.calls: list[tuple[str, float, str | None]] = []
        self.interrupted = False

    def __enter__(self) -> InterruptableOperation:
        _main_thread("InterruptableOperation.__enter__")
        self.active = True
        _session.operations.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self.active = False

    def _update(self, kind: str, percentage: float, status: str | None) -> None:
        _main_thread(f"InterruptableOperation.{kind}")
        if not self.active:
            raise OperationFailed("InterruptableOperation used outside its `with` block")
        self.calls.append((kind, percentage, status))
        if self.interrupted or (_session.interrupt is not None and _session.interrupt(self)):
            self.interrupted = True
            raise OperationInterrupted("The operation was interrupted")

    def updateProgress(self, percentage: float = -1.0) -> None:
        self._update("updateProgress", percentage, None)

    def updateLongProgress(self, percentage: float = -1.0, long_op_status: str | None = None) -> None:
        self._update("updateLongProgress", percentage, long_op_status)
