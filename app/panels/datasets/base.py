"""Family editors: what the data panel shows below its batch size for the current dataset family. A family
registers an editor of its own here; any other gets `SchemaEditor`, built from its spec model's fields."""
from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np
from pydantic import ValidationError
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QFormLayout, QGroupBox, QHBoxLayout, QLabel, QSlider, QSpinBox, QVBoxLayout, QWidget

from engine.datasets import DataFamily
from engine.errors import format_pydantic
from engine.spec import SessionSpec
from engine.stack import fit_head

from ..forms import ModelForm


def qimage(rgb: np.ndarray) -> QImage:
    """A (H, W, 3) uint8 picture (a family's thumbnail) as an image Qt owns."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()  # copy: rgb is freed after


class FamilyEditor(QWidget):
    """Edits one family's dataset spec in a "Data" box (the panel adds its own rows to `form`); every edit
    emits a whole new session spec."""

    spec_edited = Signal(object)  # SessionSpec
    batch_row = -1  # where the data panel puts its batch-size row in `form` (-1: last)

    def __init__(self, family: DataFamily, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.family = family
        self.spec: SessionSpec | None = None
        self.box = QGroupBox("Data")
        self.form = QFormLayout(self.box)
        self.column = QVBoxLayout(self)  # the Data box, then any sections a family adds below it
        self.column.setContentsMargins(0, 0, 0, 0)
        self.column.addWidget(self.box)

    def set_spec(self, spec: SessionSpec) -> None:
        """Show a spec whose dataset is of this family, without emitting edits."""
        self.spec = spec


class SampledEditor(FamilyEditor):
    """A family whose sets have noise, a train share and a size: the sliders, spin box and edits they share.
    Subclasses name what they sample in the tooltips and lay the controls out in `form`."""

    def __init__(self, family: DataFamily, noise_tip: str, split_tip: str, samples_tip: str,
                 parent: QWidget | None = None) -> None:
        super().__init__(family, parent)
        self.noise = QSlider(Qt.Orientation.Horizontal)
        self.noise.setRange(0, 50)
        self.noise.setToolTip(noise_tip)
        self.noise_label = QLabel()
        self.split = QSlider(Qt.Orientation.Horizontal)
        self.split.setRange(10, 90)
        self.split.setToolTip(split_tip)
        self.split_label = QLabel()
        for slider in (self.noise, self.split):
            slider.setTracking(False)  # one edit (a new run) when the slider is let go, not one per pixel
            slider.sliderMoved.connect(self._on_slider_moved)
        self.noise.valueChanged.connect(self._on_noise)
        self.split.valueChanged.connect(self._on_split)
        self.samples = QSpinBox()
        self.samples.setSingleStep(100)
        self.samples.setKeyboardTracking(False)
        self.samples.setToolTip(samples_tip)
        self.samples.valueChanged.connect(self._on_samples)

    def add_sample_rows(self, samples_label: str) -> None:
        """The noise, train share and size rows, in that order, at the end of `form`."""
        for label, slider, value in (("noise", self.noise, self.noise_label),
                                     ("train share", self.split, self.split_label)):
            row = QHBoxLayout()
            row.addWidget(slider, 1)
            row.addWidget(value)
            self.form.addRow(label, row)
        self.form.addRow(samples_label, self.samples)

    @Slot()
    def _on_slider_moved(self) -> None:
        self.noise_label.setText(f"{self.noise.sliderPosition()} %")
        self.split_label.setText(f"{self.split.sliderPosition()} %")

    def _edit(self, **changes: object) -> None:
        """Emit the spec with only these dataset fields changed (others are never read back from controls)."""
        if self.spec is not None:
            dataset = type(self.spec.dataset).model_validate({**self.spec.dataset.model_dump(), **changes})
            self.spec_edited.emit(self.spec.model_copy(update={"dataset": dataset}))

    @Slot(int)
    def _on_noise(self, value: int) -> None:
        self._on_slider_moved()
        self._edit(noise=float(value))

    @Slot(int)
    def _on_split(self, value: int) -> None:
        self._on_slider_moved()
        self._edit(train_fraction=value / 100)

    @Slot(int)
    def _on_samples(self, value: int) -> None:
        self._edit(samples=value)


E = TypeVar("E", bound=FamilyEditor)
EDITORS: dict[str, type[FamilyEditor]] = {}


def register_editor(kind: str) -> Callable[[type[E]], type[E]]:
    """Class decorator: the editor the data panel shows for the dataset family `kind`."""
    def add(cls: type[E]) -> type[E]:
        EDITORS[kind] = cls
        return cls
    return add


def editor_for(family: DataFamily) -> FamilyEditor:
    """The family's own editor, or one generated from its spec model."""
    return EDITORS.get(family.kind, SchemaEditor)(family)


class SchemaEditor(FamilyEditor):
    """A family without an editor of its own: one control per field of its spec model (ranged spin boxes,
    combos of the allowed values, check boxes), each with the field's description as tooltip."""

    def __init__(self, family: DataFamily, parent: QWidget | None = None) -> None:
        super().__init__(family, parent)
        self.box.setToolTip(family.doc)
        self.fields = ModelForm(self.form, self._on_edit)
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #b71c1c;")
        self.error.hide()
        self.column.addWidget(self.error)

    def set_spec(self, spec: SessionSpec) -> None:
        super().set_spec(spec)
        self.fields.show(spec.dataset)
        self.error.hide()

    @Slot()
    def _on_edit(self) -> None:
        assert self.spec is not None
        try:
            dataset = self.family.spec.model_validate(self.fields.data())
        except ValidationError as exc:  # a rule between fields: say why and keep the last valid spec
            self.error.setText(f"Not applied: {format_pydantic(exc)}")
            self.error.show()
            return
        self.error.hide()
        self.spec_edited.emit(fit_head(self.spec, dataset))  # the head follows the task and class count
