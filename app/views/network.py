"""The network view, TensorFlow Playground style: columns of neurons, each a heatmap of its output over the
input plane, links coloured by the weight's sign and as thick as |w|; +/− for layers and neurons."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QImage, QResizeEvent, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.datasets.toy2d import DOMAIN, FEATURE_LABELS, features
from engine.head import output_activation
from engine.ops.activations import ACTIVATIONS
from engine.probes.boundary import grid_points
from engine.stack import MAX_LAYERS, Layer, Stack, from_model

from ..colors import diverging_rgb, output_rgb
from ..controller import Controller
from .network_canvas import ALL_FEATURES, COLUMN_W, Column, NetworkCanvas, to_qimages

MAX_SHOWN = 16  # neurons drawn per column; wider layers are allowed and say how many are hidden
MAX_UNITS_BUTTON = 256
HEADER_H = 84
FEATURE_GRID = 24


class LayerHeader(QWidget):
    """Controls above one hidden layer: neurons −/+, activation, dropout, batch norm."""

    changed = Signal(int, object)  # layer index, new Layer

    def __init__(self, index: int, layer: Layer, parent: QWidget) -> None:
        super().__init__(parent)
        self.index, self.layer = index, layer
        minus, plus = QToolButton(), QToolButton()
        minus.setText("−")
        plus.setText("+")
        minus.setToolTip(f"Remove a neuron from hidden layer {index + 1}")
        plus.setToolTip(f"Add a neuron to hidden layer {index + 1}")
        minus.setEnabled(layer.units > 1)
        plus.setEnabled(layer.units < MAX_UNITS_BUTTON)
        minus.clicked.connect(self._on_minus)
        plus.clicked.connect(self._on_plus)
        self.count = QLabel(str(layer.units))
        self.count.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.count.setToolTip(f"{layer.units} neuron{'s' if layer.units != 1 else ''} in hidden layer {index + 1}"
                              f"{f' (the first {MAX_SHOWN} are drawn)' if layer.units > MAX_SHOWN else ''}")
        self.activation = QComboBox()
        self.activation.addItems([a for a in ACTIVATIONS])
        self.activation.setCurrentText(layer.activation)
        self.activation.setToolTip(f"Activation function of hidden layer {index + 1}")
        self.activation.currentTextChanged.connect(self._on_activation)
        self.dropout = QDoubleSpinBox()
        self.dropout.setRange(0.0, 0.9)
        self.dropout.setSingleStep(0.1)
        self.dropout.setDecimals(2)
        self.dropout.setValue(layer.dropout)
        self.dropout.setToolTip("Dropout: the share of this layer's outputs zeroed at random during training")
        self.dropout.setKeyboardTracking(False)
        self.dropout.valueChanged.connect(self._on_dropout)
        self.bn = QCheckBox("BN")
        self.bn.setChecked(layer.batch_norm)
        self.bn.setToolTip("Batch normalization after this layer")
        self.bn.toggled.connect(self._on_bn)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(2)
        row = QHBoxLayout()
        row.addWidget(minus)
        row.addWidget(self.count, 1)
        row.addWidget(plus)
        grid.addLayout(row, 0, 0, 1, 2)
        grid.addWidget(self.activation, 1, 0, 1, 2)
        grid.addWidget(self.dropout, 2, 0)
        grid.addWidget(self.bn, 2, 1)
        self.activation.setMinimumWidth(40)
        self.dropout.setMinimumWidth(40)

    def _emit(self, layer: Layer) -> None:
        self.changed.emit(self.index, layer)

    @Slot()
    def _on_minus(self) -> None:
        self._emit(replace(self.layer, units=self.layer.units - 1))

    @Slot()
    def _on_plus(self) -> None:
        self._emit(replace(self.layer, units=self.layer.units + 1))

    @Slot(str)
    def _on_activation(self, name: str) -> None:
        self._emit(replace(self.layer, activation=name))

    @Slot(float)
    def _on_dropout(self, p: float) -> None:
        self._emit(replace(self.layer, dropout=round(p, 2)))

    @Slot(bool)
    def _on_bn(self, on: bool) -> None:
        self._emit(replace(self.layer, batch_norm=on))


class _Body(QWidget):
    """The scrolled area's content: places headers and canvas whenever the scroll area resizes it."""

    def __init__(self, view: NetworkView) -> None:
        super().__init__()
        self.view = view

    def resizeEvent(self, event: QResizeEvent) -> None:
        self.view._place()


