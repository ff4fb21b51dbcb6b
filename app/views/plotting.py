"""Helpers for plots that redraw 30 times a second without starving the training thread.

Axis painting dominates a live pyqtgraph plot (text replayed from a QPicture, with the GIL held), and axes
repaint whenever the view range changes. So ranges move in "nice" steps (1, 2, 2.5, 5 × 10ᵏ) only when the
data outgrows them, and axes cache their pixels between those moments.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPathItem, QGraphicsView


def nice_ceil(v: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10ᵏ that is ≥ v (1 for non-positive or non-finite v)."""
    if not math.isfinite(v) or v <= 0:
        return 1.0
    e = 10.0 ** math.floor(math.log10(v))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if m * e >= v * (1 - 1e-12):
            return m * e
    return 10.0 * e


def finite_max(*arrays: np.ndarray) -> float:
    best = -math.inf
    for a in arrays:
        if len(a):
            m = np.nanmax(a) if np.isfinite(a).any() else -math.inf
            best = max(best, float(m)) if math.isfinite(m) else best
    return best


def finite_min(*arrays: np.ndarray) -> float:
    return -finite_max(*(-a for a in arrays))


class RunningSpan:
    """The (min, max) of the finite values a growing series has had, kept up to date from its new values only:
    a pass over a long run's whole history every frame grew the frame's cost with the run."""

    def __init__(self) -> None:
        self.key: object = None
        self.seen = 0
        self.lo, self.hi = math.inf, -math.inf

    def update(self, key: object, start: int, values: np.ndarray) -> tuple[float, float]:
        """Take the values of a series whose exact part starts at global index ``start``; a new ``key`` (a new
        run) or a shorter series starts over."""
        total = start + len(values)
        if key != self.key or total < self.seen:
            self.key, self.seen, self.lo, self.hi = key, 0, math.inf, -math.inf
        new = values[max(self.seen - start, 0):]
        if len(new):
            self.lo, self.hi = min(self.lo, finite_min(new)), max(self.hi, finite_max(new))
        self.seen = total
        return self.lo, self.hi


class _PrepareOnPaint(QObject):
    """Does, before each paint of a view's viewport, what pyqtgraph's `GraphicsView.paintEvent` does: let the
    scene's items (a ViewBox's deferred range and matrix) update first."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint:
            scene = watched.parent().scene()  # type: ignore[attr-defined]  # the viewport's parent: the view
            if scene is not None:
                scene.prepareForPaint()
        return False


class _QtPaint:
    """Paint a pyqtgraph view without Python on the stack. pyqtgraph overrides `paintEvent` in Python, so Qt's
    whole scene render ran inside a Python call, holding the GIL, and the training thread waited for it. A
    C++ method as the class attribute is no override to PySide (it looks for Python functions only): Qt then
    paints with the GIL released, taking it only for items that paint in Python (axes, scatter, images). An
    event filter on the viewport keeps the scene's prepare-for-paint step."""

    paintEvent = QGraphicsView.paintEvent

    def _keep_prepare(self) -> None:
        self._prepare = _PrepareOnPaint(self)  # type: ignore[arg-type]
        self.viewport().installEventFilter(self._prepare)  # type: ignore[attr-defined]


class PlotWidget(_QtPaint, pg.PlotWidget):
    """pg.PlotWidget, painted by Qt alone (see `_QtPaint`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._keep_prepare()


class GraphicsLayoutWidget(_QtPaint, pg.GraphicsLayoutWidget):
    """pg.GraphicsLayoutWidget, painted by Qt alone (see `_QtPaint`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._keep_prepare()


def prepare_plot(plot: pg.PlotItem) -> None:
    """Ranges are set by hand (see `StableRange`); axes keep their pixels until the range changes."""
    plot.disableAutoRange()
    plot.setMouseEnabled(False, False)
    plot.setMenuEnabled(False)
    plot.hideButtons()
    for name in ("left", "bottom"):
        plot.getAxis(name).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)


class StableRange:
    """Keeps a plot's range fixed until the data leaves it, then jumps to the next nice bound."""

    def __init__(self, plot: pg.PlotItem) -> None:
        self.plot = plot
        self.x: tuple[float, float] | None = None
        self.y: tuple[float, float] | None = None

    def set(self, x: tuple[float, float] | None = None, y: tuple[float, float] | None = None) -> None:
        if x is not None and x != self.x:
            self.x = x
            self.plot.setXRange(*x, padding=0.02)
        if y is not None and y != self.y:
            self.y = y
            self.plot.setYRange(*y, padding=0.04)

    def reset(self) -> None:
        self.x = self.y = None


def grow(current: float | None, needed: float) -> float:
    """A nice upper bound ≥ needed that only grows, or shrinks once the data falls below a fifth of it."""
    bound = nice_ceil(needed)
    if current is not None and bound <= current and needed > current / 5:
        return current
    return bound


