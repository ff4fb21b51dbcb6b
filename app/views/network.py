"""The network view, TensorFlow Playground style: columns of neurons, each a heatmap of its output over the
input plane, links coloured by the weight's sign and as thick as |w|; +/− for layers and neurons."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QImage, QResizeEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QScrollArea, QToolButton, QVBoxLayout, QWidget

from engine import Snapshot
from engine.datasets.toy2d import DOMAIN, FEATURE_LABELS, features
from engine.probes.boundary import grid_points
from engine.stack import MAX_LAYERS, Layer, Stack, from_model

from ..colors import diverging_rgb, output_rgb
from ..controller import Controller
from ..export import export_widget
from .base import LiveView
from .layer_header import MAX_SHOWN, LayerHeader
from .network_canvas import COLUMN_W, Column, Link, NetworkCanvas, to_qimages

ALL_FEATURES = tuple(FEATURE_LABELS)
HEADER_H = 84
FEATURE_GRID = 24


def unit_weights(w: np.ndarray, units: int) -> tuple[np.ndarray, int]:
    """A dense weight (out, in) as one row per unit, and the pieces per unit: a maxout layer has `units`·k rows
    (k consecutive pieces per unit), drawn as the strongest piece of each link."""
    k = max(1, w.shape[0] // max(units, 1))
    if k == 1:
        return w, 1
    pieces = w[:units * k].reshape(units, k, w.shape[1])  # (units, k, in)
    best = np.abs(pieces).argmax(axis=1)  # (units, in)
    return np.take_along_axis(pieces, best[:, None, :], axis=1)[:, 0, :], k


class _Body(QWidget):
    """The scrolled area's content: places headers and canvas whenever the scroll area resizes it."""

    def __init__(self, view: NetworkView) -> None:
        super().__init__()
        self.view = view

    def resizeEvent(self, event: QResizeEvent) -> None:
        self.view._place()


