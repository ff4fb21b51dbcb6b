"""The inspector: typed editors for the selected block's parameters, generated from its op's schema."""
from __future__ import annotations

import functools
from typing import Any

from pydantic import ValidationError
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from engine.errors import format_pydantic
from engine.ops import OPS, fmt_shape
from engine.pretrained import describe, pretrained_names

from ..panels.forms import SchemaField
from .document import EditorDocument


class Inspector(QWidget):
    """Shows and edits one block; each change goes through the document's undo stack."""

    def __init__(self, doc: EditorDocument, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc = doc
        self.node_id = ""
        self.title = QLabel()
        self.title.setStyleSheet("font-weight: bold; font-size: 11pt;")
        self.doc_label = QLabel()
        self.doc_label.setWordWrap(True)
        self.form_host = QWidget()
        self.form = QFormLayout(self.form_host)
        self.form.setContentsMargins(0, 4, 0, 4)
        self.shapes = QLabel()
        self.shapes.setWordWrap(True)
        self.shapes.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.shapes.setToolTip("The shapes in and out of this block, and how the output size is computed")
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #b71c1c;")
        self.frozen = QCheckBox("Frozen")
        self.frozen.setToolTip("Keep this block's weights as they are: the optimizer skips them (fine-tuning a "
                               "trained body, say). Changing it starts the run over.")
        self.lr_mult = QDoubleSpinBox()
        self.lr_mult.setRange(0.0, 100.0)
        self.lr_mult.setDecimals(3)
        self.lr_mult.setSingleStep(0.1)
        self.lr_mult.setPrefix("lr × ")
        self.lr_mult.setToolTip("This block learns at the learning rate times this (1 = the same as the rest)")
        self.start = QComboBox()
        self.start.addItem("random weights", None)
        for name in pretrained_names():
            meta = describe(name)
            self.start.addItem(f"trained {name}", name)
            self.start.setItemData(self.start.count() - 1,
                                   f"{name}'s block of the same id, as trained for {meta.get('epochs', '?')} epochs "
                                   f"(test accuracy {meta.get('test_accuracy', '?')})", Qt.ItemDataRole.ToolTipRole)
        self.start.setToolTip("What this block starts from at each run and reset: random weights, or the block of "
                              "the same id in a trained network that ships with the app (transfer learning). "
                              "Changing it starts the run over.")
        self.training_row = QWidget()
        rows = QVBoxLayout(self.training_row)
        rows.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(self.frozen)
        row.addWidget(self.lr_mult)
        row.addStretch(1)
        start_row = QHBoxLayout()
        start_row.addWidget(QLabel("start from"))
        start_row.addWidget(self.start, 1)
        rows.addLayout(row)
        rows.addLayout(start_row)
        self.start.activated.connect(self._on_start)
        self.frozen.toggled.connect(self._on_training)
        self.lr_mult.valueChanged.connect(self._on_training)
        col = QVBoxLayout(self)
        for w in (self.title, self.doc_label, self.form_host, self.training_row, self.shapes, self.error):
            col.addWidget(w)
        col.addStretch(1)
        self.fields: dict[str, SchemaField] = {}
        self._form_key: tuple[str, str] | None = None
        self._edits: dict[str, Any] = {}  # edits not applied yet (refused), kept until the block changes
        doc.changed.connect(self.refresh)
        self.show_node("")

    def show_node(self, node_id: str) -> None:
        self.node_id = node_id
        self.refresh()

    def _show_training(self) -> None:
        """The block's frozen flag and learning-rate multiplier (blocks without weights have neither)."""
        node = self.doc.node(self.node_id) if self.node_id else {}
        weighted = bool(self.node_id) and self.doc.diagnosis.counts.get(self.node_id, 0) > 0
        self.training_row.setVisible(weighted)
        for w in (self.frozen, self.lr_mult, self.start):
            w.blockSignals(True)
        self.frozen.setChecked(bool(node.get("frozen", False)))
        self.lr_mult.setValue(float(node.get("lr_mult", 1.0)))
        index = self.start.findData(node.get("pretrained"))
        if index < 0:  # a name this app does not ship: shown, so that the user sees what the file asks for
            self.start.addItem(f"trained {node.get('pretrained')} (not shipped)", node.get("pretrained"))
            index = self.start.count() - 1
        self.start.setCurrentIndex(index)
        for w in (self.frozen, self.lr_mult, self.start):
            w.blockSignals(False)
        self.lr_mult.setEnabled(not self.frozen.isChecked())

    def _on_training(self, *_: Any) -> None:
        if self.node_id:
            self.doc.set_training(self.node_id, self.frozen.isChecked(), self.lr_mult.value())

    def _on_start(self, index: int) -> None:
        if self.node_id:
            self.doc.set_pretrained(self.node_id, self.start.itemData(index))

    def refresh(self) -> None:
        self._show_training()
        self._edits = {}
        ids = {n.id for n in self.doc.model.nodes}
        if self.node_id not in ids:
            self.node_id = ""
        if self.node_id and self._update_in_place():
            return
        while self.form.rowCount():
            self.form.removeRow(0)
        self.fields = {}
        self._form_key = None
        if not self.node_id:
            self.title.setText("No block selected")
            self.doc_label.setText("Select one block to edit its parameters. Drag layers in from the palette.")
            self.shapes.setText("")
            self.error.setText("")
            return
        node = self.doc.node(self.node_id)
        op = OPS.get(node["op"])
        self.title.setText(f"{self.node_id}  ({node['op']})")
        self.doc_label.setText(op.doc if op else "Unknown op: delete this block.")
        diag = self.doc.diagnosis
        self.error.setText(f"⚠ {diag.errors[self.node_id]}" if self.node_id in diag.errors else "")
        if op is None:
            return
        try:
            current = op.params.model_validate(node.get("params", {})).model_dump()
        except ValidationError:
            current = {**op.params().model_dump(), **node.get("params", {})}
        for name in op.params.model_fields:
            f = SchemaField(op.params, name, current.get(name), functools.partial(self._on_change, name))
            self.fields[name] = f
            self.form.addRow(name.replace("_", " "), f.widget)
        self._form_key = (self.node_id, node["op"])
        self.shapes.setText(self._shape_text(node, op))

    def _update_in_place(self) -> bool:
        """Refresh the same block's form without rebuilding it, so a spin box keeps focus and auto-repeat."""
        node = self.doc.node(self.node_id)
        op = OPS.get(node["op"])
        if op is None or self._form_key != (self.node_id, node["op"]):
            return False
        try:
            current = op.params.model_validate(node.get("params", {})).model_dump()
        except ValidationError:
            return False
        for name, f in self.fields.items():
            f.set_value(current.get(name))
        diag = self.doc.diagnosis
        self.error.setText(f"⚠ {diag.errors[self.node_id]}" if self.node_id in diag.errors else "")
        self.shapes.setText(self._shape_text(node, op))
        return True

    def _shape_text(self, node: dict[str, Any], op: Any) -> str:
        diag = self.doc.diagnosis
        srcs = [s for s in self.doc.slots(self.node_id) if s is not None]
        ins = [diag.shapes.get(s) for s in srcs]
        lines = []
        if srcs:
            lines.append("in: " + ", ".join(fmt_shape(s) if s is not None else "?" for s in ins))
        out = diag.shapes.get(self.node_id)
        lines.append("out: " + (fmt_shape(out) if out is not None else "?"))
        if out is not None and op.explain is not None and all(s is not None for s in ins):
            try:
                lines.append(op.explain(op.params.model_validate(node.get("params", {})), ins))
            except (ValidationError, ValueError, IndexError):
                pass
        if self.node_id in diag.counts:
            lines.append(f"{diag.counts[self.node_id]:,} parameters")
        return "\n".join(lines)

    def _on_change(self, name: str, *_: Any) -> None:
        # Only the edited parameters change: a spin box rounds what it shows, so untouched ones are not read back.
        node = self.doc.node(self.node_id)
        op = OPS[node["op"]]
        try:
            self._edits[name] = self.fields[name].value()
        except ValueError:
            self.error.setText("⚠ sizes must be whole numbers separated by commas")
            return
        try:
            params = op.params.model_validate({**node.get("params", {}), **self._edits})
        except ValidationError as exc:
            self.error.setText(f"⚠ not applied: {format_pydantic(exc)}")
            return
        self.doc.set_params(self.node_id, params.model_dump(mode="json", exclude_defaults=True))
