"""Positional encoding: the table a positional block adds to the tokens, position down, dimension across: the
fixed sinusoids (fast waves in the first columns, slow ones in the last) or the learned vectors as training
shapes them. Without one ("none") attention sees a bag of tokens and cannot tell their order apart."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Slot
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QComboBox, QLabel, QSlider, QWidget

from engine import SessionSpec, Snapshot

from ..controller import Controller, RunInfo
from .base import DOCK_MIN_HEIGHT, LiveView, control_row, text_label
from .plotting import GraphicsLayoutWidget, prepare_plot

CMAP = pg.colormap.get("CET-D1")  # diverging: blue below 0, white at 0, red above
LUT = CMAP.getLookupTable(0.0, 1.0, 256)
EMPTY = "The positional table appears at the next probe round (press play, or step once)."
NONE_TEXT = ("<b>{node}</b> adds no position (kind <i>none</i>): self-attention then treats the input as a bag "
             "of tokens and cannot tell their order apart. Pick <i>sinusoidal</i> or <i>learned</i> to give "
             "each step its place.")
HOVER = "Hover the table for one value."


def has_positional(spec: SessionSpec) -> bool:
    """The network has a positional block (the Positional view applies)."""
    return any(node.op == "positional" for node in spec.model.nodes)


def caption(kind: str, node: str, table: np.ndarray) -> str:
    """What the table is and how big, in words."""
    t, d = table.shape
    size = f"{t} positions × {d} dimensions"
    if kind == "sinusoidal":
        return (f"<b>{node}</b>: sinusoidal table, {size}, fixed (not trained). Column 2i is "
                f"sin(t / 10000<sup>2i/{d}</sup>), column 2i+1 the cosine: fast waves on the left, slow on the "
                "right, so every position gets its own pattern and nearby positions similar ones.")
    top = float(np.abs(table).max()) if table.size else 0.0
    return (f"<b>{node}</b>: learned table, {size}, as training has shaped it so far (largest |value| "
            f"{top:.3g}); it starts as small noise.")


def centred(n: int, most: int) -> list[tuple[float, str]]:
    """Ticks at the centres of cells 0 … n−1, every 1, 2, 4, 5, 8, 10, … so that at most ``most`` show."""
    every = next(k for k in (1, 2, 4, 5, 8, 10, 16, 20, 25, 32, 50, 64, 100, 128, 256, 512, 1024, 10**9)
                 if n / k <= most)
    return [(k + 0.5, str(k)) for k in range(0, n, every)]


class PositionalView(LiveView):
    """The positional table as a heatmap, position × dimension, with a colour bar."""

    probes = frozenset({"positional"})

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(controller, parent)
        self.setMinimumSize(200, DOCK_MIN_HEIGHT)
        self.node = QComboBox()
        self.node.setToolTip("Which positional block to show (an encoder–decoder may have one per side)")
        self.node_label = QLabel("block")
        self.node_label.setToolTip(self.node.toolTip())
        self.caption = text_label(EMPTY, rich=True, wrap=True)
        self.widget = GraphicsLayoutWidget()
        self.widget.setBackground("w")
        self.widget.setMinimumHeight(80)
        self.widget.setToolTip("Row t is what the block adds to the token at step t; each column one dimension")
        self.plot = self.widget.ci.addPlot(row=0, col=0)
        prepare_plot(self.plot)
        self.plot.invertY(True)
        self.plot.setLabel("left", "position t ↓")
        self.plot.setLabel("bottom", "dimension →")
        font = QFont()
        font.setPointSize(8)
        for name in ("left", "bottom"):
            self.plot.getAxis(name).setStyle(tickFont=font)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setLookupTable(LUT)
        self.plot.addItem(self.image)
        self.bar = pg.ColorBarItem(values=(-1.0, 1.0), colorMap=CMAP, interactive=False, width=12, label="value")
        self.bar.getAxis("right").setStyle(tickFont=font)
        self.widget.ci.addItem(self.bar, row=0, col=1)
        self.readout = text_label(HOVER)
        self.column(control_row(self.node_label, self.node), self.caption, (self.widget, 1), self.readout)
        self.table = np.zeros((0, 0), dtype=np.float32)
        self.kind = ""
        self._shape: tuple[int, ...] = ()
        self.node.currentIndexChanged.connect(self.redraw)
        self.widget.scene().sigMouseMoved.connect(self._on_mouse)

    def choices(self) -> dict[str, QComboBox | QSlider]:
        return {"node": self.node}

    def on_run(self, run: RunInfo) -> None:
        ids = [n for n in run.order if run.nodes[n].op == "positional"]
        keep = self.node.currentData()
        self.node.blockSignals(True)
        self.node.clear()
        for n in ids:
            self.node.addItem(n, n)
        self.node.setCurrentIndex(max(self.node.findData(keep), 0))
        self.node.blockSignals(False)
        for w in (self.node, self.node_label):
            w.setVisible(len(ids) > 1)
        self.image.clear()
        self.table, self.kind, self._shape = np.zeros((0, 0), dtype=np.float32), "", ()
        self.caption.setText(EMPTY)
        self.readout.setText(HOVER)

    def draw(self, snap: Snapshot | None) -> None:
        assert snap is not None
        a = snap.probes["positional"].arrays
        nodes = [str(n) for n in a["nodes"]]
        chosen = self.node.currentData()
        k = nodes.index(chosen) if chosen in nodes else 0
        table, kind, node = a[f"table_{k}"], str(a["kinds"][k]), nodes[k]
        self.table, self.kind = table, kind
        if kind == "none" or table.size == 0:
            self.image.clear()
            self._shape = ()
            self.widget.setVisible(False)
            self.caption.setText(NONE_TEXT.format(node=node))
            return
        self.widget.setVisible(True)
        top = float(np.abs(table).max()) or 1.0
        self.image.setImage(table, autoLevels=False, levels=(-top, top))
        self.bar.setLevels((-top, top))
        if table.shape != self._shape:
            self._shape = table.shape
            self.plot.setRange(xRange=(0, table.shape[1]), yRange=(0, table.shape[0]), padding=0)
            self.plot.getAxis("left").setTicks([centred(table.shape[0], 16)])
            self.plot.getAxis("bottom").setTicks([centred(table.shape[1], 12)])
        text = caption(kind, node, table)
        if text != self.caption.text():
            self.caption.setText(text)

    @Slot(object)
    def _on_mouse(self, pos: QPointF) -> None:
        if not self._shape:
            return
        p = self.plot.vb.mapSceneToView(pos)
        t, d = int(np.floor(p.y())), int(np.floor(p.x()))
        if 0 <= t < self._shape[0] and 0 <= d < self._shape[1]:
            self.readout.setText(f"position {t}, dimension {d}: {self.table[t, d]:+.3f}")
        else:
            self.readout.setText(HOVER)
