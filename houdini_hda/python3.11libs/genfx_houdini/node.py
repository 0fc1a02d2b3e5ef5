"""The Generate Collapse node: parameter callbacks, and everything that touches ``hou``.

Threading rule: every ``hou`` call happens on Houdini's main thread. A click reads the node and the
camera into a plain-data JobSpec (main thread, fast), then a worker thread (runner.Run) does the network
work and sends Updates back:

* graphical Houdini: through ``hdefereval.executeDeferred`` -> ``_apply`` on the main thread when Houdini
  is idle, so the UI never waits on the server;
* hython / hbatch (no UI): a modal loop inside ``hou.InterruptableOperation`` drains the Updates and calls
  ``updateLongProgress`` (Esc, or an interrupt, cancels the job on the server).

Errors reach the artist through ``hou.ui.displayMessage`` when there is a UI, as ``hou.NodeError``
otherwise, and always in the node's Status parameter.

Parameters are used for cooking: each write re-cooks the node and everything downstream and marks the
hip file modified. So the Status parm gets milestones only (submitted, a frame, the end), at most one
per STATUS_INTERVAL_S; per-step progress goes to the status bar and the node's cached user data
(``genfx_progress``: (fraction, text), neither saved nor cooked).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import hou

from genfx_houdini import parms as P
from genfx_houdini import passes_rop
from genfx_houdini.camera import camera_resolution, export_camera, find_camera
from genfx_houdini.deps import require_sdk
from genfx_houdini.errors import TITLE, UserError, describe_server_error
from genfx_houdini.job import FramePasses, JobSpec, fps_fraction
from genfx_houdini.runner import (
    ClientFactory,
    Failed,
    Finished,
    FrameReady,
    Recorded,
    Run,
    Status,
    Submitted,
    Update,
    default_client_factory,
)
from genfx_houdini.server_info import ServerSummary, SummaryCache

# Runs in flight, by hou.Node.sessionId(). Main thread only.
_RUNS: dict[int, Run] = {}
# Seam for tests and pipelines (e.g. a studio Client with TLS certificates).
client_factory: ClientFactory = default_client_factory
# Modal runs wait this long for the server to confirm a cancel before giving the node back.
CANCEL_WAIT_S = 60.0
# The Status parm is written at most this often (the end and errors always get through).
STATUS_INTERVAL_S = 1.0
PROGRESS_KEY = "genfx_progress"
_LABELS = {P.PLATE: "Plate", P.MASK: "Mask", P.DEPTH: "Depth", P.MOTION: "Motion Vectors"}
# When each node's Status was last written, by hou.Node.sessionId(). Main thread only.
_STATUS_WRITTEN: dict[int, float] = {}


# ---------------------------------------------------------------------------------------------------
# Parameters


def _node(kwargs: Mapping[str, object]) -> hou.OpNode:
    node = kwargs["node"]
    if not isinstance(node, hou.OpNode):
        raise TypeError(f"kwargs['node'] is not a node: {node!r}")
    return node


def _parm(node: hou.OpNode, name: str) -> hou.Parm:
    parm = node.parm(name)
    if parm is None:
        raise UserError(
            f"{node.path()} has no parameter {name!r}: its asset definition is out of date."
            " Match the node to the current definition (right-click > Match Current Definition)."
        )
    return parm


def _str(node: hou.OpNode, name: str) -> str:
    return _parm(node, name).evalAsString()


def _int(node: hou.OpNode, name: str) -> int:
    return _parm(node, name).evalAsInt()


def _float(node: hou.OpNode, name: str) -> float:
    return _parm(node, name).evalAsFloat()


def _instance_parm(node: hou.OpNode, template: str, number: int) -> hou.Parm:
    """Row ``number`` of a multiparm (``template`` holds '#')."""
    name = P.instance(template, number)
    return _parm(node, name)


def _set(node: hou.OpNode, name: str, value: str | int | float) -> None:
    parm = _parm(node, name)
    if parm.eval() != value:
        parm.set(value)


def _set_status(node: hou.OpNode, text: str, *, milestone: bool = True) -> None:
    """Writes Status (a cooking parm): always for a milestone, else only STATUS_INTERVAL_S after the
    last write."""
    now = time.monotonic()
    last = _STATUS_WRITTEN.get(node.sessionId())
    if not milestone and last is not None and now - last < STATUS_INTERVAL_S:
        return
    _STATUS_WRITTEN[node.sessionId()] = now
    _set(node, P.STATUS, text)


def _show_progress(node: hou.OpNode, text: str, fraction: float | None) -> None:
    """Progress outside the cooking parms: the node's cached user data and Houdini's status bar."""
    fraction = None if fraction is None else max(0.0, min(1.0, float(fraction)))
    node.setCachedUserData(PROGRESS_KEY, (fraction, text))
    if hou.isUIAvailable():
        hou.ui.setStatusMessage(f"GenFX {node.name()}: {text}")


def progress(node: hou.OpNode) -> tuple[float | None, str]:
    """The node's latest progress: (fraction 0..1 or None, text)."""
    value = node.cachedUserData(PROGRESS_KEY)
    if isinstance(value, tuple) and len(value) == 2:
        return value[0], str(value[1])
    return None, _str(node, P.STATUS)