def log_range(lo: float, hi: float) -> tuple[float, float]:
    """A log10 view range in whole decades around [lo, hi] (positive values; a default when there are none)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= 0:
        return (-3.0, 1.0)
    lo = max(lo, hi * 1e-8, 1e-30)
    a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    return (float(a), float(max(b, a + 1)))


class PathCurve(QGraphicsPathItem):
    """A curve drawn by Qt alone: a C++ path item, so painting it, and the many bounding-rect queries Qt makes
    while painting a scene, run no Python. pyqtgraph's PlotCurveItem runs Python for each; with training in
    another thread, every such call on the GUI thread waits for, then holds, the GIL. The data set last is
    kept in `xData`/`yData` (for tests and readouts); the path is pyqtgraph's fast `arrayToQPath`."""

    def __init__(self, pen: QPen) -> None:
        super().__init__()
        self.setPen(pen)
        self.xData: np.ndarray | None = None
        self.yData: np.ndarray | None = None
        # cached as device pixels: when a small item beside it changes, Qt copies this one's pixels back
        # instead of stroking its path again
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)

    def setData(self, x: Any, y: Any, stepMode: str | None = None) -> None:  # pyqtgraph's names
        """Draw y over x; ``stepMode="center"`` draws a histogram's steps (len(x) == len(y) + 1 edges)."""
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        self.xData, self.yData = x, y
        if stepMode == "center" and len(y):
            x, y = np.repeat(x, 2)[1:-1], np.repeat(y, 2)
        self.setPath(pg.arrayToQPath(x, y, connect="finite") if len(x) else QPainterPath())


def cached_curve(plot: pg.PlotItem, pen: QPen) -> PathCurve:
    """A `PathCurve` in ``plot``'s data coordinates (not counted in its auto-range: ranges are set by hand)."""
    item = PathCurve(pen)
    plot.addItem(item, ignoreBounds=True)
    return item


def log10(y: np.ndarray) -> np.ndarray:
    """log10 for a log axis, NaN (a gap) where a value is not positive."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(y > 0, np.log10(np.where(y > 0, y, 1.0)), np.nan)


class ColumnTrace:
    """An ever-growing series drawn at one (min, max) pair per pixel column, as two curve items: the body, the
    columns up to a settled point, redrawn only every `chunk` columns; and the head, the newest columns and
    the unfinished one, a narrow item that alone changes from frame to frame. Qt then repaints a strip at the
    right end of the plot per frame, not the plot, and the reductions are kept and extended, not recomputed.

    Columns are runs of ``per`` values at global indices [k·per, (k+1)·per): ``per`` comes from the plot's x
    range, which moves only in nice steps, so a column's values never change once it is full."""

    def __init__(self, plot: pg.PlotItem, pen: QPen) -> None:
        self.body = cached_curve(plot, pen)
        self.head = cached_curve(plot, pen)
        self.clear()

    def clear(self) -> None:
        self.per = 0
        self.log = False  # y drawn as log10 (a bare curve item has no log mode of its own)
        self.start = -1
        self.first = 0  # the first column index held
        self.lo = np.empty(0)
        self.hi = np.empty(0)
        self.body_columns = 0  # columns drawn by the body
        self._shown: tuple[int, int, int, bool] | None = None  # what the last `show` drew
        self._head_key: tuple[float, ...] = ()
        self.body.setData([], [])
        self.head.setData([], [])

    def columns_xy(self, k0: int, k1: int, lo: np.ndarray, hi: np.ndarray, x0: float, dx: float,
                   start: int, total: int) -> tuple[np.ndarray, np.ndarray]:
        """Columns k0…k1-1 as a line through each column's min and max at its first and last index."""
        k = np.arange(k0, k1, dtype=np.float64)
        if self.per == 1:
            return x0 + dx * k, log10(lo) if self.log else lo
        a = np.maximum(k * self.per, start)
        b = np.minimum((k + 1) * self.per, total) - 1
        y = np.stack([lo, hi], axis=1).ravel()
        return np.stack([x0 + dx * a, x0 + dx * b], axis=1).ravel(), log10(y) if self.log else y

    def show(self, start: int, values: np.ndarray, x0: float, dx: float, per: int, chunk: int = 16,
             log: bool = False) -> None:
        """Draw ``values`` (global indices start, start+1, …, at x = x0 + dx·index), ``per`` values a column,
        on a log10 y axis if ``log``."""
        per = max(1, per)
        total = start + len(values)
        if (total, per, start, log) == self._shown:
            return  # nothing new (an epoch curve between two epochs)
        if per != self.per or start != self.start or total < self.first * per or log != self.log:
            self.clear()  # a new x range, or a run that folded or restarted: reduce again from its start
            self.per, self.start, self.first, self.log = per, start, start // per, log
        self._shown = (total, per, start, log)
        full = total // per  # columns [first, full) are complete
        held = self.first + len(self.lo)
        if full > held:  # reduce the newly completed columns
            edges = np.maximum(np.arange(held, full) * per - start, 0)
            part = values[:full * per - start]
            with np.errstate(invalid="ignore"):
                self.lo = np.concatenate([self.lo, np.fmin.reduceat(part, edges)])
                self.hi = np.concatenate([self.hi, np.fmax.reduceat(part, edges)])
        n = len(self.lo)
        settled = n - n % chunk
        if settled != self.body_columns:
            self.body_columns = settled
            self.body.setData(*self.columns_xy(self.first, self.first + settled, self.lo[:settled],
                                               self.hi[:settled], x0, dx, start, total))
        # The head: the last settled column (so the line joins), the columns since, and the unfinished one.
        k0 = max(settled - 1, 0)
        hx, hy = self.columns_xy(self.first + k0, self.first + n, self.lo[k0:], self.hi[k0:], x0, dx, start, total)
        tail = values[max(full * per - start, 0):]
        if len(tail):
            with np.errstate(invalid="ignore"):
                tlo, thi = float(np.fmin.reduce(tail)), float(np.fmax.reduce(tail))
            xa, xb = x0 + dx * max(full * per, start), x0 + dx * (total - 1)
            ty = np.array([tlo, thi] if per > 1 else [thi])
            hx = np.append(hx, [xa, xb] if per > 1 else [xb])
            hy = np.append(hy, log10(ty) if log else ty)
        key = (settled, len(hx), *hx[-3:], *hy[-3:])
        if key != self._head_key:  # an unfinished column whose min and max stand still draws nothing new
            self._head_key = key
            self.head.setData(hx, hy)

    def set_visible(self, on: bool) -> None:
        self.body.setVisible(on)
        self.head.setVisible(on)

    def xy(self) -> tuple[np.ndarray, np.ndarray]:
        """The whole line as drawn (body, then the head without the column it repeats to join the body)."""
        parts = [(self.body.xData, self.body.yData), (self.head.xData, self.head.yData)]
        x, y = (np.concatenate([np.asarray(p[i] if p[i] is not None else [], dtype=np.float64) for p in parts])
                for i in (0, 1))
        joint = 0 if self.body_columns == 0 else (1 if self.per == 1 else 2)
        n = 0 if self.body.xData is None else len(self.body.xData)
        return np.delete(x, np.s_[n:n + joint]), np.delete(y, np.s_[n:n + joint])


