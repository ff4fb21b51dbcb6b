"""Data panel: problem type, dataset thumbnails (drawn from the real generators), noise, split, batch size,
regenerate and input features."""
from __future__ import annotations

from typing import get_args

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal, Slot
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.datasets import make_dataset
from engine.datasets.toy2d import DOMAIN, FEATURE_LABELS, REGRESSION_DATASETS, Toy2D, Toy2DName
from engine.spec import SessionSpec
from engine.stack import fit_head

from ..colors import NEUTRAL, label_colors
from .forms import blocked

DATASET_NAMES: tuple[str, ...] = get_args(Toy2DName)
DATASET_TIPS = {
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
    """A small picture of a dataset, drawn from the engine's generator (no noise, fixed seed)."""
    spec = Toy2D(name=name, samples=400, classes=3 if name == "spiral3" else 2)
    data = make_dataset(spec)
    pts = np.concatenate([data.points_train, data.points_test])
    cols = label_colors(np.concatenate([data.y_train, data.y_test]), spec.task)
    img = np.empty((THUMB, THUMB, 3), dtype=np.uint8)
    img[:] = NEUTRAL
    ij = np.clip(((pts + DOMAIN) / (2 * DOMAIN) * (THUMB - 2)).astype(int), 0, THUMB - 2)
    for dy in (0, 1):
        for dx in (0, 1):
            img[THUMB - 2 - ij[:, 1] + dy, ij[:, 0] + dx] = cols  # x₂ points up
    return QImage(img.data, THUMB, THUMB, 3 * THUMB, QImage.Format.Format_RGB888).copy()


class DataPanel(QWidget):
    """Every edit emits a whole new spec; data changes reset the run (same seed)."""

    spec_edited = Signal(object)  # SessionSpec

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.spec: SessionSpec | None = None
        self.problem = QComboBox()
        self.problem.addItem("Classification", "classification")
        self.problem.addItem("Regression", "regression")
        self.problem.setToolTip("Classification predicts a class; regression predicts a number")
        self.group = QButtonGroup(self)
        self.group.setExclusive(True)
        self.buttons: dict[str, QToolButton] = {}
        grid = QGridLayout()
        grid.setSpacing(4)
        for name in DATASET_NAMES:
            b = QToolButton(self)  # parented: a hidden button must never become a window of its own
            b.setCheckable(True)
            b.setIcon(QIcon(QPixmap.fromImage(thumbnail(name))))
            b.setIconSize(QSize(THUMB, THUMB))
            b.setText(name)
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            b.setToolTip(DATASET_TIPS[name])
            b.setObjectName(f"dataset_{name}")
            self.group.addButton(b)
            self.buttons[name] = b
        self._grid = grid
        self.noise = QSlider(Qt.Orientation.Horizontal)
        self.noise.setRange(0, 50)
        self.noise.setTracking(False)
        self.noise.setToolTip("Noise added to the points, in percent")
        self.noise_label = QLabel()
        self.split = QSlider(Qt.Orientation.Horizontal)
        self.split.setRange(10, 90)
        self.split.setTracking(False)
        self.split.setToolTip("Share of the points used for training; the rest are the test set")
        self.split_label = QLabel()
        self.batch = QSpinBox()
        self.batch.setRange(1, 1024)
        self.batch.setKeyboardTracking(False)
        self.batch.setToolTip("Points per gradient step (minibatch size)")
        self.samples = QSpinBox()
        self.samples.setRange(10, 100_000)
        self.samples.setSingleStep(100)
        self.samples.setKeyboardTracking(False)
        self.samples.setToolTip("Number of points, train and test together")
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
            cb.toggled.connect(self._on_edit)

        data_box = QGroupBox("Data")
        form = QFormLayout(data_box)
        form.addRow("problem", self.problem)
        form.addRow(grid)
        row = QHBoxLayout()
        row.addWidget(self.noise, 1)
        row.addWidget(self.noise_label)
        form.addRow("noise", row)
        row = QHBoxLayout()
        row.addWidget(self.split, 1)
        row.addWidget(self.split_label)
        form.addRow("train share", row)
        form.addRow("points", self.samples)
        form.addRow("batch size", self.batch)
        form.addRow("", self.regenerate)
        layout = QVBoxLayout(self)
        layout.addWidget(data_box)
        layout.addWidget(feat_box)
        layout.addStretch(1)
        self.problem.currentIndexChanged.connect(self._on_problem)
        self.group.buttonClicked.connect(self._on_dataset)
        self.noise.valueChanged.connect(self._on_edit)
        self.split.valueChanged.connect(self._on_edit)
        self.noise.sliderMoved.connect(self._on_slider_moved)
        self.split.sliderMoved.connect(self._on_slider_moved)
        self.batch.valueChanged.connect(self._on_edit)
        self.samples.valueChanged.connect(self._on_edit)
        self.regenerate.clicked.connect(self._on_regenerate)

    def _controls(self) -> list:
        return [self.problem, self.group, self.noise, self.split, self.batch, self.samples, *self.features.values()]

    def _show_datasets(self, task: str) -> None:
        while self._grid.count():
            self._grid.takeAt(0)
        shown = [n for n in DATASET_NAMES if (n in REGRESSION_DATASETS) == (task == "regression")]
        for i, name in enumerate(shown):
            self._grid.addWidget(self.buttons[name], i // 4, i % 4)
        for name, b in self.buttons.items():  # after addWidget: reparenting hides a widget
            b.setVisible(name in shown)

    def set_spec(self, spec: SessionSpec) -> None:
        """Show a spec's data settings without emitting edits."""
        self.spec = spec
        ds, tr = spec.dataset, spec.training
        with blocked(self._controls()):
            self.problem.setCurrentIndex(self.problem.findData(ds.task))
            self._show_datasets(ds.task)
            self.buttons[ds.name].setChecked(True)
            self.noise.setValue(round(ds.noise))
            self.split.setValue(round(ds.train_fraction * 100))
            self.batch.setValue(tr.batch_size)
            self.samples.setValue(ds.samples)
            for f, cb in self.features.items():
                cb.setChecked(f in ds.features)
        self._on_slider_moved()

    @Slot()
    def _on_slider_moved(self) -> None:
        self.noise_label.setText(f"{self.noise.sliderPosition()} %")
        self.split_label.setText(f"{self.split.sliderPosition()} %")

    def _dataset(self, **changes: object) -> Toy2D:
        assert self.spec is not None
        return Toy2D.model_validate({**self.spec.dataset.model_dump(), **changes})

    def _emit(self, spec: SessionSpec) -> None:
        self.spec_edited.emit(spec)

    @Slot()
    def _on_problem(self) -> None:
        task = self.problem.currentData()
        name = "circle" if task == "classification" else "plane"
        self._switch(name)

    @Slot()
    def _on_dataset(self) -> None:
        b = self.group.checkedButton()
        if b is not None:
            self._switch(b.text())

    def _switch(self, name: str) -> None:
        if self.spec is None or name == self.spec.dataset.name:
            return
        # Each generator has its own natural size (500 points; 1,200 for regression, as TensorFlow Playground).
        data = {k: v for k, v in self.spec.dataset.model_dump().items() if k not in ("samples", "classes")}
        data |= {"name": name, "classes": 3 if name == "spiral3" else 2}
        self._emit(fit_head(self.spec, Toy2D.model_validate(data)))

    @Slot()
    def _on_regenerate(self) -> None:
        if self.spec is not None:
            self._emit(self.spec.model_copy(update={"dataset": self._dataset(seed=(self.spec.dataset.seed + 1) % 2**32)}))

    @Slot()
    def _on_edit(self) -> None:
        if self.spec is None:
            return
        self._on_slider_moved()
        feats = tuple(f for f, cb in self.features.items() if cb.isChecked())
        if not feats:
            self.set_spec(self.spec)  # at least one input stays on
            return
        ds = self._dataset(noise=float(self.noise.value()), train_fraction=self.split.value() / 100,
                           samples=self.samples.value(), features=feats)
        training = self.spec.training.model_copy(update={"batch_size": self.batch.value()})
        self._emit(self.spec.model_copy(update={"dataset": ds, "training": training}))