class NetworkView(QWidget):
    """Header row of layer controls over the canvas; edits come out as `stack_edited` / `features_edited`."""

    stack_edited = Signal(object)  # Stack
    features_edited = Signal(object)  # tuple of feature names

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
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
        self.canvas = NetworkCanvas(self)
        self.canvas.setParent(self.body)
        self.canvas.feature_clicked.connect(self._on_feature_clicked)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setWidget(self.body)
        self.scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.scroll, 1)
        self._feature_images = self._make_feature_images()
        self._probe_key: tuple[int, int] = (-1, -1)
        controller.spec_changed.connect(self._on_spec)
        controller.frame.connect(self._on_frame)
        self._on_spec()

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
    def _on_spec(self) -> None:
        spec = self.controller.spec
        self.stack = from_model(spec.model)
        self.enabled_features = tuple(spec.dataset.features)
        info = self.controller.trainer.info
        self.dense_ids = [n for n in info.order if info.nodes[n].op == "dense"]
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
        self._probe_key = (-1, -1)
        self._place()
        self._on_frame()

    @Slot()
    def _on_frame(self) -> None:
        snap = self.controller.snapshot
        if snap is None or any(n not in snap.probes for n in ("neurons", "boundary", "weights")):
            return
        key = (snap.run_id, snap.probes["boundary"].step)
        if key == self._probe_key or (not self.isVisible() and self.canvas.columns):
            return
        self._probe_key = key
        neurons, weights = snap.probes["neurons"].arrays, snap.probes["weights"].arrays
        cols = [Column("input", len(ALL_FEATURES), self._feature_images, [], [FEATURE_LABELS[f] for f in ALL_FEATURES])]
        for dense in self.dense_ids[:-1]:
            acts = neurons.get(dense)
            if acts is None:
                continue
            shown = acts[:MAX_SHOWN]
            # Bounded activations keep their natural ±1 scale; unbounded ones (ReLU, …) scale per neuron.
            scale = np.maximum(np.nan_to_num(np.abs(shown)).max(axis=(1, 2), keepdims=True), 1.0)
            cols.append(Column(dense, acts.shape[0], to_qimages(diverging_rgb(shown / scale)), [], []))
        out = output_rgb(snap.probes["boundary"].arrays["output"], output_activation(self.controller.spec))
        cols.append(Column("output", 1, to_qimages(out[None]), [], []))
        links: list[tuple[int, int, int, float]] = []
        index_of = {f: i for i, f in enumerate(ALL_FEATURES)}
        for c in range(len(cols) - 1):
            w = weights.get(self.dense_ids[c])
            if w is None:
                continue
            if c == 0:
                sources = [(index_of[f], k) for k, f in enumerate(self.enabled_features)]
            else:
                sources = [(u, u) for u in range(min(w.shape[1], MAX_SHOWN))]
            if c + 1 == len(cols) - 1:  # into the single output node: the strongest of its units' weights
                strongest = w[np.abs(w).argmax(axis=0), np.arange(w.shape[1])]
                links.extend((c, u, 0, float(strongest[k])) for u, k in sources)
            else:
                links.extend((c, u, v, float(w[v, k])) for v in range(min(w.shape[0], MAX_SHOWN)) for u, k in sources)
        self.canvas.columns, self.canvas.links = cols, links
        self.canvas.layout_columns()

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
            text += f"\nbias {bias[k]:+.4f}"
            acts = probes["neurons"].arrays[col.node][k]
            text += f"\noutput over the plane: {float(acts.min()):+.3f} … {float(acts.max()):+.3f}"
        return text

    def describe_link(self, c: int, u: int, v: int, w: float) -> str:
        src = self.canvas.columns[c]
        dst = self.canvas.columns[c + 1]
        a = FEATURE_LABELS[ALL_FEATURES[u]] if c == 0 else f"{src.node}[{u + 1}]"
        if dst.node != "output":
            return f"weight {a} → {dst.node}[{v + 1}]: {w:+.4f}"
        snap = self.controller.snapshot
        weights = snap.probes["weights"].arrays.get(self.dense_ids[c]) if snap and "weights" in snap.probes else None
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

    @Slot(str)
    def _on_feature_clicked(self, feature: str) -> None:
        on = list(self.enabled_features)
        if feature in on:
            if len(on) == 1:
                return  # at least one feature stays on
            on.remove(feature)
        else:
            on = [f for f in ALL_FEATURES if f in on or f == feature]
        self.features_edited.emit(tuple(on))

    def showEvent(self, event: QShowEvent) -> None:
        """Hidden views skip frames; catch up when shown."""
        super().showEvent(event)
        self._probe_key = (-1, -1)
        self._on_frame()
