"""The Qt table model over the job book, plus the preview pixmaps (GUI thread only)."""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, QSize, Qt
from PySide6.QtGui import QBrush, QColor, QImage, QPixmap

from genfx.monitor.jobs import (
    JobBook,
    JobRow,
    apply_event,
    created_label,
    frames_label,
    merge_snapshot,
    state_label,
)
from genfx.proto import genfx_pb2 as pb

Index = QModelIndex | QPersistentModelIndex

THUMB_SIZE = QSize(96, 54)  # the table's preview column (16:9)

JOB_ID_ROLE = Qt.ItemDataRole.UserRole + 1  # str, any column
PROGRESS_ROLE = Qt.ItemDataRole.UserRole + 2  # float in [0, 1], any column
STATE_ROLE = Qt.ItemDataRole.UserRole + 3  # pb.JobState value, any column

STATE_COLOURS: dict[int, QColor] = {
    pb.JOB_STATE_QUEUED: QColor(196, 150, 40),
    pb.JOB_STATE_RUNNING: QColor(60, 130, 220),
    pb.JOB_STATE_SUCCEEDED: QColor(60, 160, 80),
    pb.JOB_STATE_FAILED: QColor(210, 60, 60),
    pb.JOB_STATE_CANCELLED: QColor(130, 130, 130),
}


class Column(IntEnum):
    PREVIEW = 0
    JOB = 1
    STATE = 2
    PROGRESS = 3
    FRAMES = 4
    PROMPT = 5
    SEED = 6
    MODEL = 7
    CREATED = 8


HEADERS = {
    Column.PREVIEW: "Preview",
    Column.JOB: "Job",
    Column.STATE: "State",
    Column.PROGRESS: "Progress",
    Column.FRAMES: "Frames",
    Column.PROMPT: "Prompt",
    Column.SEED: "Seed",
    Column.MODEL: "Model",
    Column.CREATED: "Created",
}


class JobTableModel(QAbstractTableModel):
    """Rows = jobs newest first. Feed it snapshots (`upsert`) and events (`apply_event`)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.book = JobBook()
        self._previews: dict[str, dict[int, QPixmap]] = {}
        self._thumbs: dict[str, tuple[int, QPixmap]] = {}

    # ---- updates ----------------------------------------------------------------------------------

    def clear(self) -> None:
        self.beginResetModel()
        self.book = JobBook()
        self._previews.clear()
        self._thumbs.clear()
        self.endResetModel()

    def upsert(self, job: pb.Job) -> JobRow:
        """Adds the job, or merges the snapshot into its row (see jobs.merge_snapshot)."""
        row = self.book.get(job.id)
        if row is None:
            pos = self.book.insert_position(job)
            self.beginInsertRows(QModelIndex(), pos, pos)
            self.book.insert(job)
            self.endInsertRows()
            return self.book.row(pos)
        if merge_snapshot(row, job):
            self._row_changed(job.id)
        return row

    def apply_event(self, event: pb.JobEvent) -> JobRow | None:
        """Applies a WatchJob event to its row; None if the job is not in the table."""
        row = self.book.get(event.job_id)
        if row is None:
            return None
        if apply_event(row, event):
            self._row_changed(event.job_id)
        return row

    def set_preview(self, job_id: str, frame: int, image: QImage) -> QPixmap:
        pixmap = QPixmap.fromImage(image)
        previews = self._previews.setdefault(job_id, {})
        previews[frame] = pixmap
        # Only the first and the latest frame are ever shown: drop the ones a running job left behind.
        for old in set(previews) - {min(previews), max(previews)}:
            del previews[old]
        shown = self._thumbs.get(job_id)
        if shown is None or frame >= shown[0]:
            thumb = pixmap.scaled(
                THUMB_SIZE, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
            )
            self._thumbs[job_id] = (frame, thumb)
            i = self.book.index_of(job_id)
            if i is not None:
                idx = self.index(i, Column.PREVIEW)
                self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])
        return pixmap

    def _row_changed(self, job_id: str) -> None:
        i = self.book.index_of(job_id)
        if i is not None:
            self.dataChanged.emit(self.index(i, 0), self.index(i, len(Column) - 1))

    # ---- queries ----------------------------------------------------------------------------------

    def row_of(self, job_id: str) -> int | None:
        return self.book.index_of(job_id)

    def preview(self, job_id: str, frame: int) -> QPixmap | None:
        return self._previews.get(job_id, {}).get(frame)

    def previewed_frames(self, job_id: str) -> set[int]:
        return set(self._previews.get(job_id, {}))

    def thumbnail(self, job_id: str) -> QPixmap | None:
        shown = self._thumbs.get(job_id)
        return shown[1] if shown else None

    # ---- QAbstractTableModel ----------------------------------------------------------------------

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt's own default
        return 0 if parent.isValid() else len(self.book)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(Column)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return HEADERS.get(Column(section)) if 0 <= section < len(Column) else None
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self.book):
            return None
        row = self.book.row(index.row())
        job = row.job
        col = Column(index.column())
        if role == JOB_ID_ROLE:
            return job.id
        if role == PROGRESS_ROLE:
            return float(job.progress)
        if role == STATE_ROLE:
            return int(job.state)
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(row, col)
        if role == Qt.ItemDataRole.DecorationRole and col == Column.PREVIEW:
            return self.thumbnail(job.id)
        if role == Qt.ItemDataRole.ForegroundRole and col == Column.STATE:
            colour = STATE_COLOURS.get(job.state)
            return QBrush(colour) if colour is not None else None
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(row, col)
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (Column.SEED, Column.FRAMES):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _display(self, row: JobRow, col: Column) -> str | None:
        job = row.job
        if col == Column.JOB:
            return job.id[:8]
        if col == Column.STATE:
            return state_label(job.state)
        if col == Column.PROGRESS:
            return f"{job.progress * 100:.0f}%"
        if col == Column.FRAMES:
            return frames_label(job)
        if col == Column.PROMPT:
            return job.request.prompt
        if col == Column.SEED:
            return str(job.seed)
        if col == Column.MODEL:
            return job.request.model
        if col == Column.CREATED:
            return created_label(job.created_at)
        return None

    def _tooltip(self, row: JobRow, col: Column) -> str | None:
        job = row.job
        if col == Column.JOB:
            return job.id
        if col == Column.PROMPT:
            return job.request.prompt
        if col in (Column.STATE, Column.PROGRESS):
            return job.message or row.activity or None
        return None
