"""The network canvas: neuron heatmaps in columns and weight links, painted once per probe into a pixmap;
hover names a neuron or link, a click on a feature toggles it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QLineF, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen, QPixmap, QResizeEvent
from PySide6.QtWidgets import QToolTip, QWidget

from engine.datasets.toy2d import FEATURE_LABELS

from ..colors import NEGATIVE, POSITIVE

if TYPE_CHECKING:
    from .network import NetworkView

ALL_FEATURES = tuple(FEATURE_LABELS)
LINK_BUCKETS = 8
COLUMN_W = 104  # horizontal room per column, shared with the header widgets above it


@dataclass
class Column:
    """One drawn column: its node id, the units shown, their heatmaps and where they are."""

    node: str  # "input", a dense node id, or "output"
    units: int
    images: list[QImage]
    rects: list[QRectF]
    labels: list[str]


def to_qimages(rgb: np.ndarray) -> list[QImage]:
    """(N, g, g, 3) uint8, row 0 = lowest x₂, as owned QImages with x₂ pointing up."""
    out = []
    for a in rgb:
        a = np.ascontiguousarray(a[::-1])
        h, w, _ = a.shape
        out.append(QImage(a.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy())
    return out


class NetworkCanvas(QWidget):
    """Paints columns and links; hover shows a neuron's or link's value; clicking a feature toggles it."""

    feature_clicked = Signal(str)

    def __init__(self, view: NetworkView) -> None:
        super().__init__(view)
        self.view = view
        self.setMouseTracking(True)
        self.columns: list[Column] = []
        self.links: list[tuple[int, int, int, float]] = []  # (column, from unit, to unit, weight)
        self._segments = np.zeros((0, 4))
        self.hover_text = ""
        self._pixmap: QPixmap | None = None

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
        enabled = set(self.view.enabled_features)
        for ci, col in enumerate(self.columns):
            for k, (img, r) in enumerate(zip(col.images, col.rects)):
                faded = ci == 0 and ALL_FEATURES[k] not in enabled
                p.setOpacity(0.25 if faded else 1.0)
                p.drawImage(r, img)
                p.setPen(QPen(QColor(90, 90, 90), 1))
                p.drawRect(r)
                if ci == 0:
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
        if event.button() == Qt.MouseButton.LeftButton and self.columns:
            for k, r in enumerate(self.columns[0].rects):
                if r.contains(event.position()):
                    self.feature_clicked.emit(ALL_FEATURES[k])
                    return

    def describe(self, pos: QPointF) -> str:
        """What hovering at `pos` shows: a neuron (with its bias) or a link's weight, or nothing."""
        for ci, col in enumerate(self.columns):
            for k, r in enumerate(col.rects):
                if r.contains(pos):
                    return self.view.describe_unit(ci, k)
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
        c, u, v, w = self.links[i]
        return self.view.describe_link(c, u, v, w)

    def link_midpoint(self, i: int) -> QPointF:
        x0, y0, x1, y1 = self._segments[i]
        return QPointF((x0 + x1) / 2, (y0 + y1) / 2)

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
            cx = self.view.column_x(ci)
            top = 8.0
            if ci == n - 1 and ci > 0:  # the output sits level with the middle of the layer feeding it
                before = self.columns[ci - 1].rects
                top = (before[0].top() + before[-1].bottom()) / 2 - size / 2 if before else top
            col.rects = [QRectF(cx - size / 2, top + k * gap, size, size) for k in range(len(col.images))]
        segs = []
        for c, u, v, _w in self.links:
            r0 = self.columns[c].rects[u]
            r1 = self.columns[c + 1].rects[v]
            segs.append((r0.right(), r0.center().y(), r1.left(), r1.center().y()))
        self._segments = np.array(segs, dtype=np.float64).reshape(-1, 4)
        self._pixmap = None
        self.update()

    def resizeEvent(self, event: QResizeEvent) -> None:
        self.layout_columns()
