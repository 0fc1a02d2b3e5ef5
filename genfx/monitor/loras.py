"""The LoRA table of the monitor: the server's LoRAs (ServerInfo.loras), each with a tick and a weight,
for the next re-run (GUI thread only).

Selecting a job shows its LoRAs (ticked, with their weights); "Re-run with new seed" sends what is ticked,
so a re-run without changes repeats the job's LoRAs, and a lead can try one more or a lighter weight.
A LoRA the job used that the server no longer lists stays in the table, marked, so the server's refusal
is no surprise. The weight range is the server's (Limits.max_lora_weight); the server checks it again.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDoubleSpinBox, QHeaderView, QTableWidget, QTableWidgetItem, QWidget

from genfx.proto import genfx_pb2 as pb

NAME, WEIGHT = 0, 1
DEFAULT_WEIGHT = 1.0
FALLBACK_MAX_WEIGHT = 2.0  # before the server's limits are known


class LoraTable(QTableWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, 2, parent)
        self.setHorizontalHeaderLabels(["LoRA (ticked: used by the next re-run)", "Weight"])
        self.horizontalHeader().setSectionResizeMode(NAME, QHeaderView.ResizeMode.Stretch)
        self.verticalHeader().setVisible(False)
        self.setToolTip("The server's LoRAs. Selecting a job ticks its LoRAs; Re-run sends the ticked ones.")
        self._max_weight = FALLBACK_MAX_WEIGHT
        self._server: list[pb.LoraInfo] = []

    # ---- contents ---------------------------------------------------------------------------------

    def set_server(self, info: pb.ServerInfo | None) -> None:
        """One row per LoRA the server lists; none when disconnected."""
        self._server = list(info.loras) if info is not None else []
        if info is not None and info.limits.max_lora_weight > 0:
            self._max_weight = info.limits.max_lora_weight
        self.setRowCount(0)
        for lora in self._server:
            fits = ", ".join(lora.models) or "none of this server's models"
            self._add(lora.name, f"for {fits} · sha256 {lora.hash[:12]}")

    def show_job(self, request: pb.GenerateRequest | None) -> None:
        """Ticks the request's LoRAs with their weights (0 on the wire = 1.0); unticks the others."""
        used = {ref.name: ref.weight or DEFAULT_WEIGHT for ref in request.loras} if request else {}
        for name in used:
            if self._row_of(name) is None:
                self._add(name, "not listed by this server")
        for row in range(self.rowCount()):
            name = self.name_at(row)
            self._item(row).setCheckState(Qt.CheckState.Checked if name in used else Qt.CheckState.Unchecked)
            self.weight_box(row).setValue(used.get(name, DEFAULT_WEIGHT))

    def chosen(self) -> list[tuple[str, float]]:
        """The ticked LoRAs, in table order, with their weights."""
        return [
            (self.name_at(row), self.weight_box(row).value())
            for row in range(self.rowCount())
            if self._item(row).checkState() == Qt.CheckState.Checked
        ]

    def set_chosen(self, name: str, weight: float, on: bool = True) -> None:
        """Ticks (or unticks) one LoRA and sets its weight, as a click and a typed weight would."""
        row = self._row_of(name)
        if row is None:
            raise KeyError(f"{name!r} is not in the LoRA table")
        self._item(row).setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
        self.weight_box(row).setValue(weight)

    # ---- rows -------------------------------------------------------------------------------------

    def name_at(self, row: int) -> str:
        return str(self._item(row).data(Qt.ItemDataRole.UserRole))

    def weight_box(self, row: int) -> QDoubleSpinBox:
        box = self.cellWidget(row, WEIGHT)
        assert isinstance(box, QDoubleSpinBox)
        return box

    def _item(self, row: int) -> QTableWidgetItem:
        item = self.item(row, NAME)
        assert item is not None
        return item

    def _row_of(self, name: str) -> int | None:
        return next((row for row in range(self.rowCount()) if self.name_at(row) == name), None)

    def _add(self, name: str, note: str) -> None:
        row = self.rowCount()
        self.insertRow(row)
        item = QTableWidgetItem(f"{name}  ({note})")
        item.setData(Qt.ItemDataRole.UserRole, name)
        item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(Qt.CheckState.Unchecked)
        self.setItem(row, NAME, item)
        box = QDoubleSpinBox()
        box.setRange(-self._max_weight, self._max_weight)
        box.setSingleStep(0.05)
        box.setDecimals(2)
        box.setValue(DEFAULT_WEIGHT)
        box.setToolTip(f"Weight, within ±{self._max_weight:g} (the server's limit)")
        self.setCellWidget(row, WEIGHT, box)