def _report(node: hou.OpNode | None, error: UserError) -> None:
    """Shows an error to the artist: a dialog with a UI, hou.NodeError without one."""
    if node is not None:
        _set_status(node, "Error: " + error.message.splitlines()[0])
    if hou.isUIAvailable():
        hou.ui.displayMessage(
            error.message,
            severity=hou.severityType.Error,
            title=TITLE,
            details=error.details or None,
        )
    else:
        raise hou.NodeError(error.message)


# ---------------------------------------------------------------------------------------------------
# Reading the node (main thread)


def _check_pass_file(label: str, frame: int, path: str, fix: str) -> None:
    if not os.path.isfile(path):
        raise UserError(f"{label}: no file for frame {frame}: {path}. {fix}")


def _read_passes(node: hou.OpNode, frames: range, rop: hou.OpNode | None) -> tuple[FramePasses, ...]:
    """Each frame's pass files: Plate / Mask / Depth / Motion Vectors evaluated at the frame ($F4
    patterns), or, with a pass ROP, the files it rendered (Plate still from its parm). Every file named
    must exist."""
    passes = []
    for frame in frames:
        files = []
        for parm_name, kind in P.PASSES.items():
            if rop is not None and kind in P.RENDERED_PASSES:
                continue
            path = _parm(node, parm_name).evalAsStringAtFrame(frame).strip()
            if path:
                fix = "Fix the sequence pattern ($F4 = frame number), or clear it."
                _check_pass_file(f"{_LABELS[parm_name]} (Passes tab)", frame, path, fix)
                files.append((kind, path))
        if rop is not None:
            for kind, path in passes_rop.pass_files(rop, frame).items():
                fix = f"Did {rop.path()} render (Render Passes), and does it write this file?"
                _check_pass_file(f"The {kind} pass {rop.path()} renders", frame, path, fix)
                files.append((kind, path))
        if files:
            passes.append(FramePasses(frame, tuple(files)))
    return tuple(passes)


def _read_loras(node: hou.OpNode) -> tuple[tuple[str, float], ...]:
    """The LoRA rows: (name, weight). Limits (count, weight range, which model) are the server's to
    check: it names the row (loras[i]) when it refuses one."""
    rows = []
    for number in range(1, _int(node, P.LORAS) + 1):
        name = _instance_parm(node, P.LORA_NAME, number).evalAsString().strip()
        if not name:
            raise UserError(
                f"LoRA {number} (Prompt tab) has no name: pick one from its menu, or remove the row."
            )
        rows.append((name, _instance_parm(node, P.LORA_WEIGHT, number).evalAsFloat()))
    return tuple(rows)


def build_pass_rop(node: hou.OpNode, camera_path: str, start: int, end: int) -> hou.RopNode:
    """Creates or updates the node's Mantra pass ROP (passes_rop.py) and shows its path in Pass ROP."""
    pass_dir = _str(node, P.PASS_DIR).strip()
    if not pass_dir:
        raise UserError("Pass Folder is empty (Passes tab).")
    try:  # Mantra writes into existing folders only
        Path(pass_dir).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"Cannot create the Pass Folder {pass_dir} (Passes tab): {exc}") from exc
    parent = node.parent()
    objects = _str(node, P.PASS_OBJECTS).strip() or (parent.path() if parent is not None else "")
    rop = passes_rop.build(
        node,
        camera_path=camera_path,
        frame_start=start,
        frame_end=end,
        pass_dir=pass_dir,
        objects=objects,
        motion_export=_str(node, P.MOTION_EXPORT).strip(),
    )
    _set(node, P.PASS_ROP, rop.path())
    return rop


