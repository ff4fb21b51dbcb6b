"""Sequence accuracy per epoch: the share of answer tokens right and the share of sequences right in every token
("exact"), on the test set at the training length and on the longer held-out sequences, with the training
tokens' accuracy. A network that has learned the rule keeps its accuracy on the longer inputs; one that learned
the training length's positions does not. A classifier of sequences has one answer per example: its curves are
the examples' accuracy, train, test and longer."""
from __future__ import annotations

import math
from collections.abc import Hashable
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGraphicsItem, QWidget

from engine import Snapshot

from ..controller import Controller, RunInfo
from ..export import export_plots
from ..history import RunHistory
from .base import DOCK_MIN_HEIGHT, LiveView, text_label
from .curves import TEST_PEN, TRAIN_PEN
from .plotting import ColumnTrace, EpochHover, GraphicsLayoutWidget, StableRange, grow, prepare_plot

LONG_COLOUR = (142, 36, 170)
DASH = Qt.PenStyle.DashLine
# (history key, name, pen, the key's line glyph): solid for tokens, dashed for whole sequences
SERIES = (
    ("epoch_train_accuracy", "train tokens", TRAIN_PEN, "━"),
    ("epoch_test_accuracy", "test tokens", TEST_PEN, "━"),
    ("epoch_test_sequence_accuracy", "test exact", pg.mkPen(TEST_PEN.color(), width=2, style=DASH), "╍"),
    ("epoch_long_accuracy", "longer tokens", pg.mkPen(LONG_COLOUR, width=2), "━"),
    ("epoch_long_sequence_accuracy", "longer exact", pg.mkPen(LONG_COLOUR, width=2, style=DASH), "╍"),
)
KEY_TIP = "The last finished epoch's accuracy. Tokens: the share of answer tokens right; exact: the share of " \
          "sequences right in every token. Test: held-out sequences at the training length; longer: the held-out " \
          "longer sequences (generalisation in length); train: the epoch's own steps, in training mode"
NO_LONG = "No longer held-out set, or this network cannot read one (a learned position table or a flatten fixes " \
          "its length): only the training length is scored."


class SequenceCurvesView(LiveView):
    """One plot, x in epochs, y the accuracies from 0 to 1; hover for an epoch's values."""

    uses_history = True

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(controller, parent)
        self.setMinimumSize(200, DOCK_MIN_HEIGHT)
        self.graphics = GraphicsLayoutWidget()
        self.graphics.setBackground("w")
        self.plot = self.graphics.addPlot(row=0, col=0)
        self.plot.setLabel("left", "accuracy")
        self.plot.setLabel("bottom", "epoch")
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        prepare_plot(self.plot)
        self.plot.getAxis("left").setWidth(44)
        self.plot.getAxis("left").setStyle(hideOverlappingLabels=False)  # the top label may reach the margin
        # 0 to 1 with room above, so the label "1.0" is drawn (as the Curves view's accuracy plot)
        self.plot.getAxis("left").setTicks([[(v / 5, f"{v / 5:.1f}") for v in range(6)]])
        self.range = StableRange(self.plot)
        self.traces = {key: ColumnTrace(self.plot, pen) for key, _name, pen, _glyph in SERIES}
        # Not cached as device pixels, as other curves are: these change once an epoch, so between two epochs
        # the plot is rarely repainted, and cached curves were seen drawn stale (cut at an older epoch and
        # shifted) after the range grew. Stroking five short paths again costs little, in C++.
        for trace in self.traces.values():
            for item in (trace.body, trace.head):
                item.setCacheMode(QGraphicsItem.CacheMode.NoCache)
        self._xmax: float | None = None
        self.numbers = text_label(rich=True, wrap=True)  # the legend: each curve's name in its colour and line, with its last value
        self.numbers.setToolTip(KEY_TIP)
        self.readout = text_label("Hover over the curves to read an epoch's values", wrap=True)
        self.readout.setToolTip("Values at the epoch under the mouse")
        self.readout.setMinimumHeight(2 * self.readout.fontMetrics().lineSpacing())  # no jump when it wraps
        self.column(self.numbers, (self.graphics, 1), self.readout)
        self.hover = EpochHover(self.graphics, [self.plot], self.readout, self.values_at)

    def frame_key(self, snap: Snapshot | None) -> Hashable:
        """Epochs, not steps: every curve here moves once an epoch."""
        c = self.controller
        return c.run_info.run_id, c.history.n_epochs

    def on_run(self, run: RunInfo) -> None:
        self._xmax = None
        self.range.reset()
        for trace in self.traces.values():
            trace.clear()
        for cursor in self.hover.cursors:
            cursor.setVisible(False)

    def name(self, key: str) -> str:
        """A curve's name: a classifier of sequences has one answer per example, not tokens."""
        name = next(n for k, n, _pen, _glyph in SERIES if k == key)
        return name.replace(" tokens", "") if self.controller.run_info.task == "classification" else name

    def shown(self, h: RunHistory) -> list[str]:
        """The series this run records (a classifier has no exact-sequence score; a run without a longer set,
        or a network that cannot read one, no longer scores)."""
        return [key for key, _name, _pen, _glyph in SERIES
                if len(h.epochs[key].view()) and np.isfinite(h.epochs[key].view()).any()]

    def draw(self, snap: Snapshot | None) -> None:
        h: RunHistory = self.controller.history
        self._xmax = grow(self._xmax, max(1.0, float(h.n_epochs)))
        self.range.set(x=(0.0, self._xmax), y=(0.0, 1.1))
        per_epoch = math.ceil(self._xmax / max(64, int(self.plot.vb.width())))
        shown = self.shown(h)
        for key, trace in self.traces.items():
            b = h.epochs[key]
            if key in shown:
                trace.show(b.start, b.view(), 1.0, 1.0, per_epoch)  # a long run's folded epochs: drawn in place
            elif trace.start != -1:
                trace.clear()
        self._show_numbers(h, shown)

    def _show_numbers(self, h: RunHistory, shown: list[str]) -> None:
        if h.n_epochs == 0:
            text = "The curves start when the first epoch ends."
        else:
            parts = []
            for key, _name, pen, glyph in SERIES:
                if key in shown:
                    v = float(h.epochs[key].view()[-1])
                    value = f"{v:.1%}" if math.isfinite(v) else "–"
                    name = self.name(key).replace(" ", "&nbsp;")  # lines break between the curves only
                    parts.append(f"<span style='color:{pen.color().name()}'>{glyph}&nbsp;{name}</span>&nbsp;"
                                 f"<b>{value}</b>")
            text = f"epoch {h.n_epochs}: " + " · ".join(parts)
            if not any(key.startswith("epoch_long") for key in shown):
                text += f"<br><span style='color:#808080'>{NO_LONG}</span>"
        if text != self.numbers.text():
            self.numbers.setText(text)

    def values_at(self, x: float) -> str:
        """The readout for epoch position ``x`` (the nearest recorded epoch)."""
        h = self.controller.history
        at = h.epoch_at(x)
        if isinstance(at, str):
            return at
        epoch, i = at
        shown = self.shown(h)
        parts = []
        for key, _name, _pen, _glyph in SERIES:
            values = h.epochs[key].view()
            if key in shown and i < len(values) and np.isfinite(values[i]):
                parts.append(f"{self.name(key)} {values[i]:.1%}")
        return f"epoch {epoch}: " + ", ".join(parts)


    def export(self, fmt: str, path: Path) -> None:
        export_plots(self.graphics, fmt, path)
