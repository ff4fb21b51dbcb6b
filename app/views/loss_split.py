"""Loss split: an autoencoder's or a VAE's training loss per epoch taken apart. Above, the whole loss with its
reconstruction part (the same units: summed over a picture's pixels, averaged over pictures); below, the KL
term before β weighs it (in nats), which has its own scale; and a line saying what β is now."""
from __future__ import annotations

import math
from collections.abc import Hashable
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Slot
from PySide6.QtWidgets import QWidget

from engine import Snapshot

from ..controller import Controller, RunInfo
from ..export import export_plots
from ..history import RunHistory
from .base import DOCK_MIN_HEIGHT, LiveView, text_label
from .curves import loss_text
from .plotting import ColumnTrace, EpochHover, GraphicsLayoutWidget, RunningSpan, StableRange, grow, prepare_plot

TOTAL_PEN = pg.mkPen((8, 119, 189), width=2)  # the Curves view's training loss: the same series
RECON_PEN = pg.mkPen((46, 125, 50), width=2)
KL_PEN = pg.mkPen((142, 36, 170), width=2)
SERIES = (("epoch_train_loss", "total", TOTAL_PEN), ("epoch_recon_loss", "reconstruction", RECON_PEN),
          ("epoch_kl", "KL", KL_PEN))
NO_KL = "No KL term: this network has no sampling (reparam) block, so its loss is the reconstruction alone."


