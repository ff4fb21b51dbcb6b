"""The output view: the decision boundary (or regression surface) as a heatmap under the data points."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Slot
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QVBoxLayout, QWidget

from engine import Snapshot

from ..colors import label_colors, output_rgb
from ..controller import Controller, RunInfo
from ..export import export_plot_png, export_widget
from .base import LiveView
from .plotting import prepare_plot


class OutputView(LiveView):
    """ImageItem for the output on the probe grid, two ScatterPlotItems for train and test points."""

    probes = frozenset({"boundary"})

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(controller, parent)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setAspectLocked(True)
        prepare_plot(self.plot.getPlotItem())
        self.plot.getPlotItem().getAxis("left").setLabel("x₂")
        self.plot.getPlotItem().getAxis("bottom").setLabel("x₁")
        self.image = pg.ImageItem()
        self.plot.addItem(self.image)
        self.train_points = pg.ScatterPlotItem(size=6, pen=pg.mkPen("w", width=1))
        self.test_points = pg.ScatterPlotItem(size=6, pen=pg.mkPen("k", width=1))
        self.plot.addItem(self.train_points)
        self.plot.addItem(self.test_points)
        self.show_test = QCheckBox("Show test data")
        self.show_test.setToolTip("Draw the held-out test points (black outline) over the training points (white)")
        self.discretize = QCheckBox("Discretize output")
        self.discretize.setToolTip("Colour each point of the plane by the predicted class only, without confidence")
        self.show_test.toggled.connect(self._on_show_test)
        self.discretize.toggled.connect(self.refresh)
        opts = QHBoxLayout()
        opts.addWidget(self.show_test)
        opts.addWidget(self.discretize)
        opts.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.plot, 1)
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

    def draw(self, snap: Snapshot | None) -> None:
        assert snap is not None and self.run is not None
        probe = snap.probes["boundary"]
        self.rgb = np.ascontiguousarray(output_rgb(probe.arrays["output"], self.run.output_activation,
                                                   self.discretize.isChecked()))
        self.image.setImage(self.rgb, autoLevels=False, levels=(0, 255))
        lo, hi = (float(v) for v in probe.arrays["extent"])
        self.image.setRect(QRectF(lo, lo, hi - lo, hi - lo))
        self.plot.setRange(xRange=(lo, hi), yRange=(lo, hi), padding=0)

    def export(self, fmt: str, path: Path) -> None:
        if fmt == "png":
            export_plot_png(self.plot.getPlotItem(), path)
        else:
            export_widget(self.plot, fmt, path)
