"""The fake hou keeps Houdini's documented semantics (types-houdini docstrings); these pin them down."""

from __future__ import annotations

import threading
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest


def test_matrix4_is_row_major_with_row_vectors(hou: ModuleType) -> None:
    # Docstring of hou.hmath.buildTranslate: buildTranslate((1, 1, 2)) is this matrix.
    t = hou.hmath.buildTranslate((1, 1, 2))
    assert t.asTupleOfTuples() == ((1, 0, 0, 0), (0, 1, 0, 0), (0, 0, 1, 0), (1, 1, 2, 1))
    assert t.asTuple()[12:15] == (1, 1, 2)
    p = hou.Vector3(0, 0, 0) * t
    assert (p[0], p[1], p[2]) == (1, 1, 2)
    # p * M1 * M2 applies M1 first: scale, then translate.
    s = hou.hmath.buildScale(2, 2, 2)
    q = hou.Vector3(1, 0, 0) * (s * t)
    assert (q[0], q[1], q[2]) == (3, 1, 2)
    assert (t * t.inverted()).isAlmostEqual(hou.Matrix4(1.0))
    assert hou.Matrix4().asTuple() == (0.0,) * 16 and hou.Matrix4(1).asTuple()[0] == 1.0


def test_rotations_are_right_handed() -> None:
    from tests.houdini.fakes import hou

    r = hou.hmath.buildRotate(0, 90, 0)
    x = hou.Vector3(1, 0, 0) * r
    np.testing.assert_allclose([x[0], x[1], x[2]], [0, 0, -1], atol=1e-12)  # +90 about Y: X -> -Z
    y = hou.Vector3(0, 1, 0) * hou.hmath.buildRotate(90, 0, 0)
    np.testing.assert_allclose([y[0], y[1], y[2]], [0, 0, 1], atol=1e-12)  # +90 about X: Y -> +Z
    # "xyz" order: X applied first.
    both = hou.hmath.buildRotate(90, 90, 0, order="xyz")
    np.testing.assert_allclose(
        both.asTuple(),
        (hou.hmath.buildRotate(90, 0, 0) * hou.hmath.buildRotate(0, 90, 0)).asTuple(),
        atol=1e-12,
    )


def test_frame_time_conversion(hou: ModuleType) -> None:
    assert hou.frameToTime(1) == 0.0
    assert hou.frameToTime(25) == pytest.approx(1.0)
    assert hou.timeToFrame(hou.frameToTime(1001.5)) == 1001.5
    hou.setFps(30)
    assert hou.frameToTime(31) == pytest.approx(1.0)


def test_parms_evaluate_at_frames_and_expand_variables(hou: ModuleType) -> None:
    obj = hou.node("/obj")
    cam = obj.createNode("cam", "shotcam")
    assert cam.path() == "/obj/shotcam" and cam.type().name() == "cam"
    focal = cam.parm("focal")
    focal.setExpression("20 + hou.frame()", hou.exprLanguage.Python)
    assert focal.evalAtFrame(5) == 25.0 and focal.evalAsFloatAtFrame(1001) == 1021.0
    bg = cam.parm("vm_background")
    bg.set("$HIP/render/$OS.$F4.exr")
    assert (
        bg.evalAsStringAtFrame(7) == f"{Path(hou.hipFile.path()).parent.as_posix()}/render/shotcam.0007.exr"
    )
    assert bg.unexpandedString() == "$HIP/render/$OS.$F4.exr"
    with pytest.raises(TypeError):
        cam.parm("resx").set("wide")
    assert cam.parm("focalunits").evalAsString() == "mm"
    assert cam.parm("no_such_parm") is None


def test_node_paths_and_object_transforms(hou: ModuleType) -> None:
    obj = hou.node("/obj")
    rig = obj.createNode("null", "rig")
    cam = obj.createNode("cam")
    assert cam.name() == "cam1"
    cam.setInput(0, rig)
    geo = obj.createNode("geo")
    sop = geo.createNode("null")
    assert sop.node("../../cam1") is cam and hou.node("/obj/geo1/null1") is sop and hou.node("rig") is rig
    assert geo.displayNode() is sop
    rig.parm("tx").set(5.0)
    cam.parm("tz").setExpression("hou.frame()", hou.exprLanguage.Python)
    world = cam.worldTransformAtTime(hou.frameToTime(10))
    assert world.asTuple()[12:15] == (5.0, 0.0, 10.0)  # local (0, 0, 10), then the parent's (5, 0, 0)
    assert hou.nodeBySessionId(cam.sessionId()) is cam
    cam.destroy()
    assert hou.nodeBySessionId(cam.sessionId()) is None


def test_interruptable_operation_is_a_context_manager(hou: ModuleType) -> None:
    op = hou.InterruptableOperation("work", open_interrupt_dialog=True)
    with pytest.raises(hou.OperationFailed):
        op.updateProgress(0.5)
    hou._session.interrupt = lambda o: len(o.calls) >= 2
    with pytest.raises(hou.OperationInterrupted), hou.InterruptableOperation("work") as running:
        running.updateLongProgress(0.1, "one")
        running.updateLongProgress(0.2, "two")
    assert [c[2] for c in running.calls] == ["one", "two"]


def test_hou_off_the_main_thread_is_caught(hou: ModuleType) -> None:
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            hou.node("/obj")
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=worker, name="worker")
    thread.start()
    thread.join()
    assert errors and hou._session.thread_violations == ["node from worker"]
    hou._session.thread_violations.clear()


def test_hdefereval_runs_calls_on_the_main_thread(hou: ModuleType, hdefereval: ModuleType) -> None:
    seen: list[str] = []
    thread = threading.Thread(
        target=lambda: hdefereval.executeDeferred(lambda: seen.append(threading.current_thread().name))
    )
    thread.start()
    thread.join()
    assert seen == []
    assert hdefereval.process_events() == 1
    assert seen == [threading.main_thread().name]
    # Waiting on the main thread for the main thread would hang Houdini: the fake raises instead.
    with pytest.raises(RuntimeError, match="blocks Houdini forever"):
        hdefereval.executeInMainThreadWithResult(print)
    hou._session.ui_available = False
    with pytest.raises(RuntimeError):
        hdefereval.executeDeferred(print)
    # Without a UI the module cannot even be imported, as in hython.
    with pytest.raises(ImportError):
        import hdefereval as _  # noqa: F401
    hou._session.ui_available = True
    import hdefereval as again

    assert again is hdefereval


def test_sops_cook_lazily_and_count_their_cooks(hou: ModuleType) -> None:
    geo = hou.node("/obj").createNode("geo")
    sim = geo.createNode("file", "sim")
    out = geo.createNode("null", "OUT")
    out.setInput(0, sim)
    out.setDisplayFlag(True)
    assert out.geometry().attribValue("source") == "default.bgeo"
    cooks, changes = (sim.cookCount(), out.cookCount()), hou._session.unsaved_changes
    out.geometry()
    assert (sim.cookCount(), out.cookCount()) == cooks  # clean: nothing cooks again
    sim.parm("file").set("other.bgeo")  # dirties sim and OUT; the viewport re-cooks the displayed OUT
    assert (sim.cookCount(), out.cookCount()) == (cooks[0] + 1, cooks[1] + 1)
    assert hou._session.unsaved_changes == changes + 1 and hou.hipFile.hasUnsavedChanges()


def test_ui_is_missing_without_a_gui(hou: ModuleType) -> None:
    hou._session.ui_available = False
    assert not hou.isUIAvailable()
    with pytest.raises(hou.NotAvailable):
        hou.ui.displayMessage("hello")
