"""The network canvas: a plain painter of neuron heatmaps in columns and weight links, fed by its view and
painted once per probe into a pixmap. Hover texts come from the view's callbacks; a click on a unit is a signal."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from PySide6.QtCore import QLineF, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen, QPixmap, QResizeEvent
from PySide6.QtWidgets import QToolTip, QWidget

from ..colors import NEGATIVE, POSITIVE

LINK_BUCKETS = 8
COLUMN_W = 104  # horizontal room per column, shared with the header widgets above it


@dataclass
class Column:
    """One drawn column: its node id, the units shown, their heatmaps and where they are."""

    node: str  # "input", a dense node id, or "output"
    units: int
    images: list[QImage]
    rects: list[QRectF]
    labels: list[str]  # drawn left of the first column's units
    faded: list[bool] = field(default_factory=list)  # units drawn pale (features switched off)


class Link(NamedTuple):
    """A weight drawn from unit `src` of column `column` to unit `dst` of the next column."""

    column: int
    src: int
    dst: int
    weight: float


def to_qimages(rgb: np.ndarray) -> list[QImage]:
    """(N, g, g, 3) uint8, row 0 = lowest x₂, as owned QImages with x₂ pointing up."""
    out = []
    for a in rgb:
        a = np.ascontiguousarray(a[::-1])
        h, w, _ = a.shape
        out.append(QImage(a.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy())
    return out


class NetworkCanvas(QWidget):
    """Paints columns and links where `column_x` says; hovering asks `describe_unit` / `describe_link`."""

    unit_clicked = Signal(int, int)  # column, unit

    def __init__(self, column_x: Callable[[int], float], describe_unit: Callable[[int, int], str],
                 describe_link: Callable[[Link], str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.column_x = column_x
        self.describe_unit = describe_unit
        self.describe_link = describe_link
        self.setMouseTracking(True)
        self.columns: list[Column] = []
        self.links: list[Link] = []
        self._segments = np.zeros((0, 4))
        self.hover_text = ""
        self._pixmap: QPixmap | None = None

    def set_content(self, columns: list[Column], links: list[Link]) -> None:
        """Draw these columns and links (the view lays them out; rects are filled in here)."""
        self.columns, self.links = columns, links
        self.layout_columns()

    def sizeHint(self) -> QSize:
        return QSize(COLUMN_W * max(3, len(self.columns)), 560)

    def paintEvent(self, event: QPaintEvent) -> None:
        # Drawn once per probe into a pixmap: a repaint (hover, expose) only blits it.
        if self._pixmap is None or self._pixmap.size() != self.size() * self.devicePixelRatioF():
            self._render()
        p = QPainter(self)
        p.drawPixmap(0, 0, self._pixmap)
        p.end()

    def _render(self) -> None:
        ratio = self.devicePixelRatioF()
        self._pixmap = QPixmap(self.size() * ratio)
        self._pixmap.setDevicePixelRatio(ratio)
        self._pixmap.fill(QColor(255, 255, 255))
        p = QPainter(self._pixmap)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        # Links go out in a few batches (sign × thickness bucket): one drawLines call each.
        buckets: dict[tuple[bool, int], list[QLineF]] = {}
        for (_c, _i, _j, w), (x0, y0, x1, y1) in zip(self.links, self._segments):
            key = (w > 0, min(LINK_BUCKETS - 1, int(abs(w) * LINK_BUCKETS / 2)))
            buckets.setdefault(key, []).append(QLineF(x0, y0, x1, y1))
        for (positive, b), lines in sorted(buckets.items(), key=lambda kv: kv[0][1]):
            strength = (b + 0.5) / LINK_BUCKETS  # |w| from 0 to 2 maps onto the buckets
            # Opaque colours pre-mixed with the white background: blending translucent thick lines cost
            # ~60 ms a frame on a 6×8 network, opaque ones ~4 ms.
            a = 0.25 + 0.75 * strength
            rgb = [round(255 * (1 - a) + c * a) for c in (POSITIVE if positive else NEGATIVE)]
            p.setPen(QPen(QColor(*rgb), 0.5 + 5.5 * strength))
            p.drawLines(lines)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        for col in self.columns:
            for k, (img, r) in enumerate(zip(col.images, col.rects)):
                p.setOpacity(0.25 if k < len(col.faded) and col.faded[k] else 1.0)
                p.drawImage(r, img)
                p.setPen(QPen(QColor(90, 90, 90), 1))
                p.drawRect(r)
                if k < len(col.labels):
                    p.setPen(QColor(40, 40, 40))
                    p.drawText(QRectF(r.left() - 58, r.top(), 54, r.height()),
                               Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, col.labels[k])
            p.setOpacity(1.0)
            if col.units > len(col.rects) and col.rects:
                last = col.rects[-1]
                p.setPen(QColor(90, 90, 90))
                p.drawText(QRectF(last.left() - 20, last.bottom() + 2, last.width() + 40, 16),
                           Qt.AlignmentFlag.AlignCenter, f"+{col.units - len(col.rects)} more")
        p.end()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        text = self.describe(event.position())
        if text != self.hover_text:
            self.hover_text = text
            if text:
                QToolTip.showText(event.globalPosition().toPoint(), text, self)
            else:
                QToolTip.hideText()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            for ci, col in enumerate(self.columns):
                for k, r in enumerate(col.rects):
                    if r.contains(event.position()):
                        self.unit_clicked.emit(ci, k)
                        return

    def describe(self, pos: QPointF) -> str:
        """What hovering at `pos` shows: a neuron (with its bias) or a link's weight, or nothing."""
        for ci, col in enumerate(self.columns):
            for k, r in enumerate(col.rects):
                if r.contains(pos):
                    return self.describe_unit(ci, k)
        if not len(self._segments):
            return ""
        x, y = pos.x(), pos.y()
        a, b = self._segments[:, :2], self._segments[:, 2:]
        d = b - a
        t = np.clip(((x - a[:, 0]) * d[:, 0] + (y - a[:, 1]) * d[:, 1]) / np.maximum((d ** 2).sum(1), 1e-9), 0, 1)
        dist = np.hypot(a[:, 0] + t * d[:, 0] - x, a[:, 1] + t * d[:, 1] - y)
        i = int(dist.argmin())
        if dist[i] > 4:
            return ""
        return self.describe_link(self.links[i])

    def layout_columns(self) -> None:
        """Place nodes in columns that line up with the header widgets, then compute link segments."""
        n = len(self.columns)
        if n == 0:
            return
        height = self.height() - 24
        most = max(len(c.images) for c in self.columns)
        size = float(max(14, min(40, height / max(most, 1) - 8)))
        gap = size + 8
        for ci, col in enumerate(self.columns):
            cx = self.column_x(ci)
            top = 8.0
            if ci == n - 1 and ci > 0:  # the output sits level with the middle of the layer feeding it
                before = self.columns[ci - 1].rects
                top = (before[0].top() + before[-1].bottom()) / 2 - size / 2 if before else top
            col.rects = [QRectF(cx - size / 2, top + k * gap, size, size) for k in range(len(col.images))]
        segs = []
        for link in self.links:
            r0 = self.columns[link.column].rects[link.src]
            r1 = self.columns[link.column + 1].rects[link.dst]
            segs.append((r0.right(), r0.center().y(), r1.left(), r1.center().y()))
        self._segments = np.array(segs, dtype=np.float64).reshape(-1, 4)
        self._pixmap = None
        self.update()

    def resizeEvent(self, event: QResizeEvent) -> None:
        self.layout_columns()