def _render_passes(node: hou.OpNode, camera_path: str, frames: range) -> hou.RopNode:
    rop = build_pass_rop(node, camera_path, frames[0], frames[-1])
    _show_progress(node, f"Rendering passes with {rop.path()}", None)
    _set_status(node, f"Rendering passes with {rop.path()}")
    passes_rop.render(rop, frames[0], frames[-1])
    return rop


def read_spec(node: hou.OpNode) -> JobSpec:
    """Everything Generate needs, read on the main thread. Raises UserError naming the parameter."""
    require_sdk()
    prompt = _str(node, P.PROMPT).strip()
    if not prompt:
        raise UserError("Prompt is empty: describe what to generate on the Prompt tab.")
    cam = find_camera(node, _str(node, P.CAMERA))
    start, end = _int(node, P.FRAME_START), _int(node, P.FRAME_END)
    if end < start:
        raise UserError(f"Frame range: the end ({end}) is before the start ({start}).")
    keyframe_step = _int(node, P.KEYFRAME_STEP)
    if keyframe_step < 0:
        raise UserError(f"Keyframe Step must be 0 (the server's default) or more (got {keyframe_step}).")
    frames = range(start, end + 1)
    track = export_camera(cam, frames)
    loras = _read_loras(node)
    if _int(node, P.OVERRIDE_RES):
        width, height = _int(node, P.RESX), _int(node, P.RESY)
        if width <= 0 or height <= 0:
            raise UserError(f"Resolution must be positive (got {width}x{height}).")
    else:
        width, height = track.width, track.height
        _set(node, P.RESX, width)
        _set(node, P.RESY, height)
    out_text = _str(node, P.OUTDIR).strip()
    if not out_text:
        raise UserError("Output Folder is empty (Output tab).")
    out_dir = Path(out_text)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"Cannot create the Output Folder {out_dir}: {exc}") from exc
    # Last, once everything cheap is known to be right: rendering the passes takes a while.
    rop = _render_passes(node, cam.path(), frames) if _str(node, P.PASS_SOURCE) == P.FROM_RENDER else None
    return JobSpec(
        node_id=node.sessionId(),
        node_path=node.path(),
        server=_str(node, P.SERVER).strip(),
        token=_str(node, P.TOKEN).strip(),
        camera_path=cam.path(),
        track=track,
        frame_start=start,
        frame_end=end,
        fps=fps_fraction(hou.fps()),
        keyframe_step=keyframe_step,
        prompt=prompt,
        negative_prompt=_str(node, P.NEGATIVE_PROMPT).strip(),
        model=_str(node, P.MODEL).strip(),
        loras=loras,
        controlnet_scale=_float(node, P.CONTROLNET_SCALE),
        seed=_int(node, P.SEED),
        steps=_int(node, P.STEPS),
        guidance=_float(node, P.GUIDANCE),
        width=width,
        height=height,
        passes=_read_passes(node, frames, rop),
        strength=_float(node, P.STRENGTH),
        out_dir=out_dir,
        name=node.name(),
    )


# ---------------------------------------------------------------------------------------------------
# Showing results (main thread)


def background_pattern(out_dir: Path, file_pattern: str) -> str:
    """The job's frames as a Houdini sequence path: the server's ``n1.####.exr`` in ``/shots/a/genfx/n1``
    -> ``$HIP/genfx/n1/n1.$F4.exr`` (hip-relative when it can be). ``$F4`` pads like the server's '#'
    run: to four digits, longer when needed."""
    from genfx.frames import split_pattern

    before, digits, after = split_pattern(file_pattern)
    pattern = (out_dir / f"{before}$F{digits}{after}").as_posix()
    hip = hou.text.expandString("$HIP").rstrip("/")
    if hip and pattern.startswith(hip + "/"):
        pattern = "$HIP" + pattern[len(hip) :]
    return pattern


