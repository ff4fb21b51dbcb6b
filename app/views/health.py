"""Training health: per-layer gradient norms, dead-ReLU share and weight histograms, one colour per layer."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from engine import Snapshot

from ..colors import LAYER_COLORS
from ..controller import Controller, RunInfo
from ..export import export_widget
from .base import LiveView
from .plotting import (
    PathCurve,
    PlotWidget,
    StableRange,
    cached_curve,
    finite_max,
    finite_min,
    grow,
    log_range,
    peaks_xy,
    prepare_plot,
)

HIST_BINS = 30
AXIS_W = 46  # one left-axis width for all three plots, so the two epoch axes line up


def layer_pen(i: int) -> pg.QtGui.QPen:
    """The i-th layer's pen: opaque (translucent pens are the costliest thing Qt strokes), 2 px."""
    return pg.mkPen(LAYER_COLORS[i % len(LAYER_COLORS)], width=2)


def _small(text: str, tip: str, style: str = "color: #333") -> QLabel:
    """A title or remark in the view's small type."""
    label = QLabel(text)
    label.setStyleSheet(f"font-size: 9pt; {style}")
    label.setToolTip(tip)
    return label


class HealthView(LiveView):
    """Three plots under one colour key. Titles and key are Qt labels outside the plots: they never cover a
    curve and cost nothing per frame. Curves are keyed by node id and rebuilt only when the set of layers
    changes."""

    probes = frozenset({"grad_norms", "dead_units", "weights"})

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(controller, parent)
        self.legend = _small("", "Each layer keeps its colour in all three plots")
        self.legend.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 2, 2, 2)
        layout.setSpacing(1)
        layout.addWidget(self.legend)
        self.grad_plot, _ = self._add_plot(
            layout, "Gradient norm per layer (log scale), by epoch",
            "The L2 norm of each layer's last gradient: vanishing (falls away) or exploding (climbs) gradients "
            "show here first")
        self.dead_plot, self.dead_section = self._add_plot(
            layout, "Dead ReLU units (%), by epoch",
            "The share of each ReLU layer's units that output 0 for every training sample: they no longer learn")
        self.dead_note = _small("Dead ReLU units: none to count, this network has no ReLU layers",
                                "Dead units are tracked for ReLU-like activations only", "color: #777; font-style: italic")
        self.dead_note.setWordWrap(True)
        self.dead_note.setContentsMargins(0, 4, 0, 0)
        self.dead_note.hide()
        layout.addWidget(self.dead_note)
        self.hist_plot, _ = self._add_plot(layout, "Weight histogram per layer (count by value)",
                                           "How each layer's weights are spread now (biases left out)")
        self.grad_plot.getAxis("left").setLogMode(False, True)  # ticks as 10ᵏ for the log10 values drawn
        # 0, 50 and 100 % labelled at any height. No horizontal grid: pyqtgraph keeps a gridded axis's labels
        # inside the view, which dropped the 0 and 100 at the ends.
        self.dead_plot.showGrid(x=True, y=False, alpha=0.15)
        self.dead_plot.getAxis("left").setTicks([[(v, f"{v:g}") for v in (0.0, 50.0, 100.0)]])
        self.grad_range = StableRange(self.grad_plot)
        self.dead_range = StableRange(self.dead_plot)
        self.hist_range = StableRange(self.hist_plot)
        self._bounds: dict[str, float | None] = {"x": None, "w": None, "count": None}
        self.colour: dict[str, int] = {}  # node → palette index, fixed for the run
        self.grad_curves: dict[str, PathCurve] = {}
        self.dead_curves: dict[str, PathCurve] = {}
        self.hist_curves: dict[str, PathCurve] = {}

    @staticmethod
    def _add_plot(layout: QVBoxLayout, title: str, tip: str) -> tuple[pg.PlotItem, tuple[QLabel, pg.PlotWidget]]:
        """A titled plot added to the layout: its PlotItem, and the title and widget (to hide them together)."""
        widget = PlotWidget(background="w")
        plot = widget.getPlotItem()
        plot.showGrid(x=True, y=True, alpha=0.15)
        prepare_plot(plot)
        plot.getAxis("left").setWidth(AXIS_W)
        plot.layout.setContentsMargins(0, 8, 10, 0)  # room for the end tick labels that stick out
        widget.setMinimumHeight(60)
        label = _small(title, tip)
        label.setContentsMargins(0, 4, 0, 0)  # a gap from the plot above
        layout.addWidget(label)
        layout.addWidget(widget, 1)
        return plot, (label, widget)

    def _sync(self, plot: pg.PlotItem, curves: dict[str, PathCurve], nodes: list[str]) -> bool:
        """Make one curve per node; True when the set changed."""
        if list(curves) == nodes:
            return False
        for item in curves.values():
            plot.removeItem(item)
        curves.clear()
        for node in nodes:
            # A PathCurve: painted by Qt without Python (see there); `draw` takes log10 itself and reduces to
            # pixel columns with `peaks_xy`.
            curves[node] = cached_curve(plot, layer_pen(self.colour[node]))
        return True

    def _show_legend(self) -> None:
        """One colour key for every layer drawn in any of the plots, in network order."""
        assert self.run is not None
        drawn = self.grad_curves.keys() | self.dead_curves.keys() | self.hist_curves.keys()
        self.legend.setText("&nbsp;&nbsp; ".join(
            f"<span style='color: rgb{LAYER_COLORS[self.colour[n] % len(LAYER_COLORS)]}'>━━</span>&nbsp;{n}"
            for n in self.run.order if n in drawn))

    def on_run(self, run: RunInfo) -> None:
        self._bounds = dict.fromkeys(self._bounds)  # a new run: the axes start small again
        # Layers with parameters take the palette's first colours, in network order; other nodes (a separate
        # ReLU node's dead units) follow.
        params = [n for n in run.order if run.nodes[n].n_params > 0]
        self.colour = {n: i for i, n in enumerate(params + [n for n in run.order if n not in params])}

    def draw(self, snap: Snapshot | None) -> None:
        assert snap is not None and self.run is not None
        h = self.controller.history
        run = self.run
        grad_nodes = [n for n in run.order if run.nodes[n].n_params > 0]
        dead_nodes = list(snap.probes["dead_units"].arrays) if "dead_units" in snap.probes else []
        weight_arrays = snap.probes["weights"].arrays if "weights" in snap.probes else {}
        changed = self._sync(self.grad_plot, self.grad_curves, grad_nodes)
        changed |= self._sync(self.dead_plot, self.dead_curves, dead_nodes)
        changed |= self._sync(self.hist_plot, self.hist_curves, [k for k in weight_arrays if not k.endswith(".bias")])
        if changed:
            self._show_legend()
        for w in self.dead_section:
            w.setVisible(bool(dead_nodes))
        self.dead_note.setVisible(not dead_nodes)
        x = h.probe_x()
        columns = max(256, int(self.grad_plot.vb.width()))  # never more points than pixel columns
        grads = {n: h.series(h.grad_norms, n) for n in self.grad_curves}
        with np.errstate(divide="ignore", invalid="ignore"):  # a zero norm is −inf: a gap in the line
            for node, item in self.grad_curves.items():
                xs, ys = peaks_xy(x, grads[node], columns)
                item.setData(xs, np.log10(ys))
        for node, item in self.dead_curves.items():
            item.setData(*peaks_xy(x, 100 * h.series(h.dead, node), columns))
        b = self._bounds
        b["x"] = grow(b["x"], max(1.0, float(x[-1]) if len(x) else 1.0))
        self.grad_range.set(x=(0.0, b["x"]), y=log_range(finite_min(*grads.values()), finite_max(*grads.values())))
        self.dead_range.set(x=(0.0, b["x"]), y=(0.0, 100.0))
        weights = {n: weight_arrays[n].ravel() for n in self.hist_curves}
        b["w"] = grow(b["w"], max((float(np.nanmax(np.abs(w))) for w in weights.values() if w.size), default=1.0))
        top = 1.0
        for node, item in self.hist_curves.items():
            w = weights[node]
            counts, edges = np.histogram(w[np.isfinite(w)], bins=HIST_BINS, range=(-b["w"], b["w"]))
            item.setData(edges, counts.astype(np.float64), stepMode="center")
            top = max(top, float(counts.max(initial=0)))
        b["count"] = grow(b["count"], top)
        self.hist_range.set(x=(-b["w"], b["w"]), y=(0.0, b["count"]))

    def export(self, fmt: str, path: Path) -> None:
        """The whole view, colour key included (the plots alone would not say which layer is which)."""
        export_widget(self, fmt, path)
