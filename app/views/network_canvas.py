"""The network canvas: a plain painter of neuron heatmaps in columns and weight links, fed by its view.

Every millisecond painted here holds the GIL that training needs (QPainter keeps it even inside drawLines), so
the picture is cached in two layers. The base holds what changes seldom: the links, painted again only when one
changes its drawn colour or width (its sign × strength bucket: about one probe round in ten once training
settles), the features and the notes. The picture is the base with the layers' heatmaps over it, painted again
when they change. A repaint with nothing new (an expose, a hover) is a blit plus the hover outline. Hover texts
come from the view's callbacks; hovering and clicking a unit or a link are signals."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from PySide6.QtCore import QEvent, QLineF, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QImage,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPen,
    QPixmap,
    QResizeEvent,
)
from PySide6.QtWidgets import QToolTip, QWidget

from ..colors import NEGATIVE, POSITIVE
from .weight_editor import WeightEditor

LINK_BUCKETS = 8
COLUMN_W = 104  # horizontal room per column, shared with the header widgets above it
LANE_H = 18  # height of one lane of skip arcs above the columns
HIT_PX = 4  # how near a link the mouse must be to point at it
ARC_SAMPLES = 8  # points per curved piece of an arc, for hit tests
FRAME = QColor(90, 90, 90)
TEXT = QColor(40, 40, 40)
HOVER = QColor(20, 20, 20)
PALE = 0.25  # how much of a switched-off feature shows over the white


@dataclass
class Column:
    """One drawn column: its node, its units, how many are shown, their heatmaps and where they are."""

    node: str  # "input", a dense node id, or "output"
    units: int
    shown: int  # thumbnails drawn: wide layers show their first units and say how many more there are
    labels: list[str] = field(default_factory=list)  # drawn left of the first column's units
    faded: list[bool] = field(default_factory=list)  # units drawn pale (features switched off)
    images: list[QImage] = field(default_factory=list)
    rects: list[QRectF] = field(default_factory=list)


class Link(NamedTuple):
    """A weight drawn from unit `src` of column `column` to unit `dst` of the next column."""

    column: int
    src: int
    dst: int
    weight: float


class Arc(NamedTuple):
    """A weight that skips columns (a residual add, a concat of an earlier layer): from unit `src` of column
    `column` to unit `dst` of column `target`, drawn dashed in a lane that arcs over the columns between."""

    column: int
    src: int
    target: int
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


def _pale_color(c: QColor) -> QColor:
    return QColor(*(round(255 * (1 - PALE) + v * PALE) for v in (c.red(), c.green(), c.blue())))


def _pale(img: QImage) -> QImage:
    """The image as drawn at `PALE` opacity over white."""
    out = QImage(img.size(), QImage.Format.Format_RGB32)
    out.fill(QColor(255, 255, 255))
    p = QPainter(out)
    p.setOpacity(PALE)
    p.drawImage(0, 0, img)
    p.end()
    return out


def _cubic(p0: QPointF, p1: QPointF, p2: QPointF, p3: QPointF) -> np.ndarray:
    """(ARC_SAMPLES + 1, 2) points along a cubic Bézier curve, as QPainterPath.cubicTo draws it."""
    t = np.linspace(0.0, 1.0, ARC_SAMPLES + 1)[:, None]
    pts = np.array([[q.x(), q.y()] for q in (p0, p1, p2, p3)])
    return ((1 - t) ** 3 * pts[0] + 3 * (1 - t) ** 2 * t * pts[1] + 3 * (1 - t) * t ** 2 * pts[2]
            + t ** 3 * pts[3])


def _link_pens(dashed: bool) -> dict[int, QPen]:
    """The pen of each link bucket (2·strength + positive): opaque colours pre-mixed with the white background,
    since blending translucent thick lines cost ~60 ms a frame on a 6×8 network, opaque ones ~4 ms."""
    pens = {}
    for b in range(LINK_BUCKETS):
        strength = (b + 0.5) / LINK_BUCKETS  # |w| from 0 to 2 maps onto the buckets
        a = 0.25 + 0.75 * strength
        for positive in (False, True):
            rgb = [round(255 * (1 - a) + c * a) for c in (POSITIVE if positive else NEGATIVE)]
            pen = QPen(QColor(*rgb), 0.5 + 5.5 * strength)
            if dashed:
                pen.setDashPattern([3.0, 1.5])  # in units of the pen's width: reads as dashed at every width
            pens[2 * b + positive] = pen
    return pens


class NetworkCanvas(QWidget):
    """Paints columns and links where `column_x` says; hovering asks `describe_unit` / `describe_link`.

    Links live in one table, `ends` (src column, src unit, dst column, dst unit) with `weights`: those into the
    next column are straight (`links`), the rest arcs (`arcs`); signals name a link by its row in the table."""

    unit_clicked = Signal(int, int)  # column, unit
    unit_hovered = Signal(int, int)  # column, unit; -1, -1 when the mouse leaves the units
    link_clicked = Signal(int, QPointF)  # row in `ends`, where it was clicked

    def __init__(self, column_x: Callable[[int], float], describe_unit: Callable[[int, int], str],
                 describe_link: Callable[[int], str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.column_x = column_x
        self.describe_unit = describe_unit
        self.describe_link = describe_link
        self.setMouseTracking(True)
        self.columns: list[Column] = []
        self.ends = np.zeros((0, 4), dtype=np.intp)
        self.weights = np.zeros(0)
        self.lane_labels: dict[tuple[int, int], str] = {}
        self.editor = WeightEditor(self)
        self.hover_text = ""
        self.hovered: tuple[int, int] | None = None  # the unit under the mouse
        self.hovered_link: int | None = None
        self.renders = 0  # pictures painted: a repaint with nothing new must not add one
        self.base_renders = 0  # base layers painted: only a link that looks different, or a new layout, adds one
        self._pixmap: QPixmap | None = None  # the whole picture
        self._base: QPixmap | None = None  # the links and the features, under the layers' heatmaps
        self._stale = self._base_stale = True
        self._frames: list[QRectF] = []  # the outlines of the layers' and the output's heatmaps
        self._keys = np.zeros(0, dtype=np.intp)  # per link: its look, 2·strength bucket + positive
        self._is_arc = np.zeros(0, dtype=bool)
        self._lines: list[QLineF] = []  # per link: its straight line (unused for arcs)
        self._paths: dict[int, QPainterPath] = {}  # per arc
        self._lanes: dict[tuple[int, int], float] = {}  # (src column, dst column) → y of its lane
        self._boxes = np.zeros((0, 4))  # per unit: left, top, right, bottom
        self._box_unit = np.zeros((0, 2), dtype=np.intp)  # per unit box: column, unit
        self._hit = np.zeros((0, 4))  # segments to hit-test links with, and the link each belongs to
        self._hit_link = np.zeros(0, dtype=np.intp)
        self._pens = _link_pens(dashed=False)
        self._arc_pens = _link_pens(dashed=True)

    # --- content -------------------------------------------------------------------------------------

    def set_structure(self, columns: list[Column], ends: np.ndarray, lane_labels: dict[tuple[int, int], str]) -> None:
        """A new network to draw: columns (their images come with `set_images`) and the link table; links that
        skip columns are drawn in one lane per (src column, dst column), labelled with `lane_labels`."""
        self._set_hover(None, None)  # while the old network is still there to take its outline off
        self.editor.hide()
        self.columns = columns
        self.ends = np.asarray(ends, dtype=np.intp).reshape(-1, 4)
        self._is_arc = self.ends[:, 2] != self.ends[:, 0] + 1
        self.weights = np.zeros(len(self.ends))
        self._keys = self._looks(self.weights)
        self.lane_labels = lane_labels
        self.layout_columns()

    def set_images(self, column: int, images: list[QImage]) -> None:
        self.columns[column].images = images
        self._base_stale = self._base_stale or column == 0  # the features are part of the base
        self._invalidate()

    def set_weights(self, weights: np.ndarray) -> None:
        """The weight of every link, in the order of `ends` (finite: the view removes NaN). The picture is
        painted again only if a link now looks different."""
        self.weights = np.asarray(weights, dtype=np.float64)
        keys = self._looks(self.weights)
        if not np.array_equal(keys, self._keys):
            self._keys = keys
            self._base_stale = True
            self._invalidate()

    @staticmethod
    def _looks(weights: np.ndarray) -> np.ndarray:
        """How each link is drawn: 2·strength bucket + positive, |w| from 0 to 2 spread over the buckets."""
        bucket = np.minimum(np.abs(weights) * (LINK_BUCKETS / 2), LINK_BUCKETS - 1).astype(np.intp)
        return 2 * bucket + (weights > 0)

    @property
    def links(self) -> list[Link]:
        """The straight links, into the next column."""
        rows = np.flatnonzero(~self._is_arc)
        return [Link(c, u, v, w) for (c, u, _, v), w in zip(self.ends[rows].tolist(), self.weights[rows].tolist())]

    @property
    def arcs(self) -> list[Arc]:
        """The links that skip columns."""
        rows = np.flatnonzero(self._is_arc)
        return [Arc(*e, w) for e, w in zip(self.ends[rows].tolist(), self.weights[rows].tolist())]

    def link(self, row: int) -> Link | Arc:
        """Row `row` of the link table."""
        c, u, d, v = self.ends[row].tolist()
        w = float(self.weights[row])
        return Arc(c, u, d, v, w) if self._is_arc[row] else Link(c, u, v, w)

    def link_path(self, row: int) -> QPainterPath:
        """Where link `row` is drawn: a line into the next column, or an arc through its lane."""
        if self._is_arc[row]:
            return self._paths[row]
        line = self._lines[row]
        path = QPainterPath(line.p1())
        path.lineTo(line.p2())
        return path

    def sizeHint(self) -> QSize:
        return QSize(COLUMN_W * max(3, len(self.columns)), 560)

    # --- geometry ------------------------------------------------------------------------------------

    def layout_columns(self) -> None:
        """Place units in columns that line up with the header widgets, then the links between them (lanes of
        arcs above the columns)."""
        self._base_stale = True
        self._invalidate()
        if not self.columns:
            return
        spans = sorted({(c, d) for c, _u, d, _v in self.ends[self._is_arc].tolist()}, key=lambda s: (s[1] - s[0], s))
        band = LANE_H * len(spans)
        # The shortest skips run lowest, so that longer ones arc over them without crossing.
        self._lanes = {s: float(band - LANE_H * i) for i, s in enumerate(spans)}  # each with its label above
        height = self.height() - 24 - band
        most = max(c.shown for c in self.columns)
        size = float(max(14, min(40, height / max(most, 1) - 8)))
        gap = size + 8
        boxes, owners = [], []
        for ci, col in enumerate(self.columns):
            cx = self.column_x(ci)
            top = 8.0 + band
            if ci == len(self.columns) - 1 and ci > 0:  # the output sits level with the middle of the layer feeding it
                before = self.columns[ci - 1].rects
                top = (before[0].top() + before[-1].bottom()) / 2 - size / 2 if before else top
            col.rects = [QRectF(cx - size / 2, top + k * gap, size, size) for k in range(col.shown)]
            boxes += [(r.left(), r.top(), r.right(), r.bottom()) for r in col.rects]
            owners += [(ci, k) for k in range(col.shown)]
        self._boxes = np.array(boxes, dtype=np.float64).reshape(-1, 4)
        self._box_unit = np.array(owners, dtype=np.intp).reshape(-1, 2)
        self._frames = [r for col in self.columns[1:] for r in col.rects]
        self._layout_links(size)

    def _layout_links(self, size: float) -> None:
        """Lines for straight links, paths for arcs, and the segments both are hit-tested by."""
        first = np.cumsum([0] + [c.shown for c in self.columns])  # row in `_boxes` of each column's first unit
        src = self._boxes[first[self.ends[:, 0]] + self.ends[:, 1]]
        dst = self._boxes[first[self.ends[:, 2]] + self.ends[:, 3]]
        segs = np.stack([src[:, 2], (src[:, 1] + src[:, 3]) / 2, dst[:, 0], (dst[:, 1] + dst[:, 3]) / 2], axis=1)
        self._lines = [QLineF(*s) for s in segs.tolist()]
        self._paths = {}
        hit, owner = [segs[~self._is_arc]], [np.flatnonzero(~self._is_arc)]
        for row in np.flatnonzero(self._is_arc).tolist():
            c, _u, d, _v = self.ends[row].tolist()
            x0, y0, x1, y1 = segs[row].tolist()
            lane = self._lanes[(c, d)]
            # Up in the gap after the source column, along the lane, down in the gap before the target.
            rise = 0.8 * (self.column_x(c + 1) - self.column_x(c) - size)
            fall = 0.8 * (self.column_x(d) - self.column_x(d - 1) - size)
            up = (QPointF(x0, y0), QPointF(x0 + rise * 0.6, y0), QPointF(x0 + rise * 0.4, lane),
                  QPointF(x0 + rise, lane))
            down = (QPointF(x1 - fall, lane), QPointF(x1 - fall * 0.4, lane), QPointF(x1 - fall * 0.6, y1),
                    QPointF(x1, y1))
            path = QPainterPath(up[0])
            path.cubicTo(*up[1:])
            path.lineTo(down[0])
            path.cubicTo(*down[1:])
            self._paths[row] = path
            pts = np.concatenate([_cubic(*up), _cubic(*down)])
            hit.append(np.concatenate([pts[:-1], pts[1:]], axis=1))
            owner.append(np.full(len(pts) - 1, row))
        self._hit = np.concatenate(hit).reshape(-1, 4)
        self._hit_link = np.concatenate(owner).astype(np.intp)

    def resizeEvent(self, event: QResizeEvent) -> None:
        self.layout_columns()

    # --- painting ------------------------------------------------------------------------------------

    def _invalidate(self) -> None:
        self._stale = True
        self.update()

    def render_now(self) -> None:
        """Bring the cached picture up to date. The view calls this at the end of its frame, so the picture's
        cost is counted in the frame's draw time and the paint that follows only copies pixels."""
        ratio = self.devicePixelRatioF()
        size = self.size() * ratio
        if self._pixmap is None or self._base is None or self._pixmap.size() != size:
            self._pixmap, self._base = QPixmap(size), QPixmap(size)
            self._pixmap.setDevicePixelRatio(ratio)
            self._base.setDevicePixelRatio(ratio)
            self._stale = self._base_stale = True
        if self._base_stale:
            self._render_base(self._base)
        if self._stale:
            self._render(self._pixmap, self._base)

    def paintEvent(self, event: QPaintEvent) -> None:
        self.render_now()  # a no-op after a frame; not after a resize or a change outside a frame
        assert self._pixmap is not None
        ratio = self._pixmap.devicePixelRatio()
        p = QPainter(self)
        r = event.rect()  # a hover repaints only around its outline
        source = QRectF(r.x() * ratio, r.y() * ratio, r.width() * ratio, r.height() * ratio).toRect()
        p.drawPixmap(r, self._pixmap, source)
        self._paint_hover(p)
        p.end()

    def _render_base(self, pixmap: QPixmap) -> None:
        """What changes seldom: the links, the features (fixed for a run) and the notes."""
        self.base_renders += 1
        self._base_stale = False
        self._stale = True
        pixmap.fill(QColor(255, 255, 255))
        p = QPainter(pixmap)
        self._paint_links(p)
        if self.columns:
            self._paint_features(p, self.columns[0])
        self._paint_notes(p)
        p.end()

    def _render(self, pixmap: QPixmap, base: QPixmap) -> None:
        """The whole picture: the base with the heatmaps of the layers and the output over it."""
        self.renders += 1
        self._stale = False
        p = QPainter(pixmap)
        p.drawPixmap(0, 0, base)
        for col in self.columns[1:]:
            for img, r in zip(col.images, col.rects):
                p.drawImage(r, img)
        p.setPen(FRAME)
        p.drawRects(self._frames)
        p.end()

    def _paint_links(self, p: QPainter) -> None:
        """Links in a few batches (strength bucket × sign), thin ones first: one drawLines call per batch of
        straight links, one dashed path per batch of arcs."""
        if not len(self.weights):
            return
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        order = np.argsort(self._keys, kind="stable")
        keys, starts = np.unique(self._keys[order], return_index=True)
        for k, rows in zip(keys.tolist(), np.split(order, starts[1:])):
            arc = self._is_arc[rows]
            straight = rows[~arc].tolist()
            if straight:
                p.setPen(self._pens[k])
                p.drawLines([self._lines[i] for i in straight])
            if arc.any():
                path = QPainterPath()
                for i in rows[arc].tolist():
                    path.addPath(self._paths[i])
                p.setPen(self._arc_pens[k])
                p.drawPath(path)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)

    def _paint_features(self, p: QPainter, col: Column) -> None:
        """The first column: each feature's map and name, pale when switched off (pre-mixed with the white
        background: drawing an image at an opacity cost ten times as much)."""
        for k, (img, r) in enumerate(zip(col.images, col.rects)):
            off = k < len(col.faded) and col.faded[k]
            p.drawImage(r, _pale(img) if off else img)
            p.setPen(_pale_color(FRAME) if off else FRAME)
            p.drawRect(r)
            if k < len(col.labels):
                p.setPen(_pale_color(TEXT) if off else TEXT)
                p.drawText(QRectF(r.left() - 58, r.top(), 54, r.height()),
                           Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, col.labels[k])

    def _paint_notes(self, p: QPainter) -> None:
        """The lanes' labels, and how many units of a wide layer are not drawn."""
        p.setPen(FRAME)
        for (c, d), y in self._lanes.items():
            x0, x1 = self.column_x(c), self.column_x(d)
            p.drawText(QRectF(x0, y - LANE_H + 2, x1 - x0, LANE_H - 3), Qt.AlignmentFlag.AlignCenter,
                       self.lane_labels.get((c, d), ""))
        for col in self.columns:
            if col.units > col.shown and col.rects:
                last = col.rects[-1]
                p.drawText(QRectF(last.left() - 20, last.bottom() + 2, last.width() + 40, 16),
                           Qt.AlignmentFlag.AlignCenter, f"+{col.units - col.shown} more")

    def _paint_hover(self, p: QPainter) -> None:
        """The hovered unit or link, outlined over the cached picture (a hover never repaints the network)."""
        if self.hovered is not None:
            ci, k = self.hovered
            p.setPen(QPen(HOVER, 2))
            p.drawRect(self.columns[ci].rects[k].adjusted(-1, -1, 1, 1))
        elif self.hovered_link is not None:
            p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            p.setPen(QPen(HOVER, 1.5))
            p.drawPath(self.link_path(self.hovered_link))

    def _hover_bounds(self) -> QRectF:
        """Where the hover outline is drawn (empty for none), with room for the pen."""
        if self.hovered is not None:
            ci, k = self.hovered
            return self.columns[ci].rects[k].adjusted(-3, -3, 3, 3)
        if self.hovered_link is not None:
            return self.link_path(self.hovered_link).boundingRect().adjusted(-3, -3, 3, 3)
        return QRectF()

    # --- pointing ------------------------------------------------------------------------------------

    def unit_at(self, pos: QPointF) -> tuple[int, int] | None:
        """The (column, unit) whose thumbnail is at `pos`, or None."""
        b = self._boxes
        x, y = pos.x(), pos.y()
        inside = np.flatnonzero((b[:, 0] <= x) & (x <= b[:, 2]) & (b[:, 1] <= y) & (y <= b[:, 3]))
        if not len(inside):
            return None
        ci, k = self._box_unit[inside[0]].tolist()
        return ci, k

    def link_at(self, pos: QPointF) -> int | None:
        """The row of the link nearest `pos`, if one passes within a few pixels."""
        if not len(self._hit):
            return None
        x, y = pos.x(), pos.y()
        a, b = self._hit[:, :2], self._hit[:, 2:]
        d = b - a
        t = np.clip(((x - a[:, 0]) * d[:, 0] + (y - a[:, 1]) * d[:, 1]) / np.maximum((d ** 2).sum(1), 1e-9), 0, 1)
        dist = np.hypot(a[:, 0] + t * d[:, 0] - x, a[:, 1] + t * d[:, 1] - y)
        i = int(dist.argmin())
        return int(self._hit_link[i]) if dist[i] <= HIT_PX else None

    def describe(self, pos: QPointF) -> str:
        """What hovering at `pos` shows: a neuron (with its bias) or a link's weight, or nothing."""
        unit = self.unit_at(pos)
        if unit is not None:
            return self.describe_unit(*unit)
        row = self.link_at(pos)
        return "" if row is None else self.describe_link(row)

    def _set_hover(self, unit: tuple[int, int] | None, link: int | None) -> None:
        if (unit, link) == (self.hovered, self.hovered_link):
            return
        unit_changed = unit != self.hovered
        old = self._hover_bounds()
        self.hovered, self.hovered_link = unit, link
        self.update(old.united(self._hover_bounds()).toAlignedRect())  # a blit of that part only
        if unit_changed:
            self.unit_hovered.emit(*(unit if unit is not None else (-1, -1)))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        unit = self.unit_at(pos)
        link = self.link_at(pos) if unit is None else None
        self._set_hover(unit, link)
        text = self.describe_unit(*unit) if unit is not None else self.describe_link(link) if link is not None else ""
        if text != self.hover_text:
            self.hover_text = text
            if text:
                QToolTip.showText(event.globalPosition().toPoint(), text, self)
            else:
                QToolTip.hideText()

    def leaveEvent(self, event: QEvent) -> None:
        self._set_hover(None, None)
        self.hover_text = ""
        super().leaveEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        pos = event.position()
        unit = self.unit_at(pos)
        if unit is not None:
            self.unit_clicked.emit(*unit)
            return
        row = self.link_at(pos)
        if row is not None:
            self.link_clicked.emit(row, pos)