def point_camera_background(camera_path: str, out_dir: Path, file_pattern: str) -> None:
    """Sets the camera's background image (vm_background) to the frame sequence."""
    cam = hou.node(camera_path) if camera_path else None
    parm = cam.parm("vm_background") if isinstance(cam, hou.OpNode) else None
    if parm is None:
        return
    pattern = background_pattern(out_dir, file_pattern)
    if parm.unexpandedString() != pattern:
        parm.set(pattern)


def _apply_to_node(node: hou.OpNode, camera_path: str, update: Update) -> None:
    """Shows one Update on the node. Failed updates are the caller's to report."""
    if isinstance(update, Status):
        _show_progress(node, update.text, update.fraction)
        if update.fraction is None:  # a state change or an upload, not a denoising step
            _set_status(node, update.text, milestone=False)
    elif isinstance(update, Submitted):
        _set(node, P.JOB_ID, update.job_id)
        text = f"Submitted job {update.job_id} (seed {update.seed}, {update.frames_total} frames)"
        _show_progress(node, text, 0.0)
        _set_status(node, text)
    elif isinstance(update, FrameReady):
        fraction = update.frames_done / update.frames_total if update.frames_total else None
        text = f"Frame {update.frame} ready ({update.frames_done}/{update.frames_total})"
        _show_progress(node, text, fraction)
        _set_status(node, text, milestone=False)
        if _int(node, P.SET_BACKGROUND):
            point_camera_background(camera_path, update.path.parent, update.file_pattern)
    elif isinstance(update, Recorded):
        _set(node, P.RECORDED, update.text)
    elif isinstance(update, Finished):
        text = "Error: " + update.message.splitlines()[0] if update.state == "failed" else update.message
        _show_progress(node, text, 1.0 if update.state == "succeeded" else None)
        _set_status(node, text)


def _apply(node_id: int, run: Run, camera_path: str, update: Update) -> None:
    """Main thread (hdefereval): applies an Update from a background run to its node, if it still exists."""
    if isinstance(update, Finished) and _RUNS.get(node_id) is run:
        del _RUNS[node_id]
    found = hou.nodeBySessionId(node_id)
    node = found if isinstance(found, hou.OpNode) else None
    with hou.undos.disabler():
        if node is not None:
            _apply_to_node(node, camera_path, update)
        if isinstance(update, Failed):
            _report(node, UserError(update.message, update.details))


# ---------------------------------------------------------------------------------------------------
# Driving a run


def _start(
    node: hou.OpNode, make_run: Callable[[Callable[[Update], None]], Run], camera_path: str, modal: bool
) -> Finished | None:
    node_id = node.sessionId()
    if not modal:
        import hdefereval  # graphical Houdini only

        holder: list[Run] = []

        def sink(update: Update) -> None:  # worker thread: never touch hou here
            hdefereval.executeDeferred(_apply, node_id, holder[0], camera_path, update)

        run = make_run(sink)
        holder.append(run)
        _RUNS[node_id] = run
        run.start()
        return None

    updates: queue.Queue[Update] = queue.Queue()
    run = make_run(updates.put)
    _RUNS[node_id] = run
    failures: list[Failed] = []
    finished: Finished | None = None

    def drain(timeout: float) -> None:
        nonlocal finished
        try:
            update = updates.get(timeout=timeout)
        except queue.Empty:
            return
        while True:
            _apply_to_node(node, camera_path, update)
            if isinstance(update, Failed):
                failures.append(update)
            if isinstance(update, Finished):
                finished = update
            try:
                update = updates.get_nowait()
            except queue.Empty:
                return

    def cancel_and_wait() -> None:
        """Cancels on the server and waits (bounded) for the run to confirm it; a second Ctrl-C stops
        the wait, not the cancel, which is already on its way."""
        run.cancel()
        _set_status(node, "Interrupted: cancelling the job on the server")
        deadline = time.monotonic() + CANCEL_WAIT_S
        try:
            while finished is None and time.monotonic() < deadline:
                drain(0.1)
        except KeyboardInterrupt:
            pass

    try:
        with (
            hou.undos.disabler(),
            hou.InterruptableOperation(
                "GenFX", long_operation_name=f"Generate Collapse: {node.path()}", open_interrupt_dialog=True
            ) as operation,
        ):
            run.start()
            try:
                while finished is None:
                    drain(0.1)
                    if finished is None:
                        fraction, text = progress(node)
                        operation.updateLongProgress(-1.0 if fraction is None else fraction, text)
            except hou.OperationInterrupted:  # Esc in graphical Houdini's interrupt dialog
                cancel_and_wait()
            except KeyboardInterrupt:  # hython has no Esc: Ctrl-C arrives here, as in any Python
                cancel_and_wait()
                raise
    finally:
        if _RUNS.get(node_id) is run:
            del _RUNS[node_id]
    if failures:
        _report(node, UserError(failures[0].message, failures[0].details))
    return finished or Finished("cancelled", "Interrupted; the server did not confirm the cancel in time")