class NetworkView(LiveView):
    """Header row of layer controls over the canvas; edits come out as `stack_edited` / `features_edited`."""

    probes = frozenset({"neurons", "boundary", "weights"})
    stack_edited = Signal(object)  # Stack
    features_edited = Signal(object)  # tuple of feature names

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(controller, parent)
        self.stack: Stack | None = None
        self.enabled_features: tuple[str, ...] = ()
        self.dense_ids: list[str] = []
        self.layer_minus, self.layer_plus = QToolButton(), QToolButton()
        self.layer_minus.setText("−")
        self.layer_plus.setText("+")
        self.layer_minus.setToolTip("Remove the last hidden layer")
        self.layer_plus.setToolTip(f"Add a hidden layer (up to {MAX_LAYERS})")
        self.layer_minus.clicked.connect(self._on_layer_minus)
        self.layer_plus.clicked.connect(self._on_layer_plus)
        self.layer_label = QLabel()
        self.note = QLabel()
        self.note.setStyleSheet("color: #666")
        top = QHBoxLayout()
        top.addWidget(self.layer_minus)
        top.addWidget(self.layer_plus)
        top.addWidget(self.layer_label)
        top.addStretch(1)
        top.addWidget(self.note)
        self.body = _Body(self)
        self.headers: list[QWidget] = []
        self.canvas = NetworkCanvas(self.column_x, self.describe_unit, self.describe_link, self.body)
        self.canvas.unit_clicked.connect(self._on_unit_clicked)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setWidget(self.body)
        self.scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.scroll, 1)
        self._feature_images = self._make_feature_images()
        self._pieces: dict[str, int] = {}  # linear pieces per unit of each drawn dense layer (maxout: k)
        controller.spec_changed.connect(self.show_stack)
        self.show_stack()

    # --- geometry shared by headers and canvas -----------------------------------------------------

    def n_columns(self) -> int:
        return len(self.dense_ids) + 1  # features, hidden layers, output

    def column_x(self, ci: int) -> float:
        width = max(self.body.width(), COLUMN_W * self.n_columns())
        step = (width - 70) / max(self.n_columns(), 1)
        return 70 + step * (ci + 0.5)

    def _place(self) -> None:
        self.body.setMinimumWidth(COLUMN_W * self.n_columns() + 70)
        self.body.setMinimumHeight(HEADER_H + 280)
        w, h = max(self.body.width(), 1), max(self.body.height(), 1)
        for ci, header in enumerate(self.headers):
            x = self.column_x(ci)
            header.setGeometry(int(x - COLUMN_W / 2 + 4), 0, COLUMN_W - 8, HEADER_H - 6)
        self.canvas.setGeometry(0, HEADER_H, w, h - HEADER_H)
        self.canvas.layout_columns()

    # --- building from the spec --------------------------------------------------------------------

    def _make_feature_images(self) -> list[QImage]:
        pts = grid_points(FEATURE_GRID, DOMAIN)
        vals = features(pts, ALL_FEATURES).T.reshape(-1, FEATURE_GRID, FEATURE_GRID)  # (7, g, g)
        scale = np.abs(vals).max(axis=(1, 2), keepdims=True)
        return to_qimages(diverging_rgb(vals / np.maximum(scale, 1e-9)))

    @Slot()
    def show_stack(self) -> None:
        """Rebuild the layer controls from the spec (also to undo an edit the user did not confirm)."""
        spec, run = self.controller.spec, self.controller.run_info
        self.stack = from_model(spec.model)
        self.enabled_features = tuple(spec.dataset.features)
        self.dense_ids = [n for n in run.order if run.nodes[n].op == "dense"]
        editable = self.stack is not None
        n_hidden = len(self.stack.layers) if self.stack else len(self.dense_ids) - 1
        self.layer_label.setText(f"{n_hidden} hidden layer{'s' if n_hidden != 1 else ''}")
        self.layer_minus.setEnabled(editable and n_hidden > 0)
        self.layer_plus.setEnabled(editable and n_hidden < MAX_LAYERS)
        self.note.setText("" if editable else "not a plain layer stack: edit it in the graph editor")
        for h in self.headers:
            h.hide()
            h.deleteLater()
        self.headers = []
        first = QLabel("Features\n(click to toggle)")
        first.setAlignment(Qt.AlignmentFlag.AlignCenter)
        first.setToolTip("Input features fed to the network; click a feature's square to switch it on or off")
        self.headers.append(first)
        for i, dense in enumerate(self.dense_ids[:-1]):
            if self.stack is not None:
                header = LayerHeader(i, self.stack.layers[i], self.body)
                header.changed.connect(self._on_layer_changed)
            else:
                header = QLabel(dense)
            self.headers.append(header)
        last = QLabel("Output")
        last.setAlignment(Qt.AlignmentFlag.AlignCenter)
        last.setToolTip("The network's output over the input plane (shown large in the Output view)")
        self.headers.append(last)
        for h in self.headers:
            h.setParent(self.body)
            h.show()
        self._place()
        self.redraw()

    # --- drawing -----------------------------------------------------------------------------------

    def draw(self, snap: Snapshot | None) -> None:
        assert snap is not None and self.run is not None
        run = self.run
        neurons, weights = snap.probes["neurons"].arrays, snap.probes["weights"].arrays
        on = set(self.enabled_features)
        cols = [Column("input", len(ALL_FEATURES), self._feature_images, [],
                       [FEATURE_LABELS[f] for f in ALL_FEATURES], [f not in on for f in ALL_FEATURES])]
        hidden = [d for d in self.dense_ids[:-1] if d in neurons]
        for dense in hidden:
            acts = neurons[dense]
            shown = acts[:MAX_SHOWN]
            # Bounded activations keep their natural ±1 scale; unbounded ones (ReLU, …) scale per neuron.
            scale = np.maximum(np.nan_to_num(np.abs(shown)).max(axis=(1, 2), keepdims=True), 1.0)
            cols.append(Column(dense, acts.shape[0], to_qimages(diverging_rgb(shown / scale)), [], []))
        out = output_rgb(snap.probes["boundary"].arrays["output"], run.output_activation)
        cols.append(Column("output", 1, to_qimages(out[None]), [], []))
        links: list[Link] = []
        index_of = {f: i for i, f in enumerate(ALL_FEATURES)}
        self._pieces = {}
        for c, dense in enumerate([*hidden, self.dense_ids[-1]]):
            if dense not in weights:
                continue
            units = run.nodes[dense].shape[0]
            w, self._pieces[dense] = unit_weights(np.nan_to_num(weights[dense]), units)  # (units, in)
            if c == 0:
                sources = [(index_of[f], k) for k, f in enumerate(self.enabled_features)]
            else:
                sources = [(u, u) for u in range(min(w.shape[1], len(cols[c].images)))]
            if c + 1 == len(cols) - 1:  # into the single output node: the strongest of its units' weights
                strongest = w[np.abs(w).argmax(axis=0), np.arange(w.shape[1])]
                links.extend(Link(c, u, 0, float(strongest[k])) for u, k in sources)
            else:
                shown_units = min(units, len(cols[c + 1].images))  # never past the drawn units
                links.extend(Link(c, u, v, float(w[v, k])) for v in range(shown_units) for u, k in sources)
        self.canvas.set_content(cols, links)

    def export(self, fmt: str, path: Path) -> None:
        export_widget(self.body, fmt, path, "DL Playground network")

    # --- hover texts -------------------------------------------------------------------------------

    def describe_unit(self, ci: int, k: int) -> str:
        if ci == 0:
            f = ALL_FEATURES[k]
            state = "on" if f in self.enabled_features else "off"
            return f"feature {FEATURE_LABELS[f]} ({state}; click to switch {'off' if state == 'on' else 'on'})"
        snap = self.controller.snapshot
        col = self.canvas.columns[ci]
        if col.node == "output":
            return "output: the network's prediction over the plane"
        text = f"{col.node}, neuron {k + 1} of {col.units}"
        probes = snap.probes if snap is not None else {}
        bias = probes["weights"].arrays.get(f"{col.node}.bias") if "weights" in probes else None
        if bias is not None and "neurons" in probes:
            pieces = self._pieces.get(col.node, 1)
            if pieces > 1:
                text += f" (maxout of {pieces})\nbiases " + ", ".join(f"{b:+.4f}" for b in bias[k * pieces:(k + 1) * pieces])
            else:
                text += f"\nbias {bias[k]:+.4f}"
            acts = probes["neurons"].arrays[col.node][k]
            text += f"\noutput over the plane: {float(acts.min()):+.3f} … {float(acts.max()):+.3f}"
        return text

    def describe_link(self, link: Link) -> str:
        c, u, v, w = link
        src = self.canvas.columns[c]
        dst = self.canvas.columns[c + 1]
        a = FEATURE_LABELS[ALL_FEATURES[u]] if c == 0 else f"{src.node}[{u + 1}]"
        if dst.node != "output":
            pieces = self._pieces.get(dst.node, 1)
            strongest = f" (the strongest of its {pieces} pieces)" if pieces > 1 else ""
            return f"weight {a} → {dst.node}[{v + 1}]{strongest}: {w:+.4f}"
        snap = self.controller.snapshot
        last = self.dense_ids[-1]
        weights = snap.probes["weights"].arrays.get(last) if snap and "weights" in snap.probes else None
        if weights is None or weights.shape[0] == 1:
            return f"weight {a} → output: {w:+.4f}"
        k = self.enabled_features.index(ALL_FEATURES[u]) if c == 0 else u
        each = ", ".join(f"{x:+.3f}" for x in weights[:, k])
        return f"weights {a} → output units: {each}"

    # --- edits -------------------------------------------------------------------------------------

    @Slot(int, object)
    def _on_layer_changed(self, index: int, layer: Layer) -> None:
        if self.stack is None:
            return
        layers = list(self.stack.layers)
        layers[index] = layer
        self.stack_edited.emit(replace(self.stack, layers=tuple(layers)))

    @Slot()
    def _on_layer_plus(self) -> None:
        if self.stack is not None and len(self.stack.layers) < MAX_LAYERS:
            template = self.stack.layers[-1] if self.stack.layers else Layer(4, "tanh")
            self.stack_edited.emit(replace(self.stack, layers=self.stack.layers + (template,)))

    @Slot()
    def _on_layer_minus(self) -> None:
        if self.stack is not None and self.stack.layers:
            self.stack_edited.emit(replace(self.stack, layers=self.stack.layers[:-1]))

    @Slot(int, int)
    def _on_unit_clicked(self, column: int, unit: int) -> None:
        if column != 0:
            return  # only features switch on and off
        feature = ALL_FEATURES[unit]
        on = list(self.enabled_features)
        if feature in on:
            if len(on) == 1:
                return  # at least one feature stays on
            on.remove(feature)
        else:
            on = [f for f in ALL_FEATURES if f in on or f == feature]
        self.features_edited.emit(tuple(on))
