"""Typed editors generated from a pydantic model's fields (ranges, choices and tooltips come from the engine's
schema): the training panel's optimizer and schedule, a dataset family without an editor of its own, and the
graph editor's inspector all use them."""
from __future__ import annotations

import functools
import re
import types
from collections.abc import Callable
from contextlib import ExitStack
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types as at
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from PySide6.QtCore import QObject, QSignalBlocker
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLineEdit,
    QSpinBox,
    QWidget,
)

# Fields the engine leaves without a description (schedules, early stopping) still get a tooltip.
TOOLTIPS = {
    "every_epochs": "Multiply the learning rate by γ every this many epochs",
    "gamma": "Factor the learning rate is multiplied by",
    "total_epochs": "Epochs over which the cosine curve goes from the full learning rate to its minimum",
    "min_factor": "The smallest learning rate, as a fraction of the starting one",
    "warmup_epochs": "Epochs over which the learning rate rises linearly from 0",
    "patience": "Epochs without improvement of the validation loss (test loss for 2-D sets) before training stops",
    "min_delta": "Smallest decrease of the validation (or test) loss that counts as an improvement",
}
WIDE = ("lr", "eps", "min_delta")  # fields whose values span decades: shown as 1e-08 or 0.003


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


def tooltip(field: FieldInfo, name: str) -> str:
    """The field's description from the engine's schema, capitalised; a fallback for undescribed ones."""
    text = field.description or TOOLTIPS.get(name) or name.replace("_", " ")
    return text[:1].upper() + text[1:]


class SciSpinBox(QDoubleSpinBox):
    """A spin box that writes numbers as people do: 2, 0.9, 0.05, not 2.0000. With the default 15 decimals it
    is for values that span decades (ε down to 1e-12, learning rates): it shows them as 1e-08 or 0.003 and
    keeps every decimal, so a value read from the spec is written back unchanged. Typing takes "." or "," as
    the decimal point."""

    def __init__(self, decimals: int = 15) -> None:
        super().__init__()
        self.setDecimals(decimals)

    def textFromValue(self, value: float) -> str:
        if self.decimals() >= 15:
            return f"{value:.6g}"
        return f"{value:.{self.decimals()}f}".rstrip("0").rstrip(".")

    def valueFromText(self, text: str) -> float:
        try:
            return float(text.replace(",", "."))
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int) -> object:
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
        # Four decimals unless the value needs more: a spin box rounds what it is given to its decimals.
        wide = name in WIDE or (lo is not None and 0 < lo < 1e-4) or round(float(value), 4) != value
        box = SciSpinBox() if wide else SciSpinBox(4)
        small = 1e-12 if wide else 10 ** -box.decimals()
        box.setRange((lo or 0.0) + (small if open_lo else 0.0), hi if hi is not None else 1e6)
        box.setStepType(QAbstractSpinBox.StepType.AdaptiveDecimalStepType)
        box.setValue(float(value))
    box.setKeyboardTracking(False)  # apply when the user finishes typing, not on every digit
    box.setToolTip(tooltip(field, name))
    return box