def _busy(node: hou.OpNode) -> Run | None:
    run = _RUNS.get(node.sessionId())
    return run if run is not None and not run.done else None


def generate(node: hou.OpNode, *, modal: bool | None = None) -> Finished | None:
    """Generate on ``node``. With a UI it returns at once (the work runs in the background); without one
    (``modal`` defaults to ``not hou.isUIAvailable()``) it blocks in a hou.InterruptableOperation and
    returns the run's Finished update, raising hou.NodeError on failure."""
    modal = (not hou.isUIAvailable()) if modal is None else modal
    busy = _busy(node)
    if busy is not None:
        _report(node, UserError(f"{node.path()} is already generating (job {busy.job_id or 'starting'})."))
        return None
    try:
        spec = read_spec(node)
    except UserError as exc:
        _report(node, exc)
        return None
    _set(node, P.JOB_ID, "")
    _set(node, P.RECORDED, "")
    _show_progress(node, "Starting", 0.0)
    _set_status(node, "Starting")

    def make_run(sink: Callable[[Update], None]) -> Run:
        return Run(address=spec.server, token=spec.token, spec=spec, sink=sink, client_factory=client_factory)

    return _start(node, make_run, spec.camera_path, modal)


def load_results(node: hou.OpNode, *, modal: bool | None = None) -> Finished | None:
    """Downloads the frames of the node's job (Job ID) into the Output Folder; follows it if it still runs."""
    modal = (not hou.isUIAvailable()) if modal is None else modal
    try:
        require_sdk()
        if _busy(node) is not None:
            raise UserError(f"{node.path()} is busy with a job: wait, or Cancel it first.")
        job_id = _str(node, P.JOB_ID).strip()
        if not job_id:
            raise UserError("No Job ID: click Generate first, or paste the id of a job from this server.")
        out_text = _str(node, P.OUTDIR).strip()
        if not out_text:
            raise UserError("Output Folder is empty (Output tab).")
        out_dir = Path(out_text)
        try:
            camera_path = find_camera(node, _str(node, P.CAMERA)).path()
        except UserError:
            camera_path = ""  # results still load; there is just no camera to put them behind
    except UserError as exc:
        _report(node, exc)
        return None
    server, token = _str(node, P.SERVER).strip(), _str(node, P.TOKEN).strip()
    _show_progress(node, f"Loading the results of job {job_id}", 0.0)
    _set_status(node, f"Loading the results of job {job_id}")

    def make_run(sink: Callable[[Update], None]) -> Run:
        return Run(
            address=server,
            token=token,
            job_id=job_id,
            out_dir=out_dir,
            sink=sink,
            client_factory=client_factory,
        )

    return _start(node, make_run, camera_path, modal)


def cancel(node: hou.OpNode) -> None:
    """Cancels the node's job on the server (CancelJob): its own run, or the Job ID after a reload."""
    run = _busy(node)
    if run is not None:
        run.cancel()
        _set_status(node, "Cancelling")
        return
    try:
        require_sdk()
        job_id = _str(node, P.JOB_ID).strip()
        if not job_id:
            raise UserError("Nothing to cancel: this node has not submitted a job.")
    except UserError as exc:
        _report(node, exc)
        return
    server, token = _str(node, P.SERVER).strip(), _str(node, P.TOKEN).strip()
    node_id = node.sessionId()
    _set_status(node, f"Cancelling job {job_id}")

    def work() -> Update:
        from genfx.client import GenFXError, state_name

        try:
            with client_factory(server, token) as client:
                state = state_name(client.cancel(job_id).state)
        except GenFXError as exc:
            err = describe_server_error(exc.code, exc.message, server or "the default address (GENFX_SERVER)")
            return Failed(f"Could not cancel job {job_id}. {err.message}", err.details)
        if state in ("queued", "running"):
            return Status(
                f"Cancel requested for job {job_id} ({state}): it stops between two denoising steps"
            )
        return Status(f"Job {job_id} is {state}")

    def show(update: Update) -> None:  # main thread
        found = hou.nodeBySessionId(node_id)
        target = found if isinstance(found, hou.OpNode) else None
        if target is not None and isinstance(update, Status):
            _set_status(target, update.text)
        if isinstance(update, Failed):
            _report(target, UserError(update.message, update.details))

    if not hou.isUIAvailable():
        show(work())
        return
    import hdefereval

    threading.Thread(target=lambda: hdefereval.executeDeferred(show, work()), daemon=True).start()


