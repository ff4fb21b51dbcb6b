"""The controls above one hidden layer of the network view: neurons −/+, activation, dropout, batch norm."""
from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QToolButton,
    QWidget,
)

from engine.ops.activations import ACTIVATIONS
from engine.stack import Layer

MAX_SHOWN = 16  # neurons drawn per column; wider layers are allowed and say how many are hidden
MAX_UNITS_BUTTON = 256


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
        for i, entry in enumerate(ACTIVATIONS.values()):
            self.activation.addItem(entry.name)
            self.activation.setItemData(i, entry.doc, Qt.ItemDataRole.ToolTipRole)
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
