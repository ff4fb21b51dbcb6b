"""Loss and accuracy curves: per-epoch train/test lines over every step's loss as a faint line."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Slot
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from engine import Snapshot

from ..controller import Controller
from ..export import export_plot_png, export_widget
from ..history import RunHistory
from .base import LiveView
from .plotting import (
    ColumnTrace,
    GraphicsLayoutWidget,
    RunningSpan,
    StableRange,
    cached_curve,
    finite_max,
    finite_min,
    grow,
    log10,
    log_range,
    prepare_plot,
)

TRAIN_PEN = pg.mkPen((8, 119, 189), width=2)
TEST_PEN = pg.mkPen((245, 147, 34), width=2)
# Opaque: grey at 27 % over white, pre-mixed (translucent pens over thousands of segments are what Qt draws
# slowest).
STEP_PEN = pg.mkPen((218, 218, 218), width=1)


def loss_text(v: float) -> str:
    """A loss to four decimals, or to three significant digits once it is too small for that to show it."""
    return f"{v:.4f}" if not 0 < abs(v) < 1e-3 else f"{v:.3g}"


class CurvesView(LiveView):
    """Two linked plots, loss above accuracy, x in epochs; hovering shows the epoch's values."""

    uses_history = True

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(controller, parent)
        self.graphics = GraphicsLayoutWidget()
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
        # 0 to 1 with room above, so the top tick's label "1.0" is drawn (pyqtgraph drops a label that would
        # stick out of its axis)
        self.acc_plot.setYRange(0, 1.1, padding=0)
        self.acc_plot.getAxis("left").setTicks([[(v / 5, f"{v / 5:.1f}") for v in range(6)]])
        for p in (self.loss_plot, self.acc_plot):
            p.getAxis("left").setStyle(hideOverlappingLabels=False)  # the top label may reach into the margin
        self._xmax: float | None = None
        self._epochs_drawn: tuple[int, int, bool] = (-1, -1, False)
        self._ymax: float | None = None
        self._spans = (RunningSpan(), RunningSpan(), RunningSpan())  # every step's, train and test losses
        # No legends over the curves: the numbers above them name the colours (a legend box hid the newest
        # epochs of a long run)
        self.step_curve = ColumnTrace(self.loss_plot, STEP_PEN)
        self.folded_curve = cached_curve(self.loss_plot, STEP_PEN)  # a long run's oldest steps, as (min, max) pairs
        self._folded_drawn: tuple[int, bool] | None = None
        self.train_curve = ColumnTrace(self.loss_plot, TRAIN_PEN)
        self.test_curve = ColumnTrace(self.loss_plot, TEST_PEN)
        self.train_acc = ColumnTrace(self.acc_plot, TRAIN_PEN)
        self.test_acc = ColumnTrace(self.acc_plot, TEST_PEN)
        self.cursor = pg.InfiniteLine(angle=90, pen=pg.mkPen((0, 0, 0, 90)))
        self.cursor.setVisible(False)
        self.loss_plot.addItem(self.cursor, ignoreBounds=True)
        self.log_y = QCheckBox("Log scale")
        self.log_y.setToolTip("Show the loss on a logarithmic axis (small losses stay readable)")
        self.log_y.toggled.connect(self._on_log)
        self.readout = QLabel("Hover over the curves to read an epoch's values")
        self.readout.setToolTip("Values at the epoch under the mouse")
        self.numbers = QLabel()
        self.numbers.setToolTip("The last finished epoch's loss (and accuracy: train / test) on the training and "
                                "the test data; grey is every minibatch step's loss")
        self.numbers.setTextFormat(Qt.TextFormat.RichText)
        # its text changes every epoch: never let that resize the dock (and every view beside it)
        self.numbers.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.numbers.setWordWrap(True)  # two lines in a narrow dock rather than cut off
        bar = QHBoxLayout()
        bar.addWidget(self.log_y)
        bar.addWidget(self.readout, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.numbers)
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
            self._folded_drawn = None
        self._update_ranges(h)
        # One (min, max) pair per pixel column of the x range, kept and extended (see ColumnTrace): the plot
        # never handles more points than it has columns, and a frame repaints only the curves' newest strip.
        columns = max(64, int(self.loss_plot.vb.width()))
        spe = h.steps_per_epoch
        assert self._xmax is not None
        per_step = math.ceil(self._xmax * spe / columns)
        log = self.log_y.isChecked()
        self.step_curve.show(h.step_loss.start, h.step_loss.view(), 1 / spe, 1 / spe, per_step, log=log)
        if (len(h.step_loss.folded), log) != self._folded_drawn:  # a long run's folded part changes rarely
            self._folded_drawn = (len(h.step_loss.folded), log)
            fx, fy = h.step_loss.folded_xy()
            self.folded_curve.setData((fx + 1) / spe, log10(fy) if log else fy)
        classify = self.controller.run_info.task == "classification"
        self.acc_plot.setVisible(classify)
        per_epoch = math.ceil(self._xmax / columns)
        for trace, key in ((self.train_curve, "epoch_train_loss"), (self.test_curve, "epoch_test_loss"),
                           (self.train_acc, "epoch_train_accuracy"), (self.test_acc, "epoch_test_accuracy")):
            if classify or "loss" in key:
                b = h.epochs[key]
                trace.show(b.start, b.view(), 1.0, 1.0, per_epoch, log=log and "loss" in key)
        self._show_numbers(h, classify)

    def _update_ranges(self, h: RunHistory) -> None:
        """Move the axes only when the curves outgrow them (axes are the costly part of a frame). Every loss
        drawn stays inside the plot, each step's included; the spans are kept up to date, not recomputed."""
        self._xmax = grow(self._xmax, max(1.0, h.step_loss.total / h.steps_per_epoch))
        spans = [span.update(h.run_id, b.start, b.view()) for span, b in (
            (self._spans[0], h.step_loss), (self._spans[1], h.epochs["epoch_train_loss"]),
            (self._spans[2], h.epochs["epoch_test_loss"]))]
        curves = (np.array([v for span in spans for v in span]),)
        if self.log_y.isChecked():
            y = log_range(finite_min(*curves), finite_max(*curves))
        else:
            self._ymax = grow(self._ymax, finite_max(*curves))
            y = (0.0, self._ymax)
        self.loss_range.set(x=(0.0, self._xmax), y=y)

    def _show_numbers(self, h: RunHistory, classify: bool) -> None:
        """The latest epoch's losses (and accuracies) as numbers above the plots, as TensorFlow Playground shows
        them (a curve's end is hard to read to three digits); their names in the curves' colours are the key."""
        if h.n_epochs == 0:
            tr = te = "–"
            acc = ""
        else:
            e = {k: float(b.view()[-1]) for k, b in h.epochs.items()}
            tr, te = loss_text(e["epoch_train_loss"]), loss_text(e["epoch_test_loss"])
            acc = (f" · accuracy <b>{e['epoch_train_accuracy']:.1%}</b> / <b>{e['epoch_test_accuracy']:.1%}</b>"
                   if classify else "")
        text = (f"<span style='color:{TRAIN_PEN.color().name()}'>━ Train</span> loss <b>{tr}</b> · "
                f"<span style='color:{TEST_PEN.color().name()}'>━ Test</span> loss <b>{te}</b>{acc} · "
                f"<span style='color:#a0a0a0'>━ each step</span>")
        if text != self.numbers.text():
            self.numbers.setText(text)

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