# ---------------------------------------------------------------------------------------------------
# Menus that show the server: Model, each LoRA row, and the Server Defaults line (server_info.py)

SERVER_INFO = SummaryCache()


def _show_server_defaults(node_id: int, text: str) -> None:
    found = hou.nodeBySessionId(node_id)
    if isinstance(found, hou.OpNode):
        with hou.undos.disabler():
            _set(found, P.SERVER_DEFAULTS, text)


def _server_summary(node: hou.OpNode) -> ServerSummary:
    """Main thread, never blocks: the cached summary for the node's server; a worker refreshes it and,
    with a UI, shows its Server Defaults on the node when it arrives."""
    server, token = _str(node, P.SERVER).strip(), _str(node, P.TOKEN).strip()
    node_id = node.sessionId()
    on_answer = None
    if hou.isUIAvailable():
        import hdefereval

        def on_answer(summary: ServerSummary) -> None:  # worker thread
            hdefereval.executeDeferred(_show_server_defaults, node_id, summary.defaults_text)

    summary = SERVER_INFO.lookup(server, token, client_factory, on_answer)
    with hou.undos.disabler():
        _set(node, P.SERVER_DEFAULTS, summary.defaults_text)
    return summary


# ---------------------------------------------------------------------------------------------------
# Callbacks named in the asset's DialogScript (through its PythonModule)


def on_generate(kwargs: Mapping[str, object]) -> None:
    generate(_node(kwargs))


def on_cancel(kwargs: Mapping[str, object]) -> None:
    cancel(_node(kwargs))


def on_load_results(kwargs: Mapping[str, object]) -> None:
    load_results(_node(kwargs))


def on_camera_changed(kwargs: Mapping[str, object]) -> None:
    """Shows the camera's resolution in Resolution while Override Resolution is off."""
    node = _node(kwargs)
    if _int(node, P.OVERRIDE_RES):
        return
    try:
        cam = find_camera(node, _str(node, P.CAMERA))
    except UserError:
        return
    resx, resy = camera_resolution(cam, hou.frame())
    _set(node, P.RESX, resx)
    _set(node, P.RESY, resy)


def model_menu(kwargs: Mapping[str, object]) -> list[str]:
    """The Model menu, from the cache (menu scripts run on the main thread: no network here); opening
    it also refreshes Server Defaults (one GetServerInfo for every menu, on a worker thread)."""
    return list(_server_summary(_node(kwargs)).model_items)


def lora_menu(kwargs: Mapping[str, object]) -> list[str]:
    """A LoRA row's menu: the server's LoRAs, each with the models it applies to (same cache)."""
    return list(_server_summary(_node(kwargs)).lora_items)


def render_passes(node: hou.OpNode) -> hou.RopNode | None:
    """Builds the pass ROP and renders the passes for the node's frame range, without generating."""
    try:
        cam = find_camera(node, _str(node, P.CAMERA))
        start, end = _int(node, P.FRAME_START), _int(node, P.FRAME_END)
        if end < start:
            raise UserError(f"Frame range: the end ({end}) is before the start ({start}).")
        rop = _render_passes(node, cam.path(), range(start, end + 1))
    except UserError as exc:
        _report(node, exc)
        return None
    _show_progress(node, f"Passes rendered by {rop.path()}", None)
    _set_status(node, f"Passes rendered by {rop.path()}")
    return rop


def on_render_passes(kwargs: Mapping[str, object]) -> None:
    render_passes(_node(kwargs))
