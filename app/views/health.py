"""Training health: per-layer gradient norms, dead-ReLU share and weight histograms."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QVBoxLayout, QWidget

from engine import Snapshot

from ..controller import Controller, RunInfo
from ..export import export_plot_png, export_widget
from .base import LiveView
from .plotting import StableRange, finite_max, finite_min, grow, log_range, peaks_xy, prepare_plot

HIST_BINS = 30


def layer_pen(i: int) -> pg.QtGui.QPen:
    return pg.mkPen(pg.intColor(i, hues=9, values=1, maxValue=200), width=2)


class HealthView(LiveView):
    """Curves per layer, keyed by node id; items are rebuilt only when the set of layers changes."""

    probes = frozenset({"grad_norms", "dead_units", "weights"})

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(controller, parent)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("w")
        self.grad_plot = self.graphics.addPlot(row=0, col=0, title="gradient norm per layer")
        self.dead_plot = self.graphics.addPlot(row=1, col=0, title="dead ReLU units (%), colours as above")
        self.hist_plot = self.graphics.addPlot(row=2, col=0, title="weight histogram per layer, colours as above")
        self.grad_plot.setLogMode(y=True)
        self.grad_plot.setLabel("bottom", "epoch")
        self.dead_plot.setLabel("bottom", "epoch")
        self.hist_plot.setLabel("bottom", "weight")
        self.hist_plot.setLabel("left", "count")
        for p in (self.grad_plot, self.dead_plot, self.hist_plot):
            p.showGrid(x=True, y=True, alpha=0.15)
            prepare_plot(p)
        # One legend for all three: a layer keeps its colour in every plot.
        self.legend = self.grad_plot.addLegend(offset=(-5, 5), labelTextSize="8pt", colCount=4)
        self.grad_range = StableRange(self.grad_plot)
        self.dead_range = StableRange(self.dead_plot)
        self.hist_range = StableRange(self.hist_plot)
        self._bounds: dict[str, float | None] = {"x": None, "w": None, "count": None}
        self.dead_note = pg.TextItem("no ReLU layers in this network", color=(110, 110, 110), anchor=(0.5, 0.5))
        self.dead_plot.addItem(self.dead_note, ignoreBounds=True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.graphics)
        self.grad_curves: dict[str, pg.PlotDataItem] = {}
        self.dead_curves: dict[str, pg.PlotDataItem] = {}
        self.hist_curves: dict[str, pg.PlotDataItem] = {}

    def _sync(self, plot: pg.PlotItem, curves: dict[str, pg.PlotDataItem], nodes: list[str], **kw: object) -> None:
        if list(curves) == nodes:
            return
        for item in curves.values():
            plot.removeItem(item)
        curves.clear()
        if plot is self.grad_plot:
            self.legend.clear()
        assert self.run is not None
        layers = self.run.order
        for node in nodes:
            name = node if plot is self.grad_plot else None
            curves[node] = plot.plot(pen=layer_pen(layers.index(node)), name=name, antialias=False, **kw)  # see long_curve

    def on_run(self, run: RunInfo) -> None:
        self._bounds = dict.fromkeys(self._bounds)  # a new run: the axes start small again

    def draw(self, snap: Snapshot | None) -> None:
        assert snap is not None and self.run is not None
        h = self.controller.history
        run = self.run
        grad_nodes = [n for n in run.order if run.nodes[n].n_params > 0]
        dead_nodes = list(snap.probes["dead_units"].arrays) if "dead_units" in snap.probes else []
        weight_arrays = snap.probes["weights"].arrays if "weights" in snap.probes else {}
        self._sync(self.grad_plot, self.grad_curves, grad_nodes)
        self._sync(self.dead_plot, self.dead_curves, dead_nodes)
        self._sync(self.hist_plot, self.hist_curves, [k for k in weight_arrays if not k.endswith(".bias")],
                   stepMode="center")
        x = h.probe_x()
        columns = max(256, int(self.grad_plot.vb.width()))  # never more points than pixel columns
        for node, item in self.grad_curves.items():
            item.setData(*peaks_xy(x, h.series(h.grad_norms, node), columns))
        for node, item in self.dead_curves.items():
            item.setData(*peaks_xy(x, 100 * h.series(h.dead, node), columns))
        self.dead_note.setVisible(not dead_nodes)
        b = self._bounds
        b["x"] = grow(b["x"], max(1.0, float(x[-1]) if len(x) else 1.0))
        self.dead_note.setPos(b["x"] / 2, 50)  # centred however far the epoch axis has grown
        grads = [h.series(h.grad_norms, n) for n in self.grad_curves]
        self.grad_range.set(x=(0.0, b["x"]), y=log_range(finite_min(*grads), finite_max(*grads)))
        self.dead_range.set(x=(0.0, b["x"]), y=(0.0, 100.0))
        weights = {n: weight_arrays[n].ravel() for n in self.hist_curves}
        b["w"] = grow(b["w"], max((float(np.nanmax(np.abs(w))) for w in weights.values() if w.size), default=1.0))
        top = 1.0
        for node, item in self.hist_curves.items():
            w = weights[node]
            counts, edges = np.histogram(w[np.isfinite(w)], bins=HIST_BINS, range=(-b["w"], b["w"]))
            item.setData(edges, counts.astype(np.float64))
            top = max(top, float(counts.max(initial=0)))
        b["count"] = grow(b["count"], top)
        self.hist_range.set(x=(-b["w"], b["w"]), y=(0.0, b["count"]))

    def export(self, fmt: str, path: Path) -> None:
        if fmt == "png":
            export_plot_png(self.graphics.scene(), path)
        else:
            export_widget(self.graphics, fmt, path)
