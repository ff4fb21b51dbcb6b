"""Recurrent: inside an RNN, LSTM or GRU block while it trains. One example's hidden state as a path over time on
its two principal axes, the gates' activations (or the hidden or cell state) as a time × unit heatmap with the
tokens read along the time axis, and how much the loss depends on each step's hidden state, on a log scale: a
plain RNN's gradient fades toward the early steps (vanishing gradients), a gated cell's far less."""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Slot
from PySide6.QtWidgets import QComboBox, QGraphicsItem, QLabel, QSlider, QSpinBox, QWidget

from engine import SessionSpec, Snapshot
from engine.probes import ProbeRequest

from ..colors import DIVERGING, NEUTRAL, POSITIVE
from ..controller import Controller, RunInfo
from .base import DOCK_MIN_HEIGHT, LiveView, control_row, text_label
from .plotting import PlotWidget, cached_curve, grow, prepare_plot

CELLS = ("rnn", "lstm", "gru")
SHOWN_TOKENS = 16  # tokens the caption spells out
SPLIT_TITLES = {"test": "test", "long": "longer (held out)"}
# what the heatmap can show: (key in the gates probe or "hidden"/"cell", title, value range, what it means)
SHOWN = {
    "input": ("input gate i", (0, 1), "how much of the new candidate enters the cell state (1: all of it)"),
    "forget": ("forget gate f", (0, 1), "how much of the cell state is kept from the step before (1: all of it)"),
    "cell": ("cell candidate g", (-1, 1), "the new content offered to the cell state"),
    "output": ("output gate o", (0, 1), "how much of the cell state shows in the hidden state"),
    "reset": ("reset gate r", (0, 1), "how much of the old hidden state the new candidate may use"),
    "update": ("update gate z", (0, 1), "how much of the old hidden state is kept (1: kept, the input ignored)"),
    "new": ("new candidate n", (-1, 1), "the candidate state computed from the input and the reset old state"),
    "hidden": ("hidden state h", (-1, 1), "the state the block passes on at each step"),
    "cell_state": ("cell state c", None,
                   "an LSTM's memory: added to through the input gate, kept through the forget gate"),
}
GATE_TIP = ("What the heatmap shows: one of the gates (LSTM: input, forget, cell candidate, output; GRU: reset, "
            "update, new), or the hidden or cell state")
PATH_TITLE = "Hidden state h_t on its two main axes{}: dark first step → yellow last"
EMPTY = "The recurrent block's insides appear at the next probe round (press play, or step once)."
NONE = "This network has no RNN, LSTM or GRU block to look into."
HOVER = "Hover the path, the heatmap or the gradient curve for values."
GRAD_NOTE = "Lower near t = 0: vanishing gradients, early steps learn little"
GRAD_TITLE = "Gradient ‖∂loss/∂h_t‖ per step (log scale)"
PATH_PEN, GRAD_PEN = pg.mkPen((90, 90, 90), width=1.5), pg.mkPen((78, 121, 167), width=2)
TIME_LUT = pg.colormap.get("viridis").getLookupTable(0.0, 1.0, 256)  # early steps dark blue, late ones yellow
SEQ_LUT = np.linspace(np.array(NEUTRAL, np.float32) + 20, np.array(POSITIVE, np.float32), 256).clip(0, 255)


def has_recurrent(spec: SessionSpec) -> bool:
    """The network has an RNN, LSTM or GRU block to look into (the view's entry in the views table)."""
    return any(node.op in CELLS for node in spec.model.nodes)


def _small(text: str, tip: str) -> QLabel:
    label = text_label(text, wrap=True)
    label.setStyleSheet("font-size: 9pt; color: #333")
    label.setToolTip(tip)
    return label


def _colour_map(lut: np.ndarray) -> pg.ColorMap:
    return pg.ColorMap(np.linspace(0.0, 1.0, len(lut)), np.asarray(lut, dtype=np.uint8))


def step_ticks(tokens: np.ndarray, every: int) -> list[tuple[float, str]]:
    """The bottom axis's ticks: every ``every``-th step labelled with the token read there."""
    return [(float(t), str(tokens[t])) for t in range(0, len(tokens), max(every, 1))]


def decade_label(k: int) -> str:
    """10ᵏ as people write it: 0.01, 0.1, 1, 10, 100, else with a superscript exponent."""
    if -2 <= k <= 2:
        return f"{10.0 ** k:g}"
    return "10" + str(k).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))


