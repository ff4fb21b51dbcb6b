"""The palette: every registered op, grouped by family, searchable; drag one onto the canvas."""
from __future__ import annotations

from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtWidgets import QLineEdit, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from engine.ops import FAMILIES, OPS

from .canvas import MIME_OP


class OpTree(QTreeWidget):
    """A tree whose leaves drag out as ops."""

    def mimeData(self, items: list[QTreeWidgetItem]) -> QMimeData:
        data = QMimeData()
        op = items[0].data(0, Qt.ItemDataRole.UserRole) if items else None
        if op:
            data.setData(MIME_OP, op.encode())
            data.setText(op)
        return data

    def mimeTypes(self) -> list[str]:
        return [MIME_OP]


class Palette(QWidget):
    """Search box over a family tree of ops; double-click adds an op at the canvas centre."""

    op_activated = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search layers…")
        self.search.setClearButtonEnabled(True)
        self.search.setToolTip("Filter the layers by name or description")
        self.tree = OpTree()
        self.tree.setHeaderHidden(True)
        self.tree.setDragEnabled(True)
        self.tree.setDragDropMode(QTreeWidget.DragDropMode.DragOnly)
        self.tree.setToolTip("Drag a layer onto the canvas, or double-click it to add it in the middle")
        self.items: dict[str, QTreeWidgetItem] = {}
        for family in FAMILIES.values():  # in registration order
            top = QTreeWidgetItem([family.title])
            top.setFlags(Qt.ItemFlag.ItemIsEnabled)
            self.tree.addTopLevelItem(top)
            for op in sorted((o for o in OPS.values() if o.family == family.name), key=lambda o: o.name):
                leaf = QTreeWidgetItem([op.name.replace("_", " ")])
                leaf.setData(0, Qt.ItemDataRole.UserRole, op.name)
                leaf.setToolTip(0, op.doc)
                leaf.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsDragEnabled)
                top.addChild(leaf)
                self.items[op.name] = leaf
        self.tree.expandAll()
        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        col.addWidget(self.search)
        col.addWidget(self.tree)
        self.search.textChanged.connect(self._filter)
        self.tree.itemDoubleClicked.connect(self._on_double_click)
        self.setMinimumWidth(170)

    def _filter(self, text: str) -> None:
        text = text.strip().lower()
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            shown = 0
            for j in range(top.childCount()):
                leaf = top.child(j)
                op = OPS[leaf.data(0, Qt.ItemDataRole.UserRole)]
                hit = not text or text in op.name.replace("_", " ") or text in op.name or text in op.doc.lower()
                leaf.setHidden(not hit)
                shown += hit
            top.setHidden(shown == 0)

    def _on_double_click(self, item: QTreeWidgetItem) -> None:
        op = item.data(0, Qt.ItemDataRole.UserRole)
        if op:
            self.op_activated.emit(op)
