"""The network view, TensorFlow Playground style: columns of neurons, each a heatmap of its output over the
input plane, links coloured by the weight's sign and as thick as |w|; +/− for layers and neurons. Every edge of
the graph that carries a weight is drawn, so a skip connection (a residual add, a concat of an earlier layer)
arcs over the columns it skips. Hovering a neuron points the controller at it, for the output view to show it
large; clicking a link edits its weight in place."""
from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPointF, Qt, Signal, Slot
from PySide6.QtGui import QImage, QResizeEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QScrollArea, QToolButton, QWidget

from engine import EditWeight, EngineError, Snapshot
from engine.datasets import family_of
from engine.datasets.toy2d import DOMAIN, FEATURE_LABELS, features
from engine.probes import ProbeResult
from engine.probes.boundary import grid_points
from engine.stack import MAX_LAYERS, Layer, Stack, from_model

from ..colors import diverging_rgb, output_rgb
from ..controller import Controller, RunInfo
from ..export import export_widget
from .base import LiveView
from .layer_header import MAX_SHOWN, LayerHeader
from .network_canvas import COLUMN_W, Arc, Column, NetworkCanvas, to_qimages

ALL_FEATURES = tuple(FEATURE_LABELS)
HEADER_H = 84
FEATURE_GRID = 24