def decade_range(lo: float, hi: float) -> tuple[float, float]:
    """A log10 range in whole decades around positive [lo, hi], 30 decades at most (a default without values):
    a plain RNN's gradient at its first steps can be 10⁻²⁰ of its last's, and that is the point to show."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= 0:
        return (-3.0, 1.0)
    a, b = math.floor(math.log10(max(lo, hi * 1e-30))), math.ceil(math.log10(hi))
    return (float(a), float(max(b, a + 1)))


def decade_ticks(lo: float, hi: float) -> list[tuple[float, str]]:
    """Ticks for a log10 axis from decade ``lo`` to ``hi``: at most six, on whole decades."""
    a, b = math.floor(lo), math.ceil(hi)
    every = max(1, math.ceil((b - a) / 5))
    return [(float(k), decade_label(k)) for k in range(b, a - 1, -every)][::-1]


def shown_keys(kind: str, gate_names: list[str]) -> list[str]:
    """What the heatmap offers for a block: its gates, its hidden state, and an LSTM's cell state."""
    return [*gate_names, "hidden", *(["cell_state"] if kind == "lstm" else [])]


class RecurrentView(LiveView):
    """Three plots of the `gates` and `step_grad_norms` probes, items made once and updated with setData."""

    probes = frozenset({"gates", "step_grad_norms"})

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(controller, parent)
        self.setMinimumSize(280, DOCK_MIN_HEIGHT)
        self.layer = QComboBox()
        self.layer.setToolTip("Which recurrent block to look into (its first layer; a bidirectional block's "
                              "forward direction)")
        self.layer_label = QLabel("block")
        self.layer_label.setToolTip(self.layer.toolTip())
        self.split = QComboBox()
        self.split.setToolTip("The test sequences, at the training length, or the longer held-out ones: does the "
                              "state still carry what it must over more steps?")
        self.split_label = QLabel("set")
        self.split_label.setToolTip(self.split.toolTip())
        self.example = QSpinBox()
        self.example.setToolTip("Which example of the chosen set the path and the heatmap follow (the gradient "
                                "curve averages over its first 64)")
        self.example.setMinimumWidth(64)
        self.gate = QComboBox()
        self.gate.setToolTip(GATE_TIP)
        self.caption = _small(EMPTY, "The example followed, its answer and the network's")
        self.readout = text_label(HOVER, wrap=True)
        self.readout.setStyleSheet("color: #444")

        self.path_title = _small(PATH_TITLE.format(""), "The hidden state h_t after each step, projected on the "
                                 "two directions along which it varies most over this example (PCA); colour goes "
                                 "from dark (first step) to yellow (last)")
        self.path_widget, self.path_plot = self._plot()
        self.path = cached_curve(self.path_plot, PATH_PEN)
        self.dots = pg.ScatterPlotItem(size=7, pen=pg.mkPen(40, 40, 40, width=0.5))
        self.ends = pg.ScatterPlotItem(size=13, pen=pg.mkPen(20, 20, 20, width=1.5))
        self.path_plot.addItem(self.dots)
        self.path_plot.addItem(self.ends)
        self.ends.setZValue(5)
        self.start_text = pg.TextItem("start", color=(20, 20, 20))
        self.end_text = pg.TextItem("end", color=(20, 20, 20))
        for item in (self.start_text, self.end_text):
            self.path_plot.addItem(item, ignoreBounds=True)

        self.heat_title = _small("columns: steps, rows: units", "Each column one time step (the token read below "
                                 "it), each row one hidden unit; hover a cell for its value")
        self.heat_widget, self.heat_plot = self._plot()
        self.heat_plot.invertY(True)  # unit 0 on top, as a matrix reads
        self.image = pg.ImageItem(axisOrder="row-major")
        self.heat_plot.addItem(self.image)
        self.heat_plot.setLabel("bottom", "token read at step t")
        self.heat_plot.setLabel("left", "unit")
        self.heat_plot.layout.setContentsMargins(0, 7, 8, 0)  # the colour bar's top label sticks out        # the first step's label may reach past the axis's end: keep it
        self.heat_plot.getAxis("bottom").setStyle(hideOverlappingLabels=False)
        self.bar = pg.ColorBarItem(values=(0.0, 1.0), colorMap=_colour_map(SEQ_LUT), interactive=False, width=12)
        self.bar.setImageItem(self.image, insert_in=self.heat_plot)

        self.grad_title = _small(GRAD_TITLE, "How much each example's loss "
                                 "changes with the hidden state at step t, the mean over the first 64 examples of "
                                 "the set: what reaches step t when the network learns")
        self.grad_widget, self.grad_plot = self._plot()
        self.grad_plot.setLabel("bottom", "step t")
        self.grad_curve = cached_curve(self.grad_plot, GRAD_PEN)
        for curve in (self.path, self.grad_curve):  # a few dozen points, redrawn with their plot at each probe
            curve.setCacheMode(QGraphicsItem.CacheMode.NoCache)
        self._decades: tuple[float, float] | None = None
        self.grad_dots = pg.ScatterPlotItem(size=5, pen=None, brush=pg.mkBrush(78, 121, 167))
        self.grad_plot.addItem(self.grad_dots)
        self.grad_note = _small(GRAD_NOTE, "Backpropagation through time multiplies the gradient by the cell's "
                                "Jacobian once per step back: a plain RNN's shrinks it each time, an LSTM's cell "
                                "state and a GRU's update gate let it pass")

        controls = control_row(self.layer_label, self.layer, self.split_label, self.split, "example", self.example)
        self.column(controls, self.caption, self.path_title, (self.path_widget, 2),
                    control_row("heatmap", self.gate, (self.heat_title, 1), stretch=False), (self.heat_widget, 3),
                    self.grad_title, (self.grad_widget, 2), self.grad_note, self.readout)
        self.arrays: dict[str, np.ndarray] = {}
        self.norms: np.ndarray = np.zeros(0)
        self._heat_key: tuple[object, ...] = ()
        self.layer.currentIndexChanged.connect(self._on_layer)
        self.split.currentIndexChanged.connect(self._on_split)
        self.example.valueChanged.connect(self._ask)
        self.gate.currentIndexChanged.connect(self._draw_heat)
        for where, widget in (("path", self.path_widget), ("heat", self.heat_widget), ("grad", self.grad_widget)):
            widget.scene().sigMouseMoved.connect(lambda pos, w=where: self._on_mouse(w, pos))
        controller.sample_changed.connect(self._follow_sample)

    @staticmethod
    def _plot() -> tuple[PlotWidget, pg.PlotItem]:
        widget = PlotWidget(background="w")
        widget.setMinimumHeight(70)
        plot = widget.getPlotItem()
        prepare_plot(plot)
        plot.getAxis("left").setWidth(40)
        plot.layout.setContentsMargins(0, 2, 8, 0)
        return widget, plot

    def choices(self) -> dict[str, QComboBox | QSlider]:
        return {"layer": self.layer, "split": self.split, "gate": self.gate}

    # --- requests ----------------------------------------------------------------------------------

    @Slot()
    def _ask(self) -> None:
        layer, split = self.layer.currentData(), self.split.currentData() or "test"
        self.controller.ask_probe("gates", ProbeRequest(sample=self.example.value(), layer=layer, split=split))
        self.controller.ask_probe("step_grad_norms", ProbeRequest(layer=layer, split=split))

    @Slot()
    def _on_split(self) -> None:
        self._set_range()
        self._ask()

    @Slot()
    def _on_layer(self) -> None:
        self._fill_gates()
        self._ask()

    @Slot()
    def _follow_sample(self) -> None:
        """The test example selected elsewhere is the one followed here, on the test set."""
        if self.split.currentData() in (None, "test"):
            self.example.setValue(self.controller.sample)

    def _set_range(self) -> None:
        if self.run is None:
            return
        data = self.run.data
        x = data.x_long if self.split.currentData() == "long" and data.x_long is not None else data.x_test
        self.example.setRange(0, max(len(x) - 1, 0))

    def _kind(self) -> str:
        node = self.run.nodes.get(self.layer.currentData()) if self.run is not None else None
        return node.op if node is not None else ""

    def _fill_gates(self) -> None:
        """The heatmap's entries for the chosen block's kind, keeping the one shown where it still exists."""
        kind = self._kind()
        names = {"lstm": ["input", "forget", "cell", "output"], "gru": ["reset", "update", "new"]}.get(kind, [])
        keys = shown_keys(kind, names)
        if [self.gate.itemData(i) for i in range(self.gate.count())] == keys:
            return
        keep = self.gate.currentData()
        self.gate.blockSignals(True)
        self.gate.clear()
        for key in keys:
            self.gate.addItem(SHOWN[key][0], key)
            self.gate.setItemData(self.gate.count() - 1, SHOWN[key][2], Qt.ItemDataRole.ToolTipRole)
        self.gate.setCurrentIndex(max(self.gate.findData(keep), 0))
        self.gate.blockSignals(False)

    def on_run(self, run: RunInfo) -> None:
        for box, entries in ((self.layer, [(f"{n} ({run.nodes[n].op.upper()})", n) for n in run.order
                                            if run.nodes[n].op in CELLS]),
                             (self.split, [(SPLIT_TITLES[k], k) for k in
                                           (("test", "long") if run.data.x_long is not None else ("test",))])):
            keep = box.currentData()
            box.blockSignals(True)
            box.clear()
            for title, key in entries:
                box.addItem(title, key)
            box.setCurrentIndex(max(box.findData(keep), 0))
            box.blockSignals(False)
        for widget, label in ((self.layer, self.layer_label), (self.split, self.split_label)):
            widget.setVisible(widget.count() > 1)
            label.setVisible(widget.count() > 1)
        self._set_range()
        self._fill_gates()
        self.arrays, self.norms, self._heat_key, self._decades = {}, np.zeros(0), (), None
        for item in (self.path, self.grad_curve):
            item.setData([], [])
        for item in (self.dots, self.ends, self.grad_dots):
            item.clear()
        self.image.clear()
        self.caption.setText(EMPTY if self.probes & run.probes else NONE)
        self.readout.setText(HOVER)
        self._ask()

    # --- drawing -----------------------------------------------------------------------------------

    def draw(self, snap: Snapshot | None) -> None:
        assert snap is not None
        if "gates" in snap.probes:
            self.arrays = snap.probes["gates"].arrays
            self._draw_path()
            self._draw_heat()
            self.caption.setText(self.describe(self.arrays))
        if "step_grad_norms" in snap.probes:
            self._draw_grads(snap.probes["step_grad_norms"].arrays)

    def describe(self, a: dict[str, np.ndarray]) -> str:
        """The caption: which block, which example, and what it reads."""
        shown = a["tokens"][:SHOWN_TOKENS].tolist() + (["…"] if len(a["tokens"]) > SHOWN_TOKENS else [])
        split = SPLIT_TITLES.get(self.split.currentData() or "test", "test")
        text = (f"{a['node'][0]} ({a['kind'][0].upper()}, {a['hidden'].shape[1]} units) · {split} example "
                f"{int(a['sample'][0])}: {' '.join(shown)} ({len(a['tokens'])} steps)")
        if "target" in a and len(a["target"]) == 1:
            right = a["predicted"][0] == a["target"][0]
            text += (f" → answer {self.class_name(int(a['target'][0]))}, the network says "
                     f"{self.class_name(int(a['predicted'][0]))} {'✓' if right else '✗'}")
        elif "target" in a and a["target"].shape == a["predicted"].shape:
            right = int((a["target"] == a["predicted"]).sum())
            text += f" → the network gets {right} of {len(a['target'])} tokens right"
        return text

    def _draw_path(self) -> None:
        a = self.arrays
        xy = np.nan_to_num(a["hidden_pca"].astype(np.float64))
        n = len(xy)
        self.path.setData(xy[:, 0], xy[:, 1])
        shade = TIME_LUT[np.linspace(0, 255, n).round().astype(int)] if n else np.zeros((0, 3), np.uint8)
        self.dots.setData(pos=xy, brush=[pg.mkBrush(*c) for c in shade.tolist()])
        if n:
            self.ends.setData(pos=xy[[0, -1]], symbol=["s", "t1"],
                              brush=[pg.mkBrush(*TIME_LUT[0]), pg.mkBrush(*TIME_LUT[-1])])
            mid = (xy.min(axis=0) + xy.max(axis=0)) / 2
            for text, point in ((self.start_text, xy[0]), (self.end_text, xy[-1])):
                # the label on the side toward the middle, so it stays inside the plot
                text.setAnchor((1.15 if point[0] > mid[0] else -0.15, -0.1 if point[1] > mid[1] else 1.1))
                text.setPos(*point)
        lo, hi = (xy.min(axis=0), xy.max(axis=0)) if n else (-np.ones(2), np.ones(2))
        pad = 0.1 * np.maximum(hi - lo, 1e-6)  # room for the markers and the start/end labels
        # fitted to this path: it changes about once a second (each probe round), not each frame
        self.path_plot.setRange(xRange=(lo[0] - pad[0], hi[0] + pad[0]), yRange=(lo[1] - pad[1], hi[1] + pad[1]),
                                padding=0)
        share = a["hidden_explained"]
        self.path_title.setText(PATH_TITLE.format(f" (PC 1 {share[0]:.0%}, PC 2 {share[1]:.0%} of its variance)"))

    def heat_values(self) -> tuple[np.ndarray, str]:
        """The (T, H) values the heatmap shows now and their key."""
        a, key = self.arrays, self.gate.currentData() or "hidden"
        names = a["gate_names"].tolist()
        if key in names:
            return a["gates"][names.index(key)], key
        if key == "cell_state" and "cell" in a:
            return a["cell"], key
        return a["hidden"], "hidden"

    @Slot()
    def _draw_heat(self) -> None:
        if not self.arrays:
            return
        values, key = self.heat_values()
        title, span, meaning = SHOWN[key]
        if span is None:  # the cell state is unbounded: a symmetric scale that moves in nice steps
            top = grow(None, float(np.nanmax(np.abs(values))) if values.size else 1.0)
            span = (-top, top)
        lut = SEQ_LUT if span[0] == 0 else DIVERGING
        self.image.setImage(np.ascontiguousarray(values.T, dtype=np.float32), autoLevels=False, levels=span)
        steps, units = values.shape
        self.image.setRect(QRectF(-0.5, -0.5, steps, units))
        tokens = self.arrays["tokens"]
        width = max(self.heat_plot.vb.width(), 100.0)
        every = max(1, math.ceil(steps * 14 / width))  # a token name every 14 px at least
        heat_key = (key, span, steps, units, tuple(tokens.tolist()), every)
        if heat_key != self._heat_key:  # axes and colour bar repaint only when these change
            self._heat_key = heat_key
            self.bar.setColorMap(_colour_map(lut))
            self.bar.setLevels(values=span)
            self.heat_plot.getAxis("bottom").setTicks([step_ticks(tokens, every)])
            self.heat_plot.setRange(xRange=(-0.5, steps - 0.5), yRange=(-0.5, units - 0.5), padding=0)
            self.gate.setToolTip(f"{title}: {meaning}. {GATE_TIP}")

    def _draw_grads(self, a: dict[str, np.ndarray]) -> None:
        norms = np.asarray(a["norms"], dtype=np.float64)
        self.norms = norms
        t = np.arange(len(norms), dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            y = np.where(norms > 0, np.log10(np.where(norms > 0, norms, 1.0)), np.nan)
        self.grad_curve.setData(t, y)
        ok = np.isfinite(y)
        self.grad_dots.setData(t[ok], y[ok])
        positive = norms[norms > 0]
        lo, hi = (float(positive.min()), float(positive.max())) if len(positive) else (math.nan, math.nan)
        decades = decade_range(lo, hi)
        self.grad_plot.setRange(xRange=(-0.5, max(len(norms) - 0.5, 0.5)), yRange=decades, padding=0.02)
        if decades != self._decades:  # one label per decade or few, as 10ᵏ: the axis repaints only then
            self._decades = decades
            self.grad_plot.getAxis("left").setTicks([decade_ticks(*decades)])
        zero = int((norms == 0).sum())
        if zero:
            note = f": {zero} step{'s get' if zero > 1 else ' gets'} none at all (below what a float holds)"
        elif len(norms) and norms[-1] > 0:
            note = f": step 0 gets {norms[0] / norms[-1]:.2g}× the last step's"
        else:
            note = ""
        self.grad_title.setText(GRAD_TITLE + note)

    # --- hovering ----------------------------------------------------------------------------------

    def hover_text(self, where: str, x: float, y: float) -> str | None:
        """What the readout says for a point (x, y) in the data coordinates of plot ``where`` (path, heat,
        grad), or None when nothing is there."""
        a = self.arrays
        if where == "grad":
            t = round(x)
            if not 0 <= t < len(self.norms):
                return None
            return f"step t = {t}: mean ‖∂loss/∂h_t‖ = {self.norms[t]:.3g}"
        if not a:
            return None
        tokens = a["tokens"]
        if where == "heat":
            values, key = self.heat_values()
            t, u = round(x), round(y)
            if not (0 <= t < values.shape[0] and 0 <= u < values.shape[1]):
                return None
            return f"step t = {t} (token {tokens[t]}), unit {u}: {SHOWN[key][0]} = {values[t, u]:.3f}"
        xy = a["hidden_pca"]
        px, py = self.path_plot.vb.viewPixelSize()
        d = np.hypot((xy[:, 0] - x) / max(px, 1e-12), (xy[:, 1] - y) / max(py, 1e-12))
        if not len(d) or not np.isfinite(d).any() or np.nanmin(d) > 10:  # within 10 screen pixels
            return None
        t = int(np.nanargmin(d))
        return f"step t = {t}, token {tokens[t]}: h_t at ({xy[t, 0]:.2f}, {xy[t, 1]:.2f}) on PC 1, PC 2"

    def _on_mouse(self, where: str, pos: QPointF) -> None:
        plot = {"path": self.path_plot, "heat": self.heat_plot, "grad": self.grad_plot}[where]
        text = None
        if plot.vb.sceneBoundingRect().contains(pos):
            p = plot.vb.mapSceneToView(pos)
            text = self.hover_text(where, p.x(), p.y())
        self.readout.setText(text or HOVER)