def peaks_xy(x: np.ndarray, y: np.ndarray, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """For increasing but unevenly spaced x (probe steps): the min and max of the values in each
    of ``columns`` equal slices of the x range, at the slice's first and last x."""
    n = len(x)
    if n <= 2 * columns:
        return x, y
    cuts = np.searchsorted(x, np.linspace(x[0], x[-1], columns + 1)[1:-1])
    starts = np.unique(np.concatenate([[0], cuts]))
    starts = starts[starts < n]
    ends = np.append(starts[1:], n) - 1
    with np.errstate(invalid="ignore"):
        lo, hi = np.fmin.reduceat(y, starts), np.fmax.reduceat(y, starts)
    return np.stack([x[starts], x[ends]], axis=1).ravel(), np.stack([lo, hi], axis=1).ravel()


class EpochHover:
    """The epoch under the mouse in a column of plots that share x in epochs (Curves, Loss split, Sequence
    accuracy): a vertical cursor on each plot, and ``values_at(x)``'s text in ``readout``."""

    def __init__(self, graphics: pg.GraphicsLayoutWidget, plots: list[pg.PlotItem], readout: Any,
                 values_at: Any) -> None:
        self.plots, self.readout, self.values_at = plots, readout, values_at
        self.cursors = []
        for plot in plots:
            cursor = pg.InfiniteLine(angle=90, pen=pg.mkPen((0, 0, 0, 90)))
            cursor.setVisible(False)
            plot.addItem(cursor, ignoreBounds=True)
            self.cursors.append(cursor)
        graphics.scene().sigMouseMoved.connect(self.moved)

    def moved(self, pos: Any) -> None:
        """The mouse at scene position ``pos``: over a plot, its epoch's cursor and values; elsewhere, none."""
        for plot in self.plots:
            if plot.isVisible() and plot.sceneBoundingRect().contains(pos):
                x = plot.vb.mapSceneToView(pos).x()
                for cursor in self.cursors:
                    cursor.setPos(round(x))
                    cursor.setVisible(True)
                self.readout.setText(self.values_at(x))
                return
        for cursor in self.cursors:
            cursor.setVisible(False)