def _optional(annotation: Any) -> tuple[Any, bool]:
    """The annotation without `| None`, and whether None was allowed."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def field_kind(field: FieldInfo) -> str | None:
    """Which widget edits a field: bool, choice, number, optional_int, sizes; None when none does."""
    ann, optional = _optional(field.annotation)
    if ann is bool:
        return "bool"
    if get_origin(ann) is Literal:
        return "choice"
    if ann in (int, float) and not optional:
        return "number"
    if ann is int:
        return "optional_int"
    if get_origin(ann) is tuple:
        item = get_args(ann)[0]
        if (get_args(item)[0] if get_origin(item) is Annotated else item) is int:
            return "sizes"
    return None


class SchemaField:
    """One field's widget, chosen from its type (check box, combo of its choices, ranged spin box, sizes as
    text), with its description as tooltip and a uniform read-out."""

    def __init__(self, model: type[BaseModel], name: str, value: Any, on_change: Callable[..., None]) -> None:
        info = model.model_fields[name]
        self.kind = field_kind(info)
        optional = _optional(info.annotation)[1]
        tip = tooltip(info, name)
        if self.kind == "bool":
            check = QCheckBox()
            check.setChecked(bool(value))
            check.toggled.connect(on_change)
            self.widget: QWidget = check
        elif self.kind == "choice":
            combo = QComboBox()
            for choice in get_args(_optional(info.annotation)[0]):
                combo.addItem(str(choice), choice)  # the item keeps the value itself (Literal[1, 2] are ints)
            combo.setCurrentIndex(combo.findData(value))
            combo.currentIndexChanged.connect(on_change)
            self.widget = combo
        elif self.kind == "number":
            self.widget = spin_for(model, name, value)
            self.widget.valueChanged.connect(on_change)  # type: ignore[attr-defined]
        elif self.kind == "optional_int":
            lo, hi, _ = bounds(list(info.metadata))
            spin = QSpinBox()
            spin.setRange(int(lo or 0) - 1, int(hi if hi is not None else 10**6))
            spin.setKeyboardTracking(False)
            spin.setSpecialValueText("auto")  # the lowest value stands for None
            spin.setValue(spin.minimum() if value is None else int(value))
            spin.valueChanged.connect(on_change)
            self.widget = spin
            tip += " (auto: " + (info.description or "the default") + ")"
        else:
            edit = QLineEdit("" if value is None else ", ".join(str(v) for v in value))
            edit.setPlaceholderText("from the dataset" if optional else "e.g. 1, 28, 28")
            edit.editingFinished.connect(on_change)
            self.widget = edit
            tip += "; sizes separated by commas" + ("; empty = from the dataset" if optional else "")
        self.widget.setToolTip(tip)

    def set_value(self, value: Any) -> None:
        """Show a value without emitting a change (the spec changed it: undo, redo, another control)."""
        w = self.widget
        with QSignalBlocker(w):
            if self.kind == "bool":
                w.setChecked(bool(value))  # type: ignore[attr-defined]
            elif self.kind == "choice":
                w.setCurrentIndex(w.findData(value))  # type: ignore[attr-defined]
            elif self.kind == "number":
                w.setValue(value)  # type: ignore[attr-defined]
            elif self.kind == "optional_int":
                w.setValue(w.minimum() if value is None else int(value))  # type: ignore[attr-defined]
            else:
                w.setText("" if value is None else ", ".join(str(v) for v in value))  # type: ignore[attr-defined]

    def value(self) -> Any:
        """The value shown; sizes that are not whole numbers raise ValueError."""
        w = self.widget
        if self.kind == "bool":
            return w.isChecked()  # type: ignore[attr-defined]
        if self.kind == "choice":
            return w.currentData()  # type: ignore[attr-defined]
        if self.kind == "number":
            return w.value()  # type: ignore[attr-defined]
        if self.kind == "optional_int":
            return None if w.value() == w.minimum() else w.value()  # type: ignore[attr-defined]
        text = w.text().strip()  # type: ignore[attr-defined]
        if not text:
            return None
        return [int(t) for t in re.split(r"[,\s×x]+", text) if t]


class ModelForm:
    """Rows of a form, one per editable field of a pydantic model. `data()` is the model shown with only the
    fields the user edited replaced: a spin box shows a value rounded to its decimals, so values are never
    read back from fields nobody touched (Adam's ε stays 1e-8 when the learning rate changes)."""

    def __init__(self, form: QFormLayout, on_change: Callable[[], None], skip: tuple[str, ...] = ("kind",),
                 after: QWidget | None = None) -> None:
        """`after` is the control whose row the fields follow: a form may hold rows below them, and a model
        without fields (a constant schedule) leaves no row of its own to put the next model's fields at."""
        self.form, self.on_change, self.skip, self.after = form, on_change, skip, after
        self.model: BaseModel | None = None
        self.fields: dict[str, SchemaField] = {}
        self.edits: dict[str, Any] = {}  # fields edited since the model was shown (kept while refused)

    def show(self, model: BaseModel) -> None:
        """Show a model: in place when it has the type shown (a spin box keeps its focus and auto-repeat), as
        new rows otherwise or when a box cannot show a value exactly. Forgets the user's edits."""
        self.edits = {}
        if type(model) is not type(self.model) or not self._shown_in_place(model):
            self._rebuild(model)
        self.model = model

    def _shown_in_place(self, model: BaseModel) -> bool:
        for name, f in self.fields.items():
            f.set_value(getattr(model, name))
        # A box built for 0.999 has four decimals; 0.99995 needs a box of its own.
        return all(f.kind != "number" or f.value() == getattr(model, name) for name, f in self.fields.items())

    def _rebuild(self, model: BaseModel) -> None:
        first = next(iter(self.fields.values()), None)
        if self.after is not None:
            row = self.form.getWidgetPosition(self.after)[0] + 1
        elif first is not None:
            row = self.form.getWidgetPosition(first.widget)[0]
        else:
            row = self.form.rowCount()
        for f in self.fields.values():
            self.form.removeRow(f.widget)  # only this form's rows: the layout may hold others too
        self.fields = {}
        for name, info in type(model).model_fields.items():
            if name in self.skip or field_kind(info) is None:
                continue
            f = SchemaField(type(model), name, getattr(model, name), functools.partial(self._on_field, name))
            self.form.insertRow(row, name.replace("_", " "), f.widget)
            row += 1
            self.fields[name] = f

    def _on_field(self, name: str, *_: Any) -> None:
        try:
            self.edits[name] = self.fields[name].value()
        except ValueError:  # sizes that are not numbers yet: nothing to apply
            return
        self.on_change()

    def data(self) -> dict[str, Any]:
        """The shown model's fields, with the user's edits over them."""
        assert self.model is not None
        return {**self.model.model_dump(), **self.edits}

    def widgets(self) -> dict[str, QWidget]:
        return {name: f.widget for name, f in self.fields.items()}


def blocked(widgets: list[QObject]) -> ExitStack:
    """Silence widgets' signals while panels refresh them from the spec (Qt's QSignalBlocker, for a list)."""
    stack = ExitStack()
    for w in widgets:
        stack.enter_context(QSignalBlocker(w))
    return stack
