"""The output view: the decision boundary (or regression surface) as a heatmap under the data points."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Slot
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QVBoxLayout, QWidget

from engine.datasets import Dataset
from engine.head import output_activation

from ..colors import label_colors, output_rgb
from ..controller import Controller
from .plotting import prepare_plot


class OutputView(QWidget):
    """ImageItem for the output on the probe grid, two ScatterPlotItems for train and test points."""

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
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
        self.show_test.toggled.connect(self._on_option)
        self.discretize.toggled.connect(self._on_option)
        opts = QHBoxLayout()
        opts.addWidget(self.show_test)
        opts.addWidget(self.discretize)
        opts.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.plot, 1)
        layout.addLayout(opts)
        self.rgb: np.ndarray | None = None
        self._probe_step = -1
        self._data: Dataset | None = None
        controller.frame.connect(self._on_frame)
        controller.spec_changed.connect(self._on_spec)
        self._on_spec()
        self._on_frame()  # the controller may have drawn its first frame before this view existed

    @Slot()
    def _on_spec(self) -> None:
        data = self.controller.trainer.data
        if data is self._data:
            return
        self._data = data
        task = self.controller.spec.dataset.task
        for item, pts, y in ((self.train_points, data.points_train, data.y_train),
                             (self.test_points, data.points_test, data.y_test)):
            cols = label_colors(y, task)
            palette = {c: pg.mkBrush(*c) for c in {tuple(int(v) for v in c) for c in cols}}  # a few shared brushes
            brushes = [palette[tuple(int(v) for v in c)] for c in cols]
            item.setData(pos=np.ascontiguousarray(pts, dtype=np.float64), brush=brushes)
        self.test_points.setVisible(self.show_test.isChecked())
        self._probe_step = -1

    @Slot()
    def _on_option(self) -> None:
        self.test_points.setVisible(self.show_test.isChecked())
        self._probe_step = -1
        self._on_frame()

    @Slot()
    def _on_frame(self) -> None:
        snap = self.controller.snapshot
        if snap is None or "boundary" not in snap.probes or not self.isVisible() and self.rgb is not None:
            return
        probe = snap.probes["boundary"]
        if probe.step == self._probe_step and self.rgb is not None:
            return
        self._on_spec()
        self._probe_step = probe.step
        act = output_activation(self.controller.spec)
        self.rgb = np.ascontiguousarray(output_rgb(probe.arrays["output"], act, self.discretize.isChecked()))
        self.image.setImage(self.rgb, autoLevels=False, levels=(0, 255))
        lo, hi = (float(v) for v in probe.arrays["extent"])
        self.image.setRect(QRectF(lo, lo, hi - lo, hi - lo))
        self.plot.setRange(xRange=(lo, hi), yRange=(lo, hi), padding=0)

    def showEvent(self, event: QShowEvent) -> None:
        """Hidden views skip frames; catch up when shown."""
        super().showEvent(event)
        self._probe_step = -1
        self._on_frame()
