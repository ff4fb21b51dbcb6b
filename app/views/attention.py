"""Attention: where each step of one example looks, per layer and head, as the network trains. A grid of small
maps (rows: the query steps, columns: the key steps they attend to, each row summing to 1) and the selected one
enlarged with the tokens on both axes; an encoder–decoder's decoder self-attention and cross-attention as
other sources. A vision transformer's enlarged panel lays the class token's attention over the picture's
patches. One forward pass of the chosen example per probe round (engine/probes/attention.py)."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import QCheckBox, QComboBox, QLabel, QSlider, QSpinBox, QSplitter, QWidget

from engine import SessionSpec, Snapshot
from engine.datasets import family_of
from engine.probes import ProbeRequest
from engine.probes.attention import ATTENTION_OPS, DATA_KINDS

from ..controller import Controller, RunInfo
from .attention_parts import SOURCE_TIPS, SOURCE_TITLES, BigMap, MapGrid, Maps, class_heat, overlay_rgba, sources
from .base import LiveView, control_row, text_label

EMPTY = "The attention maps appear at the next probe round (press play, or step once)."
NONE = "No attention here: this network has no self-attention, transformer or cross-attention block."
HOVER = "Hover the enlarged map for one weight."
SPLIT_TITLES = {"test": "test", "long": "longer (held out)"}


def has_attention(spec: SessionSpec) -> bool:
    """The network has an attention block and reads sequences or images (the Attention view applies)."""
    return (family_of(spec.dataset).kind in DATA_KINDS
            and any(node.op in ATTENTION_OPS for node in spec.model.nodes))


class AttentionView(LiveView):
    """One example's attention maps: every (layer, head) small, the selected one large."""

    probes = frozenset({"attention"})
    # The maps change little from one probe round to the next (about ten a second), and each redraw repaints
    # every small map: time the training thread waits for.
    min_redraw_s = 0.25

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(controller, parent)
        self.setMinimumSize(300, 200)
        self.example = QSpinBox()
        self.example.setToolTip("Which example's attention to show (its index in the chosen set)")
        self.example.setMinimumWidth(70)
        self.split = QComboBox()
        self.split.setToolTip("The test sequences, at the training length, or the longer held-out ones: does "
                              "the attention pattern carry over to lengths never trained on?")
        self.source = QComboBox()
        self.source.setToolTip("Which attention to show: the encoder's self-attention, or an encoder–decoder's "
                               "decoder self-attention or cross-attention (hover an entry for what it means)")
        self.source.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.matrix = QCheckBox("matrix")
        self.matrix.setToolTip("Vision transformer: enlarge the selected head's whole step × step matrix instead "
                               "of the class token's attention laid over the picture")
        self.caption = text_label(EMPTY, rich=True, wrap=True)
        self.grid = MapGrid()
        self.big = BigMap(self._on_hover)
        self.big.setToolTip("The selected head enlarged: each row is one query step's attention over the key "
                            "steps, summing to 1")
        self.readout = text_label(HOVER)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.grid)
        split.addWidget(self.big)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        split.setChildrenCollapsible(False)
        self.split_label = QLabel("set")
        self.split_label.setToolTip(self.split.toolTip())
        self.source_label = QLabel("source")
        self.source_label.setToolTip(self.source.toolTip())
        row = control_row("example", self.example, self.split_label, self.split, self.source_label, self.source,
                          self.matrix)
        self.column(row, self.caption, (split, 1), self.readout)
        self.arrays: dict[str, np.ndarray] = {}
        self.maps: Maps | None = None
        self._structure: tuple[object, ...] = ()
        self.example.valueChanged.connect(self._ask)
        self.split.currentIndexChanged.connect(self._on_split)
        self.source.currentIndexChanged.connect(self.redraw)
        self.matrix.toggled.connect(self.redraw)
        self.grid.picked.connect(self._on_pick)
        controller.sample_changed.connect(self._follow_sample)

    def toggles(self) -> dict[str, QCheckBox]:
        return {"matrix": self.matrix}

    def choices(self) -> dict[str, QComboBox | QSlider]:
        return {"split": self.split, "source": self.source}

    # --- the request -------------------------------------------------------------------------------

    def request(self) -> ProbeRequest:
        return ProbeRequest(sample=self.example.value(), split=self.split.currentData() or "test")

    @Slot()
    def _ask(self) -> None:
        self.controller.ask_probe("attention", self.request())

    @Slot()
    def _on_split(self) -> None:
        self._set_range()
        self._ask()

    def _set_range(self) -> None:
        """The example box spans the chosen set."""
        if self.run is None:
            return
        data = self.run.data
        x = data.x_long if self.split.currentData() == "long" and data.x_long is not None else data.x_test
        self.example.setRange(0, max(len(x) - 1, 0))

    @Slot()
    def _follow_sample(self) -> None:
        """The selected test image (Samples view) is the example shown, on the test set."""
        if self.split.currentData() in (None, "test"):
            self.example.setValue(self.controller.sample)

    def on_run(self, run: RunInfo) -> None:
        keep = self.split.currentData()
        self.split.blockSignals(True)
        self.split.clear()
        for key in ("test", "long") if run.data.x_long is not None else ("test",):
            self.split.addItem(SPLIT_TITLES[key], key)
        self.split.setCurrentIndex(max(self.split.findData(keep), 0))
        self.split.blockSignals(False)
        long = self.split.count() > 1
        self.split.setVisible(long)
        self.split_label.setVisible(long)
        self.source.blockSignals(True)
        self.source.clear()  # filled from the first maps: which sources there are
        self.source.blockSignals(False)
        self.source.setVisible(False)
        self.source_label.setVisible(False)
        self.matrix.setVisible(any(n.op == "patch_embedding" for n in run.nodes.values()))
        self.arrays, self.maps, self._structure = {}, None, ()
        self.grid.build((), ())
        self.caption.setText(EMPTY if "attention" in run.probes else NONE)
        self.readout.setText(HOVER)
        self.example.blockSignals(True)
        self._set_range()
        self.example.blockSignals(False)
        self._ask()

    # --- drawing -----------------------------------------------------------------------------------

    def _sources(self, found: dict[str, Maps]) -> None:
        """The source box offers the sources the network has (shown only when there is a choice)."""
        keys = [self.source.itemData(i) for i in range(self.source.count())]
        if keys == list(found):
            return
        keep = self.source.currentData()
        self.source.blockSignals(True)
        self.source.clear()
        for key in found:
            self.source.addItem(SOURCE_TITLES[key], key)
            self.source.setItemData(self.source.count() - 1, SOURCE_TIPS[key], Qt.ItemDataRole.ToolTipRole)
        self.source.setCurrentIndex(max(self.source.findData(keep), 0))
        self.source.blockSignals(False)
        self.source.setVisible(len(found) > 1)
        self.source_label.setVisible(len(found) > 1)

    def draw(self, snap: Snapshot | None) -> None:
        assert snap is not None
        a = snap.probes["attention"].arrays
        self.arrays = a
        found = sources(a)
        self._sources(found)
        m = found.get(self.source.currentData())
        if m is None:
            self.maps = None
            self.grid.build((), ())
            self._structure = ()
            self.caption.setText("This example has no attention maps to show.")
            return
        self.maps = m
        structure = (m.key, m.layers, m.heads, m.weights.shape[2:])
        if structure != self._structure:
            same_layers = bool(self._structure) and self._structure[:2] == structure[:2]
            self._structure = structure
            self.grid.build(m.layers, m.heads)
            li, h = self.grid.selected
            # a new network starts on its last layer, whose heads show the task's pattern (the mirror, say)
            li = min(li, len(m.layers) - 1) if same_layers else len(m.layers) - 1
            self.grid.selected = (-1, -1)
            self.grid.select(li, min(h, m.heads[li] - 1))
        self.grid.set_maps(m.weights)
        self.grid.set_labels(m.rows, m.cols)
        self._draw_big()

    @Slot(int, int)
    def _on_pick(self, li: int, h: int) -> None:
        if self.maps is not None:
            self._draw_big()

    def vit(self) -> bool:
        """The enlarged panel lays the class token's attention over the picture (a vision transformer's
        encoder, unless the whole matrix is asked for)."""
        m = self.maps
        return (m is not None and m.key == "encoder" and "patch_grid" in self.arrays
                and not self.matrix.isChecked())

    def _draw_big(self) -> None:
        m, a = self.maps, self.arrays
        assert m is not None
        li, h = self.grid.selected
        w = m.weights[li, h]
        where = self._where()
        name = f"<b>{m.layers[li]} · head {h + 1}</b>"
        if self.vit():
            grid = (int(a["patch_grid"][0]), int(a["patch_grid"][1]))
            cls = bool(int(a["class_token"]))
            rgba, top = overlay_rgba(class_heat(w, grid, cls), a["image"].shape)
            self.big.show_overlay(a["image"], rgba, top)
            what = "the class token's attention over the" if cls else "the mean attention each patch gets, over the"
            text = (f"{where}: {name}, {what} {grid[0]}×{grid[1]} patches, laid over the picture (brightest: "
                    f"{top:.2f}). Click a small map for another head.")
        else:
            rows, cols = SOURCE_AXES["patches" if "patch_grid" in a and m.key == "encoder" else m.key]
            self.big.show_matrix(w, m.rows, m.cols, rows, cols)
            text = (f"{where}: {name}, {SOURCE_TITLES[m.key]}. Row t: where step t looks (its weights over the "
                    f"columns sum to 1). Click a small map for another head.")
        if text != self.caption.text():
            self.caption.setText(text)

    def _where(self) -> str:
        a = self.arrays
        split = str(a["split"]) if "split" in a else "test"
        sample = int(a["sample"]) if "sample" in a else 0
        what = {"test": "Test example", "long": "Longer held-out example", "train": "Training example"}[split]
        if "target" in a and a["target"].ndim == 0 and self.run is not None and "patch_grid" in a:
            return f"{what} {sample} (label {self.class_name(int(a['target']))})"
        return f"{what} {sample}"

    def cell_at(self, x: float, y: float) -> tuple[int, int] | None:
        """The enlarged map's (row, column) at view position (x, y): a query and key step, or a pixel."""
        if self.maps is None:
            return None
        shape = self.arrays["image"].shape if self.vit() else self.maps.weights.shape[2:]
        r, c = int(np.floor(y)), int(np.floor(x))
        return (r, c) if 0 <= r < shape[0] and 0 <= c < shape[1] else None

    def _on_hover(self, x: float, y: float) -> None:
        cell = self.cell_at(x, y)
        m = self.maps
        if cell is None or m is None:
            self.readout.setText(HOVER)
            return
        li, h = self.grid.selected
        w = m.weights[li, h]
        r, c = cell
        if self.vit():
            gh, gw = (int(v) for v in self.arrays["patch_grid"])
            side = self.arrays["image"].shape[0] // gh
            pr, pc = r // side, c // (self.arrays["image"].shape[1] // gw)
            heat = class_heat(w, (gh, gw), bool(int(self.arrays["class_token"])))
            self.readout.setText(f"patch {pr * gw + pc + 1} (row {pr + 1}, column {pc + 1}): {heat[pr, pc]:.3f}")
            return
        self.readout.setText(f"query step {r} “{m.rows[r]}” → key step {c} “{m.cols[c]}”: {w[r, c]:.3f}")


SOURCE_AXES = {"patches": ("query step (class token, patches) ↓", "key step →"),
               "encoder": ("query step (input) ↓", "key step (input) →"),
               "decoder": ("query step (decoder input) ↓", "key step (decoder input) →"),
               "cross": ("query step (decoder input) ↓", "key step (encoder input) →")}
