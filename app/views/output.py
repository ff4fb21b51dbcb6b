"""The output view: the decision boundary (or regression surface) as a heatmap under the data points, or, while
a neuron is hovered in the Network view, that neuron's output over the same plane."""
from __future__ import annotations

import functools
from collections.abc import Hashable
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Slot
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QCheckBox, QGraphicsItem, QHBoxLayout, QVBoxLayout, QWidget

from engine import Snapshot
from engine.datasets.toy2d import FEATURE_LABELS

from ..colors import label_colors, neuron_rgb, output_rgb
from ..controller import Controller, RunInfo
from ..export import export_plot_png, export_widget
from .base import LiveView
from .plotting import PlotWidget, prepare_plot

# The plot's fixed chrome around its square plane, in pixels: fixed axis sizes keep it constant, so `_Square` can
# size the widget for a square plane without waiting for pyqtgraph's layout. The top and right margins hold the
# halves of the end tick labels ("6") that stick out past the plane.
AXIS_W, AXIS_H = 38, 36
MARGINS = (2, 9, 12, 2)  # left, top, right, bottom
CHROME_W = AXIS_W + MARGINS[0] + MARGINS[2]
CHROME_H = AXIS_H + MARGINS[1] + MARGINS[3]
OUTLINE = (40, 40, 40)  # points' outline: dark, so a point reads on either class's background


@functools.lru_cache(maxsize=8)
def _interpolation(g: int, n: int) -> np.ndarray:
    """(n, g) weights taking g samples that span a range to n samples spanning the same range, linearly."""
    pos = np.linspace(0.0, g - 1.0, n)
    left = np.minimum(pos.astype(np.intp), g - 2)
    frac = (pos - left).astype(np.float32)
    m = np.zeros((n, g), dtype=np.float32)
    m[np.arange(n), left] = 1 - frac
    m[np.arange(n), left + 1] += frac
    return m


def resample(values: np.ndarray, n: int) -> np.ndarray:
    """A (g, g) map over the plane as (n, n), bilinear: a neuron's coarse map (24²) drawn at the boundary's
    resolution reads as the smooth function it is, not as blocks. NaN counts as 0 (it would spread)."""
    m = _interpolation(values.shape[0], n)
    return m @ np.nan_to_num(values.astype(np.float32)) @ m.T