class LossSplitView(LiveView):
    """Two plots sharing x in epochs: total and reconstruction loss above, KL below; hover for an epoch's values."""

    uses_history = True

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(controller, parent)
        self.setMinimumSize(200, DOCK_MIN_HEIGHT)
        self.graphics = GraphicsLayoutWidget()
        self.graphics.setBackground("w")
        self.loss_plot = self.graphics.addPlot(row=0, col=0)
        self.kl_plot = self.graphics.addPlot(row=1, col=0)
        self.kl_plot.setXLink(self.loss_plot)
        self.loss_plot.setLabel("left", "loss")
        self.kl_plot.setLabel("left", "KL (nats)")
        self.kl_plot.setLabel("bottom", "epoch")
        for p in (self.loss_plot, self.kl_plot):
            p.showGrid(x=True, y=True, alpha=0.15)
            prepare_plot(p)
            p.getAxis("left").setWidth(52)  # the two plots' y axes line up
            p.getAxis("left").setStyle(hideOverlappingLabels=False)  # 0 and the top label may reach the margin
        self.loss_range, self.kl_range = StableRange(self.loss_plot), StableRange(self.kl_plot)
        self.traces = {key: ColumnTrace(self.kl_plot if key == "epoch_kl" else self.loss_plot, pen)
                       for key, _title, pen in SERIES}
        self.spans = {key: RunningSpan() for key, _title, _pen in SERIES}
        self._xmax: float | None = None
        self._ymax: dict[str, float | None] = {"loss": None, "kl": None}
        self.numbers = text_label(rich=True, wrap=True)  # the key: each curve's name in its colour, with its last value
        self.numbers.setToolTip("The last finished epoch's training loss (the mean over its steps), its "
                                "reconstruction part and the KL term before β weighs it; total = reconstruction "
                                "+ β·KL")
        self.beta = text_label(wrap=True)
        self.beta.setToolTip("β weighs the KL term in the loss (Regularization panel); a warm-up raises it "
                             "linearly from 0 over its epochs, so the codes first learn to reconstruct")
        self.readout = text_label("Hover over the curves to read an epoch's values")
        self.column(self.numbers, self.beta, (self.graphics, 1), self.readout)
        self.hover = EpochHover(self.graphics, [self.loss_plot, self.kl_plot], self.readout, self.values_at)
        controller.spec_changed.connect(self._on_spec)  # β edited while paused: the β line at once

    @property
    def has_kl(self) -> bool:
        """The run's network has a VAE's sampling block, whose KL term joins the loss."""
        run = self.controller.run_info
        return any(node.op == "reparam" for node in run.nodes.values())

    @Slot()
    def _on_spec(self) -> None:
        self.refresh()

    def frame_key(self, snap: Snapshot | None) -> Hashable:
        """Epochs, not steps: every curve here moves once an epoch (so a frame between two costs nothing)."""
        c = self.controller
        reg = c.spec.regularization
        return c.run_info.run_id, c.history.n_epochs, reg.beta, reg.beta_warmup

    def on_run(self, run: RunInfo) -> None:
        self._xmax = None
        self._ymax = {"loss": None, "kl": None}
        self.loss_range.reset()
        self.kl_range.reset()
        for t in self.traces.values():
            t.clear()
        self.kl_plot.setVisible(self.has_kl)
        self.loss_plot.setLabel("bottom", None if self.has_kl else "epoch")

    def draw(self, snap: Snapshot | None) -> None:
        h: RunHistory = self.controller.history
        kl = self.has_kl
        self._update_ranges(h, kl)
        assert self._xmax is not None
        per_epoch = math.ceil(self._xmax / max(64, int(self.loss_plot.vb.width())))
        for key, _title, _pen in SERIES:
            b = h.epochs[key]
            trace = self.traces[key]
            # without a KL term the total is the reconstruction loss: one curve, not two on top of each other
            if (key == "epoch_recon_loss" or kl) and len(b.view()) and np.isfinite(b.view()).any():
                trace.show(b.start, b.view(), 1.0, 1.0, per_epoch)
            elif trace.start != -1:
                trace.clear()
        self._show_numbers(h, kl)
        self._show_beta(h, kl)

    def _update_ranges(self, h: RunHistory, kl: bool) -> None:
        """Move the axes only when the curves outgrow them (see curves.py)."""
        self._xmax = grow(self._xmax, max(1.0, float(h.n_epochs)))
        spans = {key: self.spans[key].update(h.run_id, h.epochs[key].start, h.epochs[key].view())
                 for key, _title, _pen in SERIES}
        top = max((spans[key][1] for key in ("epoch_train_loss", "epoch_recon_loss")
                   if math.isfinite(spans[key][1])), default=1.0)
        self._ymax["loss"] = grow(self._ymax["loss"], top)
        self.loss_range.set(x=(0.0, self._xmax), y=(0.0, self._ymax["loss"]))
        if kl:
            hi = spans["epoch_kl"][1]
            self._ymax["kl"] = grow(self._ymax["kl"], hi if math.isfinite(hi) else 1.0)
            self.kl_range.set(x=(0.0, self._xmax), y=(0.0, self._ymax["kl"]))

    def last(self, h: RunHistory, key: str) -> float:
        values = h.epochs[key].view()
        return float(values[-1]) if len(values) else math.nan

    def _show_numbers(self, h: RunHistory, kl: bool) -> None:
        """The latest epoch's parts above the plots, in the curves' colours: the key to the curves."""
        if h.n_epochs == 0:
            text = "The curves start when the first epoch ends."
        else:
            parts = []
            for key, title, pen in SERIES:
                v = self.last(h, key)
                if key != "epoch_recon_loss" and not kl or key == "epoch_recon_loss" and not math.isfinite(v):
                    continue
                parts.append(f"<span style='color:{pen.color().name()}'>━ {title}</span> <b>{loss_text(v)}</b>")
            total, recon = self.last(h, "epoch_train_loss"), self.last(h, "epoch_recon_loss")
            if kl and math.isfinite(recon):
                parts.append(f"β·KL <b>{loss_text(total - recon)}</b>")
            text = f"epoch {h.n_epochs}: " + " · ".join(parts)
        if text != self.numbers.text():
            self.numbers.setText(text)

    def beta_now(self, h: RunHistory) -> tuple[float, float]:
        """(β set, β weighing the KL term as the last epoch ended): a warm-up raises it linearly over its epochs."""
        reg = self.controller.spec.regularization
        return reg.beta, reg.beta_at(h.n_epochs)

    def _show_beta(self, h: RunHistory, kl: bool) -> None:
        if not kl:
            text = NO_KL
        else:
            beta, now = self.beta_now(h)
            warmup = self.controller.spec.regularization.beta_warmup
            text = f"β = {beta:g}: the loss adds β·KL to the reconstruction"
            if warmup and now < beta:
                text += (f"; warming up over {warmup} epochs, β is {now:.3g} after {h.n_epochs} "
                         f"({now / beta:.0%} of the way)")
            elif warmup:
                text += f" (warmed up over the first {warmup} epochs)"
            if self.controller.run_info.task != "reconstruction":
                text = text.replace("the reconstruction", "the task's loss")
        if text != self.beta.text():
            self.beta.setText(text)

    def values_at(self, x: float) -> str:
        """The readout for epoch position ``x`` (the nearest recorded epoch)."""
        h = self.controller.history
        at = h.epoch_at(x)
        if isinstance(at, str):
            return at
        epoch, i = at
        parts = [f"{title} {h.epochs[key].view()[i]:.4g}" for key, title, _pen in SERIES
                 if np.isfinite(h.epochs[key].view()[i])]
        return f"epoch {epoch}: " + ", ".join(parts)


    def export(self, fmt: str, path: Path) -> None:
        export_plots(self.graphics, fmt, path)
