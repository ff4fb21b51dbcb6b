"""Typed editors generated from a pydantic model's fields (ranges come from the engine's schema)."""
from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import annotated_types as at
from pydantic import BaseModel
from PySide6.QtCore import QObject, QSignalBlocker
from PySide6.QtWidgets import QAbstractSpinBox, QDoubleSpinBox, QFormLayout, QSpinBox

TOOLTIPS = {
    "lr": "Learning rate: the step size of each update",
    "momentum": "Momentum: how much of the previous update carries into the next (0 = none)",
    "beta1": "Adam β₁: decay of the running mean of gradients",
    "beta2": "Adam β₂: decay of the running mean of squared gradients",
    "eps": "ε: added to the denominator for numerical stability",
    "alpha": "RMSprop α: decay of the running mean of squared gradients",
    "every_epochs": "Multiply the learning rate by γ every this many epochs",
    "gamma": "Factor the learning rate is multiplied by",
    "total_epochs": "Epochs over which the cosine curve goes from the full learning rate to its minimum",
    "min_factor": "The smallest learning rate, as a fraction of the starting one",
    "warmup_epochs": "Epochs over which the learning rate rises linearly from 0",
    "patience": "Epochs without improvement of the test loss before training stops",
    "min_delta": "Smallest decrease of the test loss that counts as an improvement",
}


def bounds(meta: list[Any]) -> tuple[float | None, float | None, bool]:
    lo = hi = None
    open_lo = False
    for m in meta:
        if isinstance(m, at.Ge):
            lo = float(m.ge)
        elif isinstance(m, at.Gt):
            lo, open_lo = float(m.gt), True
        elif isinstance(m, at.Le):
            hi = float(m.le)
        elif isinstance(m, at.Lt):
            hi = float(m.lt)
    return lo, hi, open_lo


class SciSpinBox(QDoubleSpinBox):
    """A spin box for values that span decades (ε down to 1e-12, learning rates): shows them as 1e-08 or
    0.003, keeps 15 decimals so a value read from the spec is written back unchanged."""

    def __init__(self) -> None:
        super().__init__()
        self.setDecimals(15)

    def textFromValue(self, value: float) -> str:
        return f"{value:.6g}"

    def valueFromText(self, text: str) -> float:
        try:
            return float(text.replace(",", "."))
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int) -> object:
        from PySide6.QtGui import QValidator

        try:
            float(text.replace(",", "."))
        except ValueError:
            ok = text.strip() in ("", "-", "+", ".") or text.lower().rstrip("+-").endswith("e")
            return QValidator.State.Intermediate if ok else QValidator.State.Invalid, text, pos
        return QValidator.State.Acceptable, text, pos


def spin_for(model: type[BaseModel], name: str, value: float) -> QAbstractSpinBox:
    """A spin box bounded by the field's constraints, showing `value`."""
    field = model.model_fields[name]
    lo, hi, open_lo = bounds(list(field.metadata))
    if field.annotation is int:
        box: QAbstractSpinBox = QSpinBox()
        box.setRange(int(lo if lo is not None else 0) + (1 if open_lo else 0), int(min(hi or 10**6, 2**31 - 1)))
        box.setValue(int(value))
    else:
        wide = name in ("lr", "eps", "min_delta") or (lo is not None and 0 < lo < 1e-4)
        box = SciSpinBox() if wide else QDoubleSpinBox()
        if not wide:
            box.setDecimals(4)
        small = 1e-12 if wide else 10 ** -box.decimals()
        box.setRange((lo or 0.0) + (small if open_lo else 0.0), hi if hi is not None else 1e6)
        box.setStepType(QAbstractSpinBox.StepType.AdaptiveDecimalStepType)
        box.setValue(float(value))
    box.setKeyboardTracking(False)  # apply when the user finishes typing, not on every digit
    box.setToolTip(TOOLTIPS.get(name, field.description or name))
    return box


def fill_form(form: QFormLayout, value: BaseModel, on_change: Callable[[], None],
              skip: tuple[str, ...] = ("kind",)) -> dict[str, QAbstractSpinBox]:
    """Replace the form's rows with one spin box per numeric field of `value`."""
    while form.rowCount():
        form.removeRow(0)
    boxes: dict[str, QAbstractSpinBox] = {}
    for name in type(value).model_fields:
        v = getattr(value, name)
        if name in skip or isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        box = spin_for(type(value), name, v)
        box.valueChanged.connect(on_change)
        form.addRow(name.replace("_", " "), box)
        boxes[name] = box
    return boxes


def read_form(boxes: dict[str, QAbstractSpinBox]) -> dict[str, float]:
    return {name: box.value() for name, box in boxes.items()}  # type: ignore[attr-defined]


def blocked(widgets: list[QObject]) -> ExitStack:
    """Silence widgets' signals while panels refresh them from the spec (Qt's QSignalBlocker, for a list)."""
    stack = ExitStack()
    for w in widgets:
        stack.enter_context(QSignalBlocker(w))
    return stack
