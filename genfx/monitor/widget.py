"""The GenFX Monitor widget: the same QWidget in `genfx monitor` and in the Houdini Python panel.

    from genfx.monitor.widget import MonitorWidget
    w = MonitorWidget("gpu-box:50051", token="...")   # connects at once; never blocks on the network

Everything network-bound runs in `genfx.monitor.backend` threads; this module only builds widgets and
turns clicks into controller calls.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QPoint, QSize, Qt, QUrl
from PySide6.QtGui import QCloseEvent, QDesktopServices, QGuiApplication, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QFileDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionProgressBar,
    QStyleOptionViewItem,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from genfx.client import DEFAULT_SERVER
from genfx.monitor.controller import ClientFactory, MonitorController, default_client
from genfx.monitor.jobs import JobRow, counts_label, describe, preview_frames
from genfx.monitor.loras import LoraTable
from genfx.monitor.model import JOB_ID_ROLE, PROGRESS_ROLE, STATE_COLOURS, STATE_ROLE, THUMB_SIZE, Column
from genfx.monitor.preview import PREVIEW_SIZE
from genfx.proto import genfx_pb2 as pb

UrlOpener = Callable[[QUrl], object]
Confirm = Callable[[QWidget, str], bool]


def ask_yes_no(parent: QWidget, question: str) -> bool:
    answer = QMessageBox.question(parent, "GenFX Monitor", question)
    return answer == QMessageBox.StandardButton.Yes


class ProgressDelegate(QStyledItemDelegate):
    """Paints the progress column as a progress bar, coloured by the job's state."""

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        widget = option.widget
        style = widget.style() if widget is not None else QApplication.style()
        cell = QStyleOptionViewItem(option)
        self.initStyleOption(cell, index)
        cell.text = ""
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, cell, painter, widget)

        progress = float(index.data(PROGRESS_ROLE) or 0.0)
        bar = QStyleOptionProgressBar()
        rect = option.rect
        height = min(rect.height() - 8, 20)
        bar.rect = rect.adjusted(4, (rect.height() - height) // 2, -4, -(rect.height() - height) // 2)
        bar.minimum = 0
        bar.maximum = 1000
        bar.progress = round(progress * 1000)
        bar.text = f"{progress * 100:.0f}%"
        bar.textVisible = True
        bar.textAlignment = Qt.AlignmentFlag.AlignCenter
        bar.state = option.state | QStyle.StateFlag.State_Horizontal
        bar.palette = QPalette(option.palette)
        colour = STATE_COLOURS.get(int(index.data(STATE_ROLE) or 0))
        if colour is not None:
            bar.palette.setColor(QPalette.ColorRole.Highlight, colour)
        style.drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter, widget)


