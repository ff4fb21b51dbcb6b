"""Confusion matrix of the test set (rows: true class, columns: predicted), with each class's precision,
recall and F1; click a cell to show its images in the Samples view."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

from engine import Snapshot

from ..controller import Controller
from .base import LiveView

RIGHT, WRONG, SELECTED = (46, 125, 50), (211, 47, 47), QColor(25, 118, 210)


def cell_colour(share: float, diagonal: bool) -> QColor:
    """White for none of the row's images, the full colour (green on the diagonal, red off it) for all."""
    r, g, b = RIGHT if diagonal else WRONG
    t = min(max(share, 0.0), 1.0) ** 0.5  # a few errors should still show
    return QColor(int(255 + (r - 255) * t), int(255 + (g - 255) * t), int(255 + (b - 255) * t))


class Matrix(QWidget):
    """The K×K grid and the per-class table beside it."""

    def __init__(self, view: ConfusionView) -> None:
        super().__init__()
        self.view = view
        self.confusion = np.zeros((0, 0), dtype=np.int64)
        self.scores: dict[str, np.ndarray] = {}
        self.setMouseTracking(True)
        self.setMinimumSize(260, 200)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def geometry_of(self) -> tuple[int, int, int]:
        """(left, top, cell side) of the grid."""
        k = max(len(self.confusion), 1)
        widest = max((self.fontMetrics().horizontalAdvance(self.view.class_name(i)) for i in range(k)), default=0)
        left, top, table = 30 + widest, 34, 150
        side = max(8, min((self.width() - left - table - 10) // k, (self.height() - top - 8) // k))
        return left, top, side

    def cell_at(self, pos: QPoint) -> tuple[int, int] | None:
        left, top, side = self.geometry_of()
        k = len(self.confusion)
        c, r = (pos.x() - left) // side, (pos.y() - top) // side
        return (int(r), int(c)) if 0 <= r < k and 0 <= c < k and pos.x() >= left and pos.y() >= top else None

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(255, 255, 255))
        k = len(self.confusion)
        if not k:
            p.end()
            return
        left, top, side = self.geometry_of()
        names = self.view.class_name
        rows = self.confusion.sum(axis=1)
        p.setPen(QColor(60, 60, 60))
        p.drawText(QRect(left, 2, side * k, 14), Qt.AlignmentFlag.AlignCenter, "predicted →")
        p.save()
        p.translate(12, top + side * k / 2)
        p.rotate(-90)
        p.drawText(QRect(-60, -10, 120, 14), Qt.AlignmentFlag.AlignCenter, "true →")
        p.restore()
        for i in range(k):
            p.drawText(QRect(left + i * side, 18, side, 14), Qt.AlignmentFlag.AlignCenter, names(i))
            p.drawText(QRect(20, top + i * side, left - 24, side), Qt.AlignmentFlag.AlignRight
                       | Qt.AlignmentFlag.AlignVCenter, names(i))
            for j in range(k):
                n = int(self.confusion[i, j])
                cell = QRect(left + j * side, top + i * side, side, side)
                share = n / rows[i] if rows[i] else 0.0
                p.fillRect(cell, cell_colour(share, i == j))
                p.setPen(QColor(255, 255, 255) if share > 0.5 else QColor(40, 40, 40))
                if n and side >= 14:
                    p.drawText(cell, Qt.AlignmentFlag.AlignCenter, str(n))
        p.setPen(QPen(QColor(200, 200, 200), 1))
        p.drawRect(QRect(left, top, side * k, side * k))
        cell = self.view.controller.sample_filter
        if cell is not None and max(cell) < k:
            p.setPen(QPen(SELECTED, 3))
            p.drawRect(QRect(left + cell[1] * side, top + cell[0] * side, side, side))
        x = left + side * k + 12
        p.setPen(QColor(60, 60, 60))
        p.drawText(QRect(x, 18, 150, 14), Qt.AlignmentFlag.AlignLeft, "prec.  recall  F1")
        line = max(14, min(side, 18))
        for i in range(k):
            values = "  ".join(f"{self.scores[s][i]:.2f}" for s in ("precision", "recall", "f1"))
            p.drawText(QRect(x, top + i * line, 150, line), Qt.AlignmentFlag.AlignLeft
                       | Qt.AlignmentFlag.AlignVCenter, f"{names(i)}: {values}")
        p.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        cell = self.cell_at(event.position().toPoint())
        if cell is not None:
            c = self.view.controller
            c.set_sample_filter(None if c.sample_filter == cell else cell)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        cell = self.cell_at(event.position().toPoint())
        if cell is None:
            self.setToolTip("")
            return
        i, j = cell
        names = self.view.class_name
        self.setToolTip(f"{int(self.confusion[i, j])} test images of class {names(i)} predicted as {names(j)}; "
                        "click to show them in Samples (click again for all)")


class ConfusionView(LiveView):
    """The test set's confusion matrix and per-class scores, redrawn when new predictions arrive."""

    probes = frozenset({"predictions"})

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(controller, parent)
        # small, scrolling if need be: a dock put away still counts in the window's minimum height
        self.setMinimumSize(200, 120)
        self.summary = QLabel()
        self.matrix = Matrix(self)
        self.column(self.summary, (self.matrix, 1))
        controller.sample_changed.connect(self.matrix.update)


    def draw(self, snap: Snapshot | None) -> None:
        assert snap is not None
        p = snap.probes["predictions"].arrays
        self.matrix.confusion = p["confusion"]
        self.matrix.scores = {k: p[k] for k in ("precision", "recall", "f1")}
        n = int(p["confusion"].sum())
        right = int(np.trace(p["confusion"]))
        self.summary.setText(f"{n} test images: {right} right, {n - right} wrong · macro F1 {p['f1'].mean():.3f}")
        self.matrix.update()