class _Square(QWidget):
    """Holds the plot sized so its plane is square, centred: a locked aspect ratio would instead widen the plot
    past the data and leave empty bands inside the axes."""

    def __init__(self, plot: pg.PlotWidget) -> None:
        super().__init__()
        self.plot = plot
        plot.setParent(self)
        self.setMinimumSize(CHROME_W + 80, CHROME_H + 80)

    def resizeEvent(self, event: QResizeEvent) -> None:
        side = max(1, min(self.width() - CHROME_W, self.height() - CHROME_H))
        w, h = side + CHROME_W, side + CHROME_H
        self.plot.setGeometry((self.width() - w) // 2, (self.height() - h) // 2, w, h)


class OutputView(LiveView):
    """ImageItem for the output (or a focused neuron) on the probe grid, two ScatterPlotItems for train and test
    points: full colour, dark outline, over the lightened map."""

    probes = frozenset({"boundary"})

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(controller, parent)
        self.plot = PlotWidget(background="w")
        item = self.plot.getPlotItem()
        prepare_plot(item)
        item.layout.setContentsMargins(*MARGINS)
        left, bottom = item.getAxis("left"), item.getAxis("bottom")
        left.setLabel("x₂")
        bottom.setLabel("x₁")
        left.setWidth(AXIS_W)
        bottom.setHeight(AXIS_H)
        bottom.setStyle(hideOverlappingLabels=MARGINS[2])  # the last label may use the right margin
        self.image = pg.ImageItem()
        self.plot.addItem(self.image)
        self.train_points = pg.ScatterPlotItem(size=7, pen=pg.mkPen(OUTLINE, width=1))
        self.test_points = pg.ScatterPlotItem(size=10, symbol="d", pen=pg.mkPen("k", width=1))
        for points in (self.train_points, self.test_points):
            # the points stay put while the map under them changes: Qt copies their cached pixels over each
            # new map instead of calling ScatterPlotItem's Python paint (which holds the GIL) every frame
            points.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
            self.plot.addItem(points)
        self.caption = pg.TextItem(color=(30, 30, 30), fill=pg.mkBrush(255, 255, 255, 215), anchor=(0, 0))
        self.caption.setZValue(10)
        self.plot.addItem(self.caption, ignoreBounds=True)
        self.caption.hide()
        self.show_test = QCheckBox("Show test data")
        self.show_test.setToolTip("Draw the held-out test points too: diamonds with a black outline, where the "
                                  "training points are circles")
        self.discretize = QCheckBox("Discretize output")
        self.discretize.setToolTip("Colour each point of the plane by the predicted class only, without confidence")
        self.show_test.toggled.connect(self._on_show_test)
        self.discretize.toggled.connect(self.refresh)
        controller.focus_changed.connect(self.redraw)  # at once, also while paused: no new frame would come
        opts = QHBoxLayout()
        opts.addWidget(self.show_test)
        opts.addWidget(self.discretize)
        opts.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(_Square(self.plot), 1)
        layout.addLayout(opts)
        self.test_points.setVisible(False)
        self.rgb: np.ndarray | None = None

    def toggles(self) -> dict[str, QCheckBox]:
        return {"show_test": self.show_test, "discretize": self.discretize}

    def on_run(self, run: RunInfo) -> None:
        data = run.data
        if data.points_train is None or data.points_test is None:
            return
        for item, pts, y in ((self.train_points, data.points_train, data.y_train),
                             (self.test_points, data.points_test, data.y_test)):
            cols = label_colors(y, run.task)
            palette = {c: pg.mkBrush(*c) for c in {tuple(int(v) for v in c) for c in cols}}  # a few shared brushes
            brushes = [palette[tuple(int(v) for v in c)] for c in cols]
            item.setData(pos=np.ascontiguousarray(pts, dtype=np.float64), brush=brushes)

    @Slot(bool)
    def _on_show_test(self, on: bool) -> None:
        self.test_points.setVisible(on)

    def focused_map(self, snap: Snapshot | None) -> np.ndarray | None:
        """The focused neuron's (g, g) map when the snapshot has it (the Network view asks for the neurons
        probe while it shows), else None: the output is drawn."""
        focus = self.controller.focus
        if focus is None or snap is None or "neurons" not in snap.probes:
            return None
        node, unit = focus
        maps = snap.probes["neurons"].arrays.get(node)
        return maps[unit] if maps is not None and 0 <= unit < len(maps) else None

    def frame_key(self, snap: Snapshot | None) -> Hashable:
        """The output's key, and while a neuron's map is drawn instead, which neuron and its probe's step."""
        key = super().frame_key(snap)
        if self.focused_map(snap) is None:
            return key
        assert snap is not None
        return key, self.controller.focus, snap.probes["neurons"].serial

    def draw(self, snap: Snapshot | None) -> None:
        assert snap is not None and self.run is not None
        probe = snap.probes["boundary"]
        output = probe.arrays["output"]
        discretize = self.discretize.isChecked()
        neuron = self.focused_map(snap)
        if neuron is None:
            rgb = output_rgb(output, self.run.output_activation, discretize)
        else:
            rgb = neuron_rgb(resample(neuron, output.shape[-1]), discretize)
        self.rgb = np.ascontiguousarray(rgb)
        self.image.setImage(self.rgb, autoLevels=False, levels=(0, 255))
        lo, hi = (float(v) for v in probe.arrays["extent"])
        self.image.setRect(QRectF(lo, lo, hi - lo, hi - lo))
        self.plot.setRange(xRange=(lo, hi), yRange=(lo, hi), padding=0)
        self._show_caption(lo, hi, neuron is not None)

    def _show_caption(self, lo: float, hi: float, on: bool) -> None:
        """Name the neuron drawn in the plane's top-left corner; the text is set only when the focus changes."""
        self.caption.setVisible(on)
        if not on:
            return
        assert self.controller.focus is not None and self.run is not None
        node, unit = self.controller.focus
        features = getattr(self.run.dataset, "features", ())
        if self.run.nodes[node].op == "input" and unit < len(features):  # a feature hovered: name it
            what = f"feature {FEATURE_LABELS.get(features[unit], features[unit])}"
        else:
            what = f"neuron {unit + 1} of {node}"
        text = f"{what} — hover away for the output"
        if self.caption.toPlainText() != text:
            self.caption.setText(text)
        self.caption.setPos(lo, hi)

    def export(self, fmt: str, path: Path) -> None:
        if fmt == "png":
            export_plot_png(self.plot.getPlotItem(), path)
        else:
            export_widget(self.plot, fmt, path)
