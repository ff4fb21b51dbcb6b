"""Loss and accuracy curves: per-epoch train/test lines over every step's loss as a faint line."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Slot
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from engine import Snapshot

from ..controller import Controller
from ..export import export_plot_png, export_widget
from ..history import RunHistory
from .base import LiveView
from .plotting import StableRange, finite_max, finite_min, grow, log_range, long_curve, peaks, prepare_plot

TRAIN_PEN = pg.mkPen((8, 119, 189), width=2)
TEST_PEN = pg.mkPen((245, 147, 34), width=2)
# Opaque: grey at 27 % over white, pre-mixed (translucent pens over thousands of segments are what Qt draws
# slowest).
STEP_PEN = pg.mkPen((218, 218, 218), width=1)


class CurvesView(LiveView):
    """Two linked plots, loss above accuracy, x in epochs; hovering shows the epoch's values."""

    uses_history = True

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(controller, parent)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("w")
        self.loss_plot = self.graphics.addPlot(row=0, col=0)
        self.acc_plot = self.graphics.addPlot(row=1, col=0)
        self.acc_plot.setXLink(self.loss_plot)
        self.loss_plot.setLabel("left", "loss")
        self.acc_plot.setLabel("left", "accuracy")
        self.acc_plot.setLabel("bottom", "epoch")
        for p in (self.loss_plot, self.acc_plot):
            p.showGrid(x=True, y=True, alpha=0.15)
            prepare_plot(p)
        self.loss_range = StableRange(self.loss_plot)
        self.acc_plot.setYRange(0, 1, padding=0.02)
        self._xmax: float | None = None
        self._epochs_drawn: tuple[int, int, bool] = (-1, -1, False)
        self._ymax: float | None = None
        self.loss_plot.addLegend(offset=(-10, 10))
        self.acc_plot.addLegend(offset=(-10, -10))
        self.step_curve = long_curve(self.loss_plot, STEP_PEN, "loss per step")
        self.folded_curve = long_curve(self.loss_plot, STEP_PEN)  # a long run's oldest steps, as (min, max) ranges
        self._folded_drawn = -1
        self.train_curve = long_curve(self.loss_plot, TRAIN_PEN, "train")
        self.test_curve = long_curve(self.loss_plot, TEST_PEN, "test")
        self.train_acc = long_curve(self.acc_plot, TRAIN_PEN, "train")
        self.test_acc = long_curve(self.acc_plot, TEST_PEN, "test")
        self.cursor = pg.InfiniteLine(angle=90, pen=pg.mkPen((0, 0, 0, 90)))
        self.cursor.setVisible(False)
        self.loss_plot.addItem(self.cursor, ignoreBounds=True)
        self.log_y = QCheckBox("Log scale")
        self.log_y.setToolTip("Show the loss on a logarithmic axis (small losses stay readable)")
        self.log_y.toggled.connect(self._on_log)
        self.readout = QLabel("Hover over the curves to read an epoch's values")
        self.readout.setToolTip("Values at the epoch under the mouse")
        bar = QHBoxLayout()
        bar.addWidget(self.log_y)
        bar.addWidget(self.readout, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.graphics, 1)
        layout.addLayout(bar)
        self.graphics.scene().sigMouseMoved.connect(self._on_mouse)

    def toggles(self) -> dict[str, QCheckBox]:
        return {"log_y": self.log_y}

    @Slot(bool)
    def _on_log(self, on: bool) -> None:
        self.loss_plot.setLogMode(y=on)
        self.loss_range.reset()
        self._ymax = None
        self.refresh()

    def draw(self, snap: Snapshot | None) -> None:
        h: RunHistory = self.controller.history
        if h.step_loss.total == 0:
            self._xmax = self._ymax = None  # a new run: the axes start small again
            self._folded_drawn = -1
        # Reduced to min/max per pixel column here, in numpy: the plot then never handles more points than it
        # has columns, however long the run (pyqtgraph's own downsampling still walks every point each frame).
        columns = max(256, int(self.loss_plot.vb.width()))
        spe = h.steps_per_epoch
        self.step_curve.setData(*peaks((h.step_loss.start + 1) / spe, 1 / spe, h.step_loss.view(), columns))
        if len(h.step_loss.folded) != self._folded_drawn:  # a long run's folded (min, max) part changes rarely
            self._folded_drawn = len(h.step_loss.folded)
            fx, fy = h.step_loss.folded_xy()
            self.folded_curve.setData((fx + 1) / h.steps_per_epoch, fy)
        classify = self.controller.run_info.task == "classification"
        self.acc_plot.setVisible(classify)
        key = (h.run_id, h.n_epochs, classify)
        if key != self._epochs_drawn:  # epoch curves change only when an epoch ends
            self._epochs_drawn = key
            # Reduced per pixel column too: thousands of epochs drawn with wide antialiased pens took 30 ms a
            # frame at 5,000 epochs (Qt strokes every segment), starving training as a run went on.
            first = h.epochs["epoch_train_loss"].start + 1.0
            for item, key in ((self.train_curve, "epoch_train_loss"), (self.test_curve, "epoch_test_loss"),
                              (self.train_acc, "epoch_train_accuracy"), (self.test_acc, "epoch_test_accuracy")):
                if classify or "loss" in key:
                    item.setData(*peaks(first, 1.0, h.epochs[key].view(), columns))
        self._update_ranges(h)

    def _update_ranges(self, h: RunHistory) -> None:
        """Move the axes only when the curves outgrow them (axes are the costly part of a frame)."""
        steps = h.step_loss.view()
        self._xmax = grow(self._xmax, max(1.0, h.step_loss.total / h.steps_per_epoch))
        train, test = h.epochs["epoch_train_loss"].view(), h.epochs["epoch_test_loss"].view()
        curves = (train, test) if h.n_epochs else (steps,)
        if self.log_y.isChecked():
            y = log_range(finite_min(*curves), finite_max(*curves))
        else:
            self._ymax = grow(self._ymax, finite_max(*curves))
            y = (0.0, self._ymax)
        self.loss_range.set(x=(0.0, self._xmax), y=y)

    def values_at(self, x: float) -> str:
        """The readout for epoch position `x` (the nearest recorded epoch)."""
        h = self.controller.history
        if h.n_epochs == 0:
            return "No epoch finished yet"
        e = h.epochs
        first = e["epoch_train_loss"].start + 1  # epochs before it are folded into (min, max) pairs
        epoch = int(np.clip(round(x), 1, h.n_epochs))
        if epoch < first:
            return "No exact value kept for that epoch (a long run keeps its oldest epochs as ranges)"
        i = epoch - first
        text = (f"epoch {epoch}: train loss {e['epoch_train_loss'].view()[i]:.4g}, "
                f"test loss {e['epoch_test_loss'].view()[i]:.4g}")
        acc = e["epoch_train_accuracy"].view()[i]
        if np.isfinite(acc):
            text += f", train accuracy {acc:.1%}, test accuracy {e['epoch_test_accuracy'].view()[i]:.1%}"
        return text

    @Slot(object)
    def _on_mouse(self, pos: QPointF) -> None:
        for plot in (self.loss_plot, self.acc_plot):
            if plot.isVisible() and plot.sceneBoundingRect().contains(pos):
                x = plot.vb.mapSceneToView(pos).x()
                self.cursor.setPos(round(x))
                self.cursor.setVisible(True)
                self.readout.setText(self.values_at(x))
                return
        self.cursor.setVisible(False)

    def export(self, fmt: str, path: Path) -> None:
        if fmt == "png":
            export_plot_png(self.graphics.scene(), path)
        else:
            export_widget(self.graphics, fmt, path)