class PreviewLabel(QLabel):
    """A fixed-size frame preview with a caption under it."""

    def __init__(self, caption: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.caption = caption
        self.setFixedSize(PREVIEW_SIZE)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.clear_preview()

    def clear_preview(self, text: str = "no frame yet") -> None:
        self.clear()
        self.setText(text)
        self.setToolTip("")
        self.job_id = ""
        self.frame: int | None = None

    def show_preview(self, pixmap: QPixmap, job_id: str, frame: int) -> None:
        self.setPixmap(pixmap)
        self.job_id = job_id
        self.frame = frame
        self.setToolTip(f"{self.caption}: frame {frame}")


class MonitorWidget(QWidget):
    """Connection bar, job table (state, progress bars, thumbnails), detail pane and the actions.

    `open_url` (default QDesktopServices.openUrl) and `confirm` (default a Yes/No box) are injectable
    so tests, and hosts like Houdini, can replace them; `client_factory` builds the genfx Client."""

    def __init__(
        self,
        server: str | None = None,
        token: str | None = None,
        tls_ca: str | os.PathLike[str] | None = None,
        *,
        cache_dir: Path | None = None,
        open_url: UrlOpener = QDesktopServices.openUrl,
        confirm: Confirm = ask_yes_no,
        client_factory: ClientFactory = default_client,
        poll_ms: int = 2000,
        autoconnect: bool = True,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("GenFXMonitor")
        self.setWindowTitle("GenFX Monitor")
        self.open_url = open_url
        self.confirm = confirm
        self.controller = MonitorController(
            client_factory=client_factory, cache_dir=cache_dir, poll_ms=poll_ms, parent=self
        )
        self.model = self.controller.model
        self._lora_job = ""  # the job whose LoRAs the LoRA table was last set to
        self._build(
            server if server is not None else os.environ.get("GENFX_SERVER", DEFAULT_SERVER),
            token if token is not None else os.environ.get("GENFX_TOKEN", ""),
            os.fspath(tls_ca) if tls_ca else os.environ.get("GENFX_TLS_CA", ""),
        )
        self.controller.status.connect(self._show_status)
        self.controller.preview_updated.connect(self._on_preview_updated)
        self.controller.folder_ready.connect(self._on_folder_ready)
        self.controller.rerun_submitted.connect(lambda new_id, _old: self.select_job(new_id))
        self.controller.connected.connect(self._on_connected)
        self.model.dataChanged.connect(self._on_data_changed)
        self.model.rowsInserted.connect(lambda *_: self._update_selection())
        self.model.modelReset.connect(self._update_selection)
        for signal in (self.model.dataChanged, self.model.rowsInserted, self.model.modelReset):
            signal.connect(self._update_counts)
        self._update_selection()
        if autoconnect:
            self.connect_to_server()

    # ---- layout -----------------------------------------------------------------------------------

    def _build(self, server: str, token: str, tls_ca: str) -> None:
        self.server_edit = QLineEdit(server)
        self.server_edit.setPlaceholderText("host:port")
        self.token_edit = QLineEdit(token)
        self.token_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.token_edit.setPlaceholderText("token (optional)")
        self.tls_edit = QLineEdit(tls_ca)
        self.tls_edit.setPlaceholderText("TLS root CA .pem (optional)")
        browse = QPushButton("…")
        browse.setToolTip("Choose the PEM file of the CA that signed the server's certificate")
        browse.clicked.connect(self._browse_ca)
        self.connect_button = QPushButton("Connect")
        self.connect_button.clicked.connect(self.connect_to_server)
        self.server_edit.returnPressed.connect(self.connect_to_server)

        bar = QHBoxLayout()
        bar.addWidget(QLabel("Server"))
        bar.addWidget(self.server_edit, 3)
        bar.addWidget(QLabel("Token"))
        bar.addWidget(self.token_edit, 2)
        bar.addWidget(QLabel("TLS CA"))
        bar.addWidget(self.tls_edit, 3)
        bar.addWidget(browse)
        bar.addWidget(self.connect_button)

        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setIconSize(THUMB_SIZE)
        self.table.setWordWrap(False)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(THUMB_SIZE.height() + 8)
        self.table.setItemDelegateForColumn(Column.PROGRESS, ProgressDelegate(self.table))
        header = self.table.horizontalHeader()
        widths = {
            Column.PREVIEW: THUMB_SIZE.width() + 12,
            Column.JOB: 80,
            Column.STATE: 80,
            Column.PROGRESS: 140,
            Column.FRAMES: 130,
            Column.SEED: 96,
            Column.MODEL: 70,
            Column.CREATED: 80,
        }
        for col, width in widths.items():
            header.resizeSection(col, width)
        header.setSectionResizeMode(Column.PROMPT, QHeaderView.ResizeMode.Stretch)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.table.doubleClicked.connect(lambda _index: self.open_output_folder())
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._update_selection())

        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Cancel the job (it stops between two denoising steps)")
        self.cancel_button.clicked.connect(self.cancel_selected)
        self.rerun_button = QPushButton("Re-run with new seed")
        self.rerun_button.setToolTip(
            "Submit the same request again with a new random seed and the LoRAs ticked in the LoRA table"
        )
        self.rerun_button.clicked.connect(self.rerun_selected)
        self.open_button = QPushButton("Open output folder")
        self.open_button.setToolTip("Fetch the job's frames into the local cache folder and open it")
        self.open_button.clicked.connect(self.open_output_folder)
        self.copy_button = QPushButton("Copy job id")
        self.copy_button.clicked.connect(self.copy_job_id)
        actions = QHBoxLayout()
        for button in (self.cancel_button, self.rerun_button, self.open_button, self.copy_button):
            actions.addWidget(button)
        actions.addStretch(1)

        self.first_preview = PreviewLabel("first keyframe")
        self.latest_preview = PreviewLabel("latest keyframe")
        self.first_caption = QLabel("First keyframe")
        self.latest_caption = QLabel("Latest keyframe")
        self.details = QLabel()
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.details.setWordWrap(True)
        self.details.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        grid = QGridLayout()
        grid.addWidget(self.first_preview, 0, 0)
        grid.addWidget(self.latest_preview, 0, 1)
        grid.addWidget(self.details, 0, 2, 2, 1)
        self.lora_table = LoraTable()
        grid.addWidget(self.lora_table, 0, 3, 2, 1)
        grid.addWidget(self.first_caption, 1, 0, Qt.AlignmentFlag.AlignHCenter)
        grid.addWidget(self.latest_caption, 1, 1, Qt.AlignmentFlag.AlignHCenter)
        grid.setColumnStretch(2, 1)

        bottom = QWidget()
        bottom_layout = QVBoxLayout(bottom)
        bottom_layout.setContentsMargins(0, 0, 0, 0)
        bottom_layout.addLayout(actions)
        bottom_layout.addLayout(grid)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(bottom)
        splitter.setStretchFactor(0, 1)
        splitter.setCollapsible(0, False)

        self.status_label = QLabel()
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.counts_label = QLabel()
        status = QHBoxLayout()
        status.addWidget(self.status_label, 1)
        status.addWidget(self.counts_label)

        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(splitter, 1)
        layout.addLayout(status)

    def sizeHint(self) -> QSize:
        return QSize(1180, 680)

    # ---- connection -------------------------------------------------------------------------------

    def connect_to_server(self) -> None:
        address = self.server_edit.text().strip() or DEFAULT_SERVER
        self.controller.connect_to(
            address, self.token_edit.text().strip(), self.tls_edit.text().strip() or None
        )

    def _browse_ca(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "TLS root CA", "", "PEM (*.pem *.crt);;All files (*)")
        if path:
            self.tls_edit.setText(path)

    def _on_connected(self, info: pb.ServerInfo) -> None:
        self.lora_table.set_server(info)
        row = self.selected_row()
        self._lora_job = row.id if row is not None else ""
        self.lora_table.show_job(row.job.request if row is not None else None)

    def _update_counts(self, *_: object) -> None:
        self.counts_label.setText(counts_label(self.model.book.rows()))

    def _show_status(self, message: str, error: bool) -> None:
        self.status_label.setText(message)
        self.status_label.setStyleSheet("color: #d04040;" if error else "")

    # ---- selection --------------------------------------------------------------------------------

    def selected_row(self) -> JobRow | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        job_id = rows[0].data(JOB_ID_ROLE)
        return self.model.book.get(job_id) if isinstance(job_id, str) else None

    def selected_job_id(self) -> str | None:
        row = self.selected_row()
        return row.id if row is not None else None

    def select_job(self, job_id: str) -> bool:
        i = self.model.row_of(job_id)
        if i is None:
            return False
        self.table.selectRow(i)
        self.table.scrollTo(self.model.index(i, 0))
        return True

    def _update_selection(self) -> None:
        row = self.selected_row()
        self.cancel_button.setEnabled(row is not None and row.active)
        self.rerun_button.setEnabled(row is not None)
        self.open_button.setEnabled(row is not None and len(row.job.frame_infos) > 0)
        self.copy_button.setEnabled(row is not None)
        if row is None:
            self.details.setText("Select a job to see its details and keyframes.")
            self.first_preview.clear_preview("")
            self.latest_preview.clear_preview("")
            return
        self.details.setText(describe(row))
        if row.id != self._lora_job:  # a new selection: keep the lead's edits while the table refreshes
            self._lora_job = row.id
            self.lora_table.show_job(row.job.request)
        self.controller.select(row.id)
        self._show_previews(row)

    def _show_previews(self, row: JobRow) -> None:
        first, latest = preview_frames(row)
        for label, caption, frame in (
            (self.first_preview, self.first_caption, first),
            (self.latest_preview, self.latest_caption, latest),
        ):
            pixmap = self.model.preview(row.id, frame) if frame is not None else None
            if pixmap is not None and frame is not None:
                label.show_preview(pixmap, row.id, frame)
                caption.setText(f"{label.caption.capitalize()} · frame {frame}")
            elif frame is None or label.job_id != row.id:
                label.clear_preview("no frame yet" if frame is None else "fetching …")
                caption.setText(label.caption.capitalize())
            # else: keep this job's older frame up until the newer one arrives

    def _on_data_changed(
        self, top_left: QModelIndex, bottom_right: QModelIndex, roles: list[int] | None = None
    ) -> None:
        row = self.selected_row()
        if row is not None:
            i = self.model.row_of(row.id)
            if i is not None and top_left.row() <= i <= bottom_right.row():
                self.cancel_button.setEnabled(row.active)
                self.open_button.setEnabled(len(row.job.frame_infos) > 0)
                self.details.setText(describe(row))

    def _on_preview_updated(self, job_id: str, frame: int) -> None:
        row = self.selected_row()
        if row is not None and row.id == job_id:
            self._show_previews(row)

    # ---- actions ----------------------------------------------------------------------------------

    def cancel_selected(self) -> None:
        row = self.selected_row()
        if row is None or not row.active:
            return
        if self.confirm(self, f"Cancel job {row.id[:8]} ({row.job.request.prompt[:60]!r})?"):
            self.controller.cancel(row.id)

    def rerun_selected(self) -> None:
        job_id = self.selected_job_id()
        if job_id is not None:
            self.controller.rerun(job_id, loras=self.lora_table.chosen())

    def open_output_folder(self) -> None:
        row = self.selected_row()
        if row is not None and row.job.frame_infos:
            self.controller.fetch_folder(row.id)

    def _on_folder_ready(self, job_id: str, folder: str) -> None:
        self._show_status(f"Job {job_id[:8]}: frames in {folder}", False)
        self.open_url(QUrl.fromLocalFile(folder))

    def copy_job_id(self) -> None:
        job_id = self.selected_job_id()
        if job_id is not None:
            QGuiApplication.clipboard().setText(job_id)
            self._show_status(f"Copied job id {job_id}", False)

    def _context_menu(self, pos: QPoint) -> None:
        index = self.table.indexAt(pos)
        if not index.isValid():
            return
        self.table.selectRow(index.row())
        row = self.selected_row()
        if row is None:
            return
        menu = QMenu(self)
        menu.addAction("Cancel", self.cancel_selected).setEnabled(row.active)
        menu.addAction("Re-run with new seed", self.rerun_selected)
        menu.addAction("Open output folder", self.open_output_folder).setEnabled(len(row.job.frame_infos) > 0)
        menu.addAction("Copy job id", self.copy_job_id)
        menu.exec(self.table.viewport().mapToGlobal(pos))

    # ---- lifetime ---------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stops polling and the network threads. Called on close; hosts (Houdini) call it too."""
        self.controller.shutdown()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown()
        super().closeEvent(event)


def job_state(widget: MonitorWidget, job_id: str) -> int | None:
    """The state the widget shows for a job (None if it does not list it); handy in scripts and tests."""
    row = widget.model.book.get(job_id)
    return row.job.state if row is not None else None


__all__ = ["MonitorWidget", "ProgressDelegate", "job_state"]
