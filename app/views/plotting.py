"""Helpers for plots that redraw 30 times a second without starving the training thread.

Axis painting dominates a live pyqtgraph plot (text replayed from a QPicture, with the GIL held), and axes
repaint whenever the view range changes. So ranges move in "nice" steps (1, 2, 2.5, 5 × 10ᵏ) only when the
data outgrows them, and axes cache their pixels between those moments.
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QGraphicsItem


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


def long_curve(plot: pg.PlotItem, pen: pg.QtGui.QPen, name: str | None = None) -> pg.PlotDataItem:
    """A curve item made for ever-growing data: peak downsampling and clip-to-view (ARCHITECTURE.md, "Drawing")."""
    # created once, updated with setData; not antialiased: Qt strokes a 2-px antialiased line of a few hundred
    # min/max points in 12 ms, the same line aliased in 1.3 ms, and the GUI thread holds the GIL meanwhile
    item = plot.plot(pen=pen, name=name, antialias=False)
    item.setDownsampling(auto=True, method="peak")
    item.setClipToView(True)
    return item


def peaks(x0: float, dx: float, y: np.ndarray, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """A series at x0, x0 + dx, … reduced to at most 2 × ``columns`` points: the min and max of each run of
    values that shares a pixel column, so the drawn line looks the same and costs the same at any length.
    NaNs are skipped unless a whole run is NaN (the gap then shows)."""
    n = len(y)
    per = max(1, -(-n // max(columns, 1)))  # values per column, rounded up
    if per <= 2:
        return x0 + dx * np.arange(n, dtype=np.float64), y
    whole = n - n % per
    with np.errstate(invalid="ignore"):
        block = y[:whole].reshape(-1, per)
        lo, hi = np.fmin.reduce(block, axis=1), np.fmax.reduce(block, axis=1)
    first = x0 + dx * per * np.arange(len(lo), dtype=np.float64)
    xs = np.stack([first, first + dx * (per - 1)], axis=1).ravel()
    ys = np.stack([lo, hi], axis=1).ravel()
    if whole < n:  # the newest values, not yet a full column, as they are
        xs = np.concatenate([xs, x0 + dx * np.arange(whole, n, dtype=np.float64)])
        ys = np.concatenate([ys, y[whole:]])
    return xs, ys


def peaks_xy(x: np.ndarray, y: np.ndarray, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """Like `peaks`, for increasing but unevenly spaced x (probe steps): the min and max of the values in each
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
