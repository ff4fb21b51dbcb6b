"""Samples: a grid of test images with the network's prediction and confidence, wrong ones framed in red.
Click one to select it for every view that explains one image (saliency); filter to the misclassified ones,
or to one cell of the confusion matrix."""
from __future__ import annotations

from collections.abc import Hashable

import numpy as np
from PySide6.QtCore import QPoint, QRect, QSize, Qt
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen, QPixmap, QResizeEvent
from PySide6.QtWidgets import QCheckBox, QLabel, QPushButton, QScrollArea, QWidget

from engine import Snapshot

from ..controller import Controller, RunInfo
from .base import LiveView, control_row

CELL = 86  # pixels per sample: the picture and its caption
PICTURE = 56
MAX_SHOWN = 240  # samples drawn at most (the first of the filtered set)
RIGHT, WRONG, SELECTED = QColor(46, 125, 50), QColor(211, 47, 47), QColor(25, 118, 210)


def grey_images(raw: np.ndarray) -> np.ndarray:
    """(N, C, H, W) images in [0, 1] to (N, H, W) uint8 greys (the channels' mean; bright is ink)."""
    return np.clip(raw.mean(axis=1) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def to_qimage(grey: np.ndarray) -> QImage:
    g = np.ascontiguousarray(grey)
    h, w = g.shape
    return QImage(g.data, w, h, w, QImage.Format.Format_Grayscale8).copy()


class SampleGrid(QWidget):
    """The grid itself: painted from a picture made when the predictions change."""

    def __init__(self, view: SamplesView) -> None:
        super().__init__()
        self.view = view
        self.rows = np.zeros(0, dtype=np.intp)  # the test-set index drawn in each cell
        self.pixmap: QPixmap | None = None
        self._cells: list[tuple[int, str, bool]] = []  # what each cell of the picture shows: row, caption, wrong
        self.columns = 1
        self.setMouseTracking(True)

    def cell_rect(self, k: int) -> QRect:
        r, c = divmod(k, self.columns)
        return QRect(c * CELL, r * CELL, CELL, CELL)

    def index_at(self, pos: QPoint) -> int | None:
        c, r = pos.x() // CELL, pos.y() // CELL
        k = r * self.columns + c
        return int(self.rows[k]) if 0 <= c < self.columns and 0 <= k < len(self.rows) else None

    def render(self, images: list[QImage], captions: list[str], wrong: np.ndarray) -> None:
        """Draw the cells into the grid's picture. Only cells that changed since the last call are drawn
        again (a new prediction or confidence): redrawing all 240 took ~40 ms of the GUI thread a probe round,
        while a trained network changes a few."""
        columns = max(1, self.width() // CELL)
        n = len(images)
        cells = list(zip(self.rows.tolist(), captions, wrong.tolist()))
        height = max(1, -(-n // columns)) * CELL
        fresh = self.pixmap is None or columns != self.columns or len(cells) != len(self._cells)
        self.columns = columns
        if fresh:
            self.setMinimumHeight(height)
            self.pixmap = QPixmap(QSize(columns * CELL, height))
            self.pixmap.fill(QColor(255, 255, 255))
        changed = [k for k, cell in enumerate(cells) if fresh or cell != self._cells[k]]
        self._cells = cells
        if not changed:
            return
        assert self.pixmap is not None
        p = QPainter(self.pixmap)
        font = p.font()
        font.setPointSizeF(font.pointSizeF() * 0.85)
        p.setFont(font)
        for k in changed:
            img, text, bad = images[k], captions[k], cells[k][2]
            cell = self.cell_rect(k)
            if not fresh:
                p.fillRect(cell, QColor(255, 255, 255))
            box = QRect(cell.x() + (CELL - PICTURE) // 2, cell.y() + 2, PICTURE, PICTURE)
            p.drawImage(box, img)
            p.setPen(QPen(WRONG if bad else QColor(190, 190, 190), 3 if bad else 1))
            p.drawRect(box.adjusted(-1, -1, 0, 0))
            p.setPen(WRONG if bad else RIGHT)
            p.drawText(QRect(cell.x(), cell.y() + PICTURE + 2, CELL, CELL - PICTURE - 2),
                       Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, text)
        p.end()
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        if self.pixmap is None:
            return
        p = QPainter(self)
        p.drawPixmap(0, 0, self.pixmap)
        selected = np.flatnonzero(self.rows == self.view.controller.sample)
        if len(selected):
            p.setPen(QPen(SELECTED, 3))
            p.drawRect(self.cell_rect(int(selected[0])).adjusted(2, 1, -3, -3))
        p.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        index = self.index_at(event.position().toPoint())
        if index is not None:
            self.view.controller.select_sample(index)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        index = self.index_at(event.position().toPoint())
        self.setToolTip("" if index is None else self.view.describe(index))


class SamplesView(LiveView):
    """Test images with predicted label and confidence; wrong ones framed in red; click to select."""

    probes = frozenset({"predictions"})

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(controller, parent)
        self.only_wrong = QCheckBox("Only misclassified")
        self.only_wrong.setToolTip("Show only the test images the network gets wrong now")
        self.only_wrong.toggled.connect(self.redraw)
        self.summary = QLabel()
        self.clear_filter = QPushButton("Show all classes")
        self.clear_filter.setToolTip("Drop the confusion-matrix cell's filter")
        self.clear_filter.clicked.connect(lambda: controller.set_sample_filter(None))
        self.clear_filter.hide()
        top = control_row(self.only_wrong, self.clear_filter, (self.summary, 1), stretch=False)
        self.grid = SampleGrid(self)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.grid)
        self.column(top, (scroll, 1))
        self._images: list[QImage] = []
        self._last: dict[str, np.ndarray] = {}
        controller.sample_changed.connect(self.redraw)

    def toggles(self) -> dict[str, QCheckBox]:
        return {"only_wrong": self.only_wrong}

    def on_run(self, run: RunInfo) -> None:
        meta = run.data.meta
        self._images = [to_qimage(g) for g in grey_images(np.asarray(meta.get("raw_test", np.zeros((0, 1, 1, 1)))))]
        self.grid.pixmap = None  # other images: every cell is drawn anew

    def frame_key(self, snap: Snapshot | None) -> Hashable:
        c = self.controller
        return super().frame_key(snap), c.sample_filter, self.grid.width() // CELL

    def rows(self, p: dict[str, np.ndarray]) -> np.ndarray:
        """The test-set indices shown, in order: all, or the misclassified, or one confusion cell's."""
        keep = np.ones(len(p["label"]), dtype=bool)
        if self.only_wrong.isChecked():
            keep &= p["label"] != p["prediction"]
        cell = self.controller.sample_filter
        if cell is not None:
            keep &= (p["label"] == cell[0]) & (p["prediction"] == cell[1])
        return np.flatnonzero(keep)


    def describe(self, index: int) -> str:
        p = self._last
        if not p:
            return ""
        return (f"test image {index}: label {self.class_name(int(p['label'][index]))}, predicted "
                f"{self.class_name(int(p['prediction'][index]))} ({p['confidence'][index]:.0%}); click to explain it")

    def draw(self, snap: Snapshot | None) -> None:
        assert snap is not None
        p = snap.probes["predictions"].arrays
        self._last = p
        rows = self.rows(p)
        shown = rows[:MAX_SHOWN]
        self.grid.rows = shown
        wrong = p["label"][shown] != p["prediction"][shown]
        captions = [f"{self.class_name(int(p['prediction'][i]))} · {p['confidence'][i]:.0%}" for i in shown.tolist()]
        self.grid.render([self._images[i] for i in shown.tolist()], captions, wrong)
        n, errors = len(p["label"]), int((p["label"] != p["prediction"]).sum())
        cell = self.controller.sample_filter
        self.clear_filter.setVisible(cell is not None)
        where = "" if cell is None else f" · true {self.class_name(cell[0])}, predicted {self.class_name(cell[1])}"
        more = f" (the first {MAX_SHOWN} shown)" if len(rows) > MAX_SHOWN else ""
        self.summary.setText(f"{len(rows)} of {n} test images{where}{more} · {n - errors} right, {errors} wrong "
                             f"({(n - errors) / max(n, 1):.1%} accuracy)")

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.redraw()  # as many columns as fit