def unit_rows(w: np.ndarray, units: int) -> tuple[np.ndarray, int]:
    """For a dense weight (out, in): the row holding each unit's weight from each input (units, in), and the
    pieces per unit. A maxout layer has `units`·k rows, k consecutive pieces per unit; its link shows (and
    edits) the strongest piece."""
    k = max(1, w.shape[0] // max(units, 1))
    first = np.arange(units)[:, None] * k  # (units, 1)
    if k == 1:
        return np.broadcast_to(first, (units, w.shape[1])), 1
    pieces = np.abs(w[:units * k]).reshape(units, k, w.shape[1])  # (units, k, in)
    return first + pieces.argmax(axis=1), k


@dataclass(frozen=True)
class Feed:
    """Units of a drawn node (the input or a dense layer) that reach a dense layer's input vector from `offset`
    on, through unit-wise nodes and the merges in `via` (none for a plain chain)."""

    source: str
    offset: int
    via: tuple[str, ...]


def feeds(node: str, run: RunInfo, inputs: Mapping[str, Sequence[str]], drawn: Container[str]) -> list[Feed]:
    """Where the input vector of the dense layer `node` comes from, as drawn nodes and offsets. Unit-wise nodes
    (activations, dropout, norms) pass units through, an add gives each of its inputs the same units, a concat
    puts them side by side; any other node (one that reshapes or mixes units) ends the trail, and no link is
    drawn through it."""
    found: dict[tuple[str, int], Feed] = {}

    def walk(n: str, offset: int, via: tuple[str, ...]) -> None:
        if n in drawn:
            found.setdefault((n, offset), Feed(n, offset, via))
            return
        ins, info = inputs.get(n, ()), run.nodes[n]
        if info.op == "add":
            for p in ins:
                walk(p, offset, (*via, n))
        elif info.op == "concat" and len(info.shape) == 1:
            for p in ins:
                walk(p, offset, (*via, n))
                offset += run.nodes[p].shape[0]
        elif len(ins) == 1 and run.nodes[ins[0]].shape == info.shape:
            walk(ins[0], offset, via)

    for p in inputs.get(node, ()):
        walk(p, 0, ())
    return list(found.values())


@dataclass(frozen=True)
class LinkGroup:
    """The links one feed draws into one dense layer, rows `start`… of the canvas's link table: each shown
    source unit (at `inputs` in the layer's input vector) to each shown unit in `targets`, target-major; or, into
    the output's one thumbnail (`strongest`), one link per source unit showing the strongest output unit's
    weight."""

    node: str  # the dense layer whose weight matrix the links show
    feed: Feed
    start: int
    inputs: np.ndarray  # (a,) column of the weight matrix per drawn source unit
    targets: np.ndarray  # (b,) units drawn; [0] into the output
    strongest: bool

    @property
    def size(self) -> int:
        return len(self.inputs) * len(self.targets)


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
        self.canvas.unit_hovered.connect(self._on_unit_hovered)
        self.canvas.link_clicked.connect(self._on_link_clicked)
        self.canvas.editor.applied.connect(self._on_weight_entered)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setWidget(self.body)
        self.scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.column(top, (self.scroll, 1))
        self._feature_images = self._make_feature_images()
        self._pieces: dict[str, int] = {}  # linear pieces per unit of each drawn dense layer (maxout: k)
        self._nodes: list[str] = []  # per column, the node it draws (the output column: the last dense layer)
        self._features: tuple[str, ...] = ()  # the run's input features, in the input vector's order
        self._groups: list[LinkGroup] = []
        self._rows = np.zeros(0, dtype=np.intp)  # per link, the weight matrix row it shows (maxout, output)
        self._drawn_probes: dict[str, ProbeResult] = {}  # what the canvas shows, to redraw only what is new
        self._editing: tuple[str, tuple[int, int]] | None = None  # the parameter entry the editor is open on
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
        if family_of(spec.dataset).plane is None:
            return  # no input plane to draw neurons over: the window does not show this view (views.table)
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

    # --- building from the run ---------------------------------------------------------------------

    def on_run(self, run: RunInfo) -> None:
        """Lay out the run's network: a column per drawn node and a link table built from the graph's edges."""
        if family_of(run.dataset).plane is None:
            return
        self._features = tuple(run.dataset.features)
        dense = [n for n in run.order if run.nodes[n].op == "dense"]
        self._nodes = [next(n for n in run.order if run.nodes[n].op == "input"), *dense]
        column_of = {n: ci for ci, n in enumerate(self._nodes)}
        on = set(self._features)
        cols = [Column("input", len(ALL_FEATURES), len(ALL_FEATURES), [FEATURE_LABELS[f] for f in ALL_FEATURES],
                       [f not in on for f in ALL_FEATURES], list(self._feature_images))]
        for node in dense[:-1]:
            units = run.nodes[node].shape[0]
            cols.append(Column(node, units, min(units, MAX_SHOWN)))
        cols.append(Column("output", 1, 1))
        # The spec holds the edges in the order the graph takes its inputs (a concat's order matters).
        inputs: dict[str, list[str]] = {}
        for a, b in self.controller.spec.model.edges:
            inputs.setdefault(b, []).append(a)
        groups, ends, lanes = [], [], {}
        start = 0
        for node in dense:
            cd = column_of[node]
            for feed in feeds(node, run, inputs, column_of.keys()):
                cs = column_of[feed.source]
                if cs == 0:  # (thumbnail, index in the input vector) of each feature switched on
                    sources = [(ALL_FEATURES.index(f), k) for k, f in enumerate(self._features)]
                else:
                    sources = [(u, u) for u in range(cols[cs].shown)]
                strongest = cd == len(cols) - 1
                targets = np.arange(1 if strongest else cols[cd].shown)
                group = LinkGroup(node, feed, start, np.array([feed.offset + k for _u, k in sources], dtype=np.intp),
                                  targets, strongest)
                groups.append(group)
                ends += [(cs, u, cd, v) for v in targets.tolist() for u, _k in sources]
                start += group.size
                if cd > cs + 1:
                    merges = ", ".join(f"{n} ({run.nodes[n].op})" for n in feed.via)
                    lanes[(cs, cd)] = f"skip: {merges}" if merges else "skip"
        self._groups = groups
        self._rows = np.zeros(start, dtype=np.intp)
        self._pieces = {}
        self._drawn_probes = {}
        self._editing = None
        self.canvas.set_structure(cols, np.array(ends, dtype=np.intp).reshape(-1, 4), lanes)

    # --- drawing -----------------------------------------------------------------------------------

    def draw(self, snap: Snapshot | None) -> None:
        assert snap is not None and self.run is not None
        # Each probe round makes new result objects, also at the same step (a weight edited while paused):
        # redraw only the parts whose probe is new, and leave the canvas's picture alone if none is.
        new = {n: snap.probes[n] for n in self.probes if self._drawn_probes.get(n) is not snap.probes[n]}
        self._drawn_probes.update(new)
        if "neurons" in new:
            self._draw_neurons(new["neurons"].arrays)
        if "boundary" in new:
            out = output_rgb(new["boundary"].arrays["output"], self.run.output_activation, light=False)
            self.canvas.set_images(len(self._nodes) - 1, to_qimages(out[None]))
        if "weights" in new:
            self._draw_weights(new["weights"].arrays)
        if new:
            self.canvas.render_now()

    def _draw_neurons(self, neurons: Mapping[str, np.ndarray]) -> None:
        """Every hidden column's heatmaps, coloured in one go."""
        cols = [ci for ci, c in enumerate(self.canvas.columns[1:-1], 1) if c.node in neurons]
        if not cols:
            return
        shown = np.concatenate([neurons[self.canvas.columns[ci].node][:self.canvas.columns[ci].shown] for ci in cols])
        # Bounded activations keep their natural ±1 scale; unbounded ones (ReLU, …) scale per neuron.
        scale = np.maximum(np.nan_to_num(np.abs(shown)).max(axis=(1, 2), keepdims=True), 1.0)
        images = to_qimages(diverging_rgb(shown / scale))
        at = 0
        for ci in cols:
            n = self.canvas.columns[ci].shown
            self.canvas.set_images(ci, images[at:at + n])
            at += n

    def _draw_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        """Each link's weight, and which row of its weight matrix that is (so that a click edits that one)."""
        assert self.run is not None
        values = np.zeros(len(self._rows))
        per_node: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # a layer fed through an add has a group per input
        for g in self._groups:
            if g.node not in weights:
                continue
            if g.node not in per_node:
                w = np.nan_to_num(weights[g.node])
                unit_row, self._pieces[g.node] = unit_rows(w, self.run.nodes[g.node].shape[0])
                per_node[g.node] = w, unit_row
            w, unit_row = per_node[g.node]
            rows = unit_row[:, g.inputs]  # (units, a)
            if g.strongest:  # into the single output thumbnail: the strongest of its units' weights
                best = np.abs(w[rows, g.inputs]).argmax(axis=0)
                rows = rows[best, np.arange(len(g.inputs))][None, :]  # (1, a)
            else:
                rows = rows[g.targets]  # (b, a)
            self._rows[g.start:g.start + g.size] = rows.ravel()
            values[g.start:g.start + g.size] = w[rows, g.inputs].ravel()
        self.canvas.set_weights(values)

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
                each = ", ".join(f"{b:+.4f}" for b in bias[k * pieces:(k + 1) * pieces])
                text += f" (maxout of {pieces})\nbiases {each}"
            else:
                text += f"\nbias {bias[k]:+.4f}"
            acts = probes["neurons"].arrays[col.node][k]
            text += f"\noutput over the plane: {float(acts.min()):+.3f} … {float(acts.max()):+.3f}"
        return text

    def describe_link(self, row: int) -> str:
        g, _row, k = self._target(row)
        link = self.canvas.link(row)
        src = self._nodes[link.column]
        a = FEATURE_LABELS[ALL_FEATURES[link.src]] if link.column == 0 else f"{src}[{link.src + 1}]"
        if not g.strongest:
            pieces = self._pieces.get(g.node, 1)
            strongest = f" (the strongest of its {pieces} pieces)" if pieces > 1 else ""
            text = f"weight {a} → {g.node}[{link.dst + 1}]{strongest}: {link.weight:+.4f} — click to edit"
        else:
            snap = self.controller.snapshot
            weights = snap.probes["weights"].arrays.get(g.node) if snap and "weights" in snap.probes else None
            if weights is None or weights.shape[0] == 1:
                text = f"weight {a} → output: {link.weight:+.4f} — click to edit"
            else:
                each = ", ".join(f"{x:+.3f}" for x in weights[:, k])
                text = f"weights {a} → output units: {each} — click to edit the strongest"
        if isinstance(link, Arc):
            between = ", ".join(self._nodes[c] for c in range(link.column + 1, link.target))
            text += f"\na skip connection past {between}"
        if g.feed.via and self.run is not None:
            text += "\nthrough " + ", ".join(f"{n} ({self.run.nodes[n].op})" for n in g.feed.via)
        return text

    def _target(self, row: int) -> tuple[LinkGroup, int, int]:
        """The group of link `row`, and the (row, column) of its group's weight matrix the link shows."""
        g = next(g for g in reversed(self._groups) if g.start <= row)
        return g, int(self._rows[row]), int(g.inputs[(row - g.start) % len(g.inputs)])

    # --- pointing at a neuron, editing a weight -----------------------------------------------------

    def focus_of(self, column: int, unit: int) -> tuple[str, int] | None:
        """The neuron a thumbnail shows as the neurons probe names it, (node, unit); None for the output (the
        output view shows it already), for a feature switched off, and for nodes the probe has no map of."""
        if column < 0 or column == len(self._nodes) - 1:
            return None
        node = self._nodes[column]
        if column == 0:
            feature = ALL_FEATURES[unit]
            if feature not in self._features:
                return None
            unit = self._features.index(feature)
        snap = self.controller.snapshot
        mapped = snap is not None and "neurons" in snap.probes and node in snap.probes["neurons"].arrays
        return (node, unit) if mapped else None

    @Slot(int, int)
    def _on_unit_hovered(self, column: int, unit: int) -> None:
        self.controller.set_focus(self.focus_of(column, unit))

    @Slot(int, QPointF)
    def _on_link_clicked(self, row: int, pos: QPointF) -> None:
        g, r, k = self._target(row)
        self._editing = (f"layers.{g.node}.weight", (r, k))  # the graph module keeps its layers by node id
        self.canvas.editor.open(float(self.canvas.weights[row]), pos)

    @Slot(float)
    def _on_weight_entered(self, value: float) -> None:
        if self._editing is None:
            return
        param, index = self._editing
        try:
            self.controller.edit_weight(EditWeight(param, index, value))
        except EngineError as exc:
            self.canvas.editor.refuse(str(exc))
            return
        self.canvas.editor.hide()
        # Paused, the controller probes the edited model at once, at the same step: frame keys (probe steps)
        # do not change, so ask for the new results to be drawn.
        self.redraw()

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
