"""The model summary: block, op, output shape and parameters per block, with a total; exports as text."""
from __future__ import annotations

import networkx as nx
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHeaderView, QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from engine.ops import fmt_shape

from .document import EditorDocument

HEADERS = ("Block", "Op", "Output shape", "Parameters")


def summary_rows(doc: EditorDocument) -> list[tuple[str, str, str, str]]:
    """One row per block in topological order (spec order where the graph has a cycle)."""
    model, diag = doc.model, doc.diagnosis
    g = nx.DiGraph()
    g.add_nodes_from(n.id for n in model.nodes)
    g.add_edges_from(model.edges)
    order = list(nx.topological_sort(g)) if nx.is_directed_acyclic_graph(g) else [n.id for n in model.nodes]
    ops = {n.id: n.op for n in model.nodes}
    rows = []
    for n in order:
        shape = diag.shapes.get(n)
        count = diag.counts.get(n)
        rows.append((n, ops[n], fmt_shape(shape) if shape is not None else "?",
                     f"{count:,}" if count is not None else "?"))
    return rows


def summary_text(doc: EditorDocument) -> str:
    """The summary as a fixed-width text table, as Keras's model.summary() prints one."""
    rows = summary_rows(doc)
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(HEADERS)]
    line = "  ".join("-" * w for w in widths)

    def fmt(r: tuple[str, ...]) -> str:
        return "  ".join(c.rjust(w) if i == 3 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
    total = sum(doc.diagnosis.counts.values())
    state = "valid" if doc.diagnosis.valid else f"not valid: {doc.diagnosis.problem}"
    return "\n".join([fmt(HEADERS), line, *(fmt(r) for r in rows), line,
                      f"Total parameters: {total:,}", f"Graph: {state}", ""])


class SummaryTable(QWidget):
    """The summary as a table that follows the draft."""

    def __init__(self, doc: EditorDocument, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc = doc
        self.table = QTableWidget(0, len(HEADERS))
        self.table.setHorizontalHeaderLabels(HEADERS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.setToolTip("Every block's output shape and parameter count, in the order data flows")
        font = self.table.font()
        font.setPointSizeF(max(7.0, font.pointSizeF() - 1.5))  # four columns in a side panel
        self.table.setFont(font)
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 4)
        self.total = QLabel()
        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        col.addWidget(self.table)
        col.addWidget(self.total)
        doc.changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        rows = summary_rows(self.doc)
        self.table.setRowCount(len(rows))
        for i, row in enumerate(rows):
            for j, text in enumerate(row):
                item = QTableWidgetItem(text)
                if j == 3:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(i, j, item)
        self.total.setText(f"Total: {sum(self.doc.diagnosis.counts.values()):,} parameters")
