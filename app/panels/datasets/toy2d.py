"""The 2-D toy problems' editor: problem type, a thumbnail per problem (drawn by the engine from the real
generators), noise, split, points, regenerate and input features."""
from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Slot
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QGridLayout,
    QGroupBox,
    QPushButton,
    QToolButton,
    QWidget,
)

from engine.datasets import FAMILIES, DataFamily
from engine.datasets.toy2d import FEATURE_LABELS, Toy2D
from engine.spec import SessionSpec
from engine.stack import fit_head

from ..forms import blocked
from .base import SampledEditor, qimage, register_editor

TIPS = {
    "circle": "Circle: one class inside a ring of the other",
    "xor": "Exclusive or: the quadrants alternate classes",
    "gauss": "Two Gaussian clouds",
    "spiral": "Two interleaved spirals: needs depth or engineered features",
    "moons": "Two interleaving half-moons",
    "spiral3": "Three interleaved spirals: three classes, softmax output",
    "plane": "Regression: a tilted plane",
    "multigauss": "Regression: six Gaussian bumps of either sign",
}
THUMB = 48


def thumbnail(name: str) -> QImage:
    """A small picture of a named problem, drawn by the engine from its generator (no noise, fixed seed)."""
    family = FAMILIES["toy2d"]
    return qimage(family.thumbnail(family.variants()[name], THUMB))


@register_editor("toy2d")
class Toy2DEditor(SampledEditor):
    """Every edit emits a whole new spec; data changes reset the run (same seed)."""

    batch_row = 5  # after the points, above Regenerate

    def __init__(self, family: DataFamily, parent: QWidget | None = None) -> None:
        super().__init__(family, "Noise added to the points, in percent",
                         "Share of the points used for training; the rest are the test set",
                         "Number of points, train and test together", parent)
        self.variants: dict[str, Toy2D] = family.variants()
        self.problem = QComboBox()
        self.problem.addItem("Classification", "classification")
        self.problem.addItem("Regression", "regression")
        self.problem.setToolTip("Classification predicts a class; regression predicts a number")
        self.group = QButtonGroup(self)
        self.group.setExclusive(True)
        self.buttons: dict[str, QToolButton] = {}
        self._grid = QGridLayout()
        self._grid.setSpacing(4)
        for name in self.variants:
            b = QToolButton(self)  # parented: a hidden button must never become a window of its own
            b.setCheckable(True)
            b.setIcon(QIcon(QPixmap.fromImage(thumbnail(name))))
            b.setIconSize(QSize(THUMB, THUMB))
            b.setText(name)
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            b.setToolTip(TIPS.get(name, name))
            b.setObjectName(f"dataset_{name}")
            self.group.addButton(b)
            self.buttons[name] = b
        self.samples.setRange(10, 100_000)
        self.regenerate = QPushButton("Regenerate")
        self.regenerate.setToolTip("Draw a new sample of points from the same distribution (new data seed)")
        self.features: dict[str, QCheckBox] = {}
        feat_box = QGroupBox("Input features")
        feat_grid = QGridLayout(feat_box)
        for i, (f, label) in enumerate(FEATURE_LABELS.items()):
            cb = QCheckBox(label)
            cb.setToolTip(f"Feed {label} to the network as an input")
            self.features[f] = cb
            feat_grid.addWidget(cb, i // 4, i % 4)
            cb.toggled.connect(self._on_features)

        form = self.form
        form.addRow("problem", self.problem)
        form.addRow(self._grid)
        self.add_sample_rows("points")
        form.addRow("", self.regenerate)
        self.column.addWidget(feat_box)
        self.problem.currentIndexChanged.connect(self._on_problem)
        self.group.buttonClicked.connect(self._on_dataset)
        self.regenerate.clicked.connect(self._on_regenerate)

    def _controls(self) -> list:
        return [self.problem, self.group, self.noise, self.split, self.samples, *self.features.values()]

    def _show_datasets(self, task: str) -> None:
        while self._grid.count():
            self._grid.takeAt(0)
        shown = [n for n, v in self.variants.items() if v.task == task]
        for i, name in enumerate(shown):
            self._grid.addWidget(self.buttons[name], i // 4, i % 4)
        for name, b in self.buttons.items():  # after addWidget: reparenting hides a widget
            b.setVisible(name in shown)

    def set_spec(self, spec: SessionSpec) -> None:
        super().set_spec(spec)
        ds = spec.dataset
        with blocked(self._controls()):
            self.problem.setCurrentIndex(self.problem.findData(ds.task))
            self._show_datasets(ds.task)
            self.buttons[ds.name].setChecked(True)
            self.noise.setValue(round(ds.noise))
            self.split.setValue(round(ds.train_fraction * 100))
            self.samples.setValue(ds.samples)
            for f, cb in self.features.items():
                cb.setChecked(f in ds.features)
        self._on_slider_moved()

    @Slot()
    def _on_problem(self) -> None:
        task = self.problem.currentData()
        self._switch(next(n for n, v in self.variants.items() if v.task == task))

    @Slot()
    def _on_dataset(self) -> None:
        b = self.group.checkedButton()
        if b is not None:
            self._switch(b.text())

    def _switch(self, name: str) -> None:
        if self.spec is None or name == self.spec.dataset.name:
            return
        # Each problem brings its natural size and class count (its variant's); the user's other settings stay.
        keep = {k: v for k, v in self.spec.dataset.model_dump().items() if k not in ("name", "samples", "classes")}
        self.spec_edited.emit(fit_head(self.spec, Toy2D.model_validate(self.variants[name].model_dump() | keep)))

    @Slot()
    def _on_regenerate(self) -> None:
        if self.spec is not None:
            self._edit(seed=(self.spec.dataset.seed + 1) % 2**32)

    @Slot()
    def _on_features(self) -> None:
        if self.spec is None:
            return
        feats = tuple(f for f, cb in self.features.items() if cb.isChecked())
        if not feats:
            self.set_spec(self.spec)  # at least one input stays on
            return
        self._edit(features=feats)
