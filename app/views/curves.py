"""Loss and accuracy curves: per-epoch train/validation/test lines over every step's loss as a faint line."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from engine import Snapshot

from ..controller import Controller
from ..export import export_plots
from ..history import RunHistory
from .base import LiveView, text_label
from .plotting import (
    ColumnTrace,
    EpochHover,
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
VAL_PEN = pg.mkPen((76, 175, 80), width=2, style=Qt.PenStyle.DashLine)  # image sets' validation set
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
        # every step's, train, test and validation losses
        self._spans = (RunningSpan(), RunningSpan(), RunningSpan(), RunningSpan())
        # No legends over the curves: the numbers above them name the colours (a legend box hid the newest
        # epochs of a long run)
        self.step_curve = ColumnTrace(self.loss_plot, STEP_PEN)
        self.folded_curve = cached_curve(self.loss_plot, STEP_PEN)  # a long run's oldest steps, as (min, max) pairs
        self._folded_drawn: tuple[int, bool] | None = None
        self.train_curve = ColumnTrace(self.loss_plot, TRAIN_PEN)
        self.test_curve = ColumnTrace(self.loss_plot, TEST_PEN)
        self.train_acc = ColumnTrace(self.acc_plot, TRAIN_PEN)
        self.test_acc = ColumnTrace(self.acc_plot, TEST_PEN)
        self.val_curve = ColumnTrace(self.loss_plot, VAL_PEN)
        self.val_acc = ColumnTrace(self.acc_plot, VAL_PEN)
        self.log_y = QCheckBox("Log scale")
        self.log_y.setToolTip("Show the loss on a logarithmic axis (small losses stay readable)")
        self.log_y.toggled.connect(self._on_log)
        self.readout = QLabel("Hover over the curves to read an epoch's values")
        self.readout.setToolTip("Values at the epoch under the mouse")
        # its text changes every epoch: never let that resize the dock (and every view beside it); two lines
        # in a narrow dock rather than cut off
        self.numbers = text_label(rich=True, wrap=True)
        self.numbers.setToolTip("The last finished epoch's loss (and accuracy) on the training, validation (image "
                                "sets: early stopping watches it) and test data; grey is every minibatch step's "
                                "loss. Training: a full pass after the epoch for 2-D sets, as TensorFlow "
                                "Playground measures it; for image sets the mean over the epoch's own steps, as "
                                "Keras reports it (in training mode, so it can sit above the validation loss)")
        bar = QHBoxLayout()
        bar.addWidget(self.log_y)
        bar.addWidget(self.readout, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.numbers)
        layout.addWidget(self.graphics, 1)
        layout.addLayout(bar)
        self.hover = EpochHover(self.graphics, [self.loss_plot, self.acc_plot], self.readout, self.values_at)

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
        classify = self.controller.run_info.task in ("classification", "sequence")  # sequence: per token
        self.acc_plot.setVisible(classify)
        per_epoch = math.ceil(self._xmax / columns)
        val = self.controller.run_info.has_validation
        for trace, key in ((self.train_curve, "epoch_train_loss"), (self.test_curve, "epoch_test_loss"),
                           (self.train_acc, "epoch_train_accuracy"), (self.test_acc, "epoch_test_accuracy"),
                           (self.val_curve, "epoch_val_loss"), (self.val_acc, "epoch_val_accuracy")):
            if (classify or "loss" in key) and (val or "_val_" not in key):
                b = h.epochs[key]
                trace.show(b.start, b.view(), 1.0, 1.0, per_epoch, log=log and "loss" in key)
            elif trace.start != -1:
                trace.clear()  # a set this run lacks (validation after an image run): nothing left drawn
        self._show_numbers(h, classify)

    def _update_ranges(self, h: RunHistory) -> None:
        """Move the axes only when the curves outgrow them (axes are the costly part of a frame). Every loss
        drawn stays inside the plot, each step's included; the spans are kept up to date, not recomputed."""
        self._xmax = grow(self._xmax, max(1.0, h.step_loss.total / h.steps_per_epoch))
        spans = [span.update(h.run_id, b.start, b.view()) for span, b in (
            (self._spans[0], h.step_loss), (self._spans[1], h.epochs["epoch_train_loss"]),
            (self._spans[2], h.epochs["epoch_test_loss"]), (self._spans[3], h.epochs["epoch_val_loss"]))]
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
        sets = [("train", "Train", "━", TRAIN_PEN), ("test", "Test", "━", TEST_PEN)]
        if self.controller.run_info.has_validation:
            sets.insert(1, ("val", "Validation", "╍", VAL_PEN))
        parts = []
        for key, title, line, pen in sets:
            if h.n_epochs == 0:
                loss, acc = "–", ""
            else:
                loss = loss_text(float(h.epochs[f"epoch_{key}_loss"].view()[-1]))
                acc = f", <b>{float(h.epochs[f'epoch_{key}_accuracy'].view()[-1]):.1%}</b>" if classify else ""
            parts.append(f"<span style='color:{pen.color().name()}'>{line} {title}</span> <b>{loss}</b>{acc}")
        text = " · ".join(parts) + " <span style='color:#a0a0a0'>(loss" + (", accuracy" if classify else "") + \
            ")</span> · <span style='color:#a0a0a0'>━ each step</span>"
        if text != self.numbers.text():
            self.numbers.setText(text)

    def values_at(self, x: float) -> str:
        """The readout for epoch position `x` (the nearest recorded epoch)."""
        h = self.controller.history
        at = h.epoch_at(x)
        if isinstance(at, str):
            return at
        epoch, i = at
        e = h.epochs
        sets = ["train", "val", "test"] if self.controller.run_info.has_validation else ["train", "test"]
        names = {"train": "train", "val": "validation", "test": "test"}
        text = f"epoch {epoch}: " + ", ".join(f"{names[k]} loss {e[f'epoch_{k}_loss'].view()[i]:.4g}" for k in sets)
        if np.isfinite(e["epoch_train_accuracy"].view()[i]):
            text += ", " + ", ".join(f"{names[k]} accuracy {e[f'epoch_{k}_accuracy'].view()[i]:.1%}" for k in sets)
        return text


    def export(self, fmt: str, path: Path) -> None:
        export_plots(self.graphics, fmt, path)
