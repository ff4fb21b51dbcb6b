"""The images family's editor: a thumbnail per image set (drawn by the engine from the real data), noise, train
and validation shares, number of images and the data seed. Moving between digits (10 classes) and shapes (4) fits the model's
head to the new class count."""
from __future__ import annotations

import math
from functools import cache

import numpy as np
from PySide6.QtCore import QSize, Qt, Slot
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractButton,
    QButtonGroup,
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QSpinBox,
    QToolButton,
    QWidget,
)

from engine.datasets import FAMILIES, DataFamily, input_shape
from engine.datasets.images import N_DIGITS, SHAPES_SIZE, Images
from engine.spec import ModelSpec, SessionSpec
from engine.stack import fit_head, from_model

from ..forms import blocked
from .base import SampledEditor, qimage, register_editor

LABELS = {"digits": "digits", "shapes": "shapes", "shapes_clutter": "shapes + clutter"}
TIPS = {
    "digits": "scikit-learn's 1,797 handwritten digits, 8×8",
    "shapes": "circle, square, triangle, cross; 28×28, generated",
    "shapes_clutter": "the same shapes with the same distractor patch in every image: does the network look at it?",
}
THUMB = 72
MAX_SHAPES = 20_000  # Images.samples' upper bound
MIN_SAMPLES = 40  # Images.samples' lower bound
MAX_SEED = 2**31 - 1  # a QSpinBox holds a signed 32-bit int


@cache
def _thumbnail_rgb(name: str) -> np.ndarray:
    """The engine's picture of a named image set (its first images, no noise, seed 0); drawn once."""
    family = FAMILIES["images"]
    return family.thumbnail(family.variants()[name], THUMB)


def thumbnail(name: str) -> QImage:
    """A small picture of a named image set: a 3×3 grid of its first images with class-coloured frames."""
    return qimage(_thumbnail_rgb(name))


def max_samples(name: str) -> int:
    """How many images a set can have: every digit scikit-learn ships, or as many shapes as the spec allows."""
    return N_DIGITS if name == "digits" else MAX_SHAPES


def fit_model(spec: SessionSpec, dataset: Images) -> SessionSpec:
    """The spec moved to `dataset` with the head fitted by `fit_head`, as every family's editor does. The image
    presets are graphs rather than plain stacks (`fit_head` leaves those alone), so for a graph whose last block
    is a dense layer into a softmax output, that layer also gets one unit per class, and an input that declares
    its shape is given the new images' shape (8×8 digits, 28×28 shapes); an autoencoder's picture follows the
    new size (`_fit_picture`). Any other graph is left as `fit_head` leaves it: the window then explains what
    does not fit and keeps the old spec."""
    fitted = fit_head(spec, dataset)
    if from_model(fitted.model) is not None:
        return fitted
    if dataset.task == "reconstruction":
        return _fit_picture(fitted, tuple(input_shape(spec.dataset)), tuple(input_shape(dataset)))
    model = fitted.model
    outputs = [n for n in model.nodes if n.op == "output"]
    if len(outputs) != 1 or outputs[0].params.get("activation") != "softmax":
        return fitted
    feeders = [src for src, dst in model.edges if dst == outputs[0].id]
    nodes = {n.id: n for n in model.nodes}
    if len(feeders) != 1 or nodes[feeders[0]].op != "dense":
        return fitted
    shape = list(input_shape(dataset))
    data = model.model_dump(mode="json")
    for node in data["nodes"]:
        if node["id"] == feeders[0]:
            node["params"] = {**node["params"], "units": dataset.n_classes}
        elif node["op"] == "input" and "shape" in node["params"]:
            node["params"] = {**node["params"], "shape": shape}
    return fitted.model_copy(update={"model": ModelSpec.model_validate(data)})


def _fit_picture(spec: SessionSpec, old: tuple[int, ...], new: tuple[int, ...]) -> SessionSpec:
    """An autoencoder moved to pictures of another size: its declared input, any reshape back to the picture
    and the dense layer that gives the picture's pixels follow the new size. A convolutional decoder's
    arithmetic is left as it is (the window then says what does not fit)."""
    if old == new:
        return spec
    data = spec.model.model_dump(mode="json")
    out = next(n["id"] for n in data["nodes"] if n["op"] == "output")
    feeders = {src for src, dst in data["edges"] if dst == out}
    pixels = (math.prod(old), math.prod(new))
    for node in data["nodes"]:
        params = node["params"]
        declared = node["op"] == "input" and params.get("shape") is not None
        if declared or (node["op"] == "reshape" and tuple(params.get("shape", ())) == old):
            node["params"] = {**params, "shape": list(new)}
        elif node["op"] == "dense" and node["id"] in feeders and params.get("units") == pixels[0]:
            node["params"] = {**params, "units": pixels[1]}
    return spec.model_copy(update={"model": ModelSpec.model_validate(data)})


@register_editor("images")
class ImagesEditor(SampledEditor):
    """Every edit emits a whole new spec; data changes reset the run (same seed)."""

    batch_row = 5  # after the number of images, above the seed (toy2d: after the points, above Regenerate)

    def __init__(self, family: DataFamily, parent: QWidget | None = None) -> None:
        super().__init__(family, "Gaussian noise added to every pixel, in percent of full brightness",
                         "Share of the images used for training; the validation share is next, the rest are the "
                         "test set",
                         f"Number of images, train and test together (digits: at most the {N_DIGITS:,} "
                         f"scikit-learn ships; shapes: up to {MAX_SHAPES:,})", parent)
        self.box.setToolTip(family.doc)
        self.variants: dict[str, Images] = family.variants()
        self.group = QButtonGroup(self)
        self.group.setExclusive(True)
        self.buttons: dict[str, QToolButton] = {}
        thumbs = QHBoxLayout()
        thumbs.setSpacing(4)
        for name in self.variants:
            b = QToolButton(self)  # parented: never a window of its own
            b.setCheckable(True)
            b.setIcon(QIcon(QPixmap.fromImage(thumbnail(name))))
            b.setIconSize(QSize(THUMB, THUMB))
            b.setText(LABELS.get(name, name))
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            b.setToolTip(TIPS.get(name, name))
            b.setObjectName(f"dataset_{name}")
            b.setProperty("dataset", name)
            self.group.addButton(b)
            self.buttons[name] = b
            thumbs.addWidget(b)
        thumbs.addStretch(1)
        self.val = QSlider(Qt.Orientation.Horizontal)
        self.val.setRange(0, 40)
        self.val.setTracking(False)
        self.val.setToolTip("Share of the images held out for validation: scored every epoch (the dashed curves) "
                            "and watched by early stopping, so the test set stays unseen until you look at it")
        self.val_label = QLabel()
        self.val.sliderMoved.connect(self._on_slider_moved)
        self.val.valueChanged.connect(self._on_val)
        for label in (self.noise_label, self.split_label, self.val_label):  # wide enough for "100 %"
            label.setMinimumWidth(label.fontMetrics().horizontalAdvance("100 %"))
            label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.samples.setRange(MIN_SAMPLES, MAX_SHAPES)
        self.samples.setGroupSeparatorShown(True)
        self.seed = QSpinBox()
        self.seed.setRange(0, MAX_SEED)
        self.seed.setKeyboardTracking(False)
        self.seed.setToolTip("Data seed: which images are drawn, in what order, and their noise; "
                             "the same seed gives the same data")

        form = self.form
        form.addRow(thumbs)
        self.add_sample_rows("images")
        val_row = QHBoxLayout()
        val_row.addWidget(self.val, 1)
        val_row.addWidget(self.val_label)
        form.insertRow(form.rowCount() - 1, "validation", val_row)  # under the train share, above the count
        form.addRow("seed", self.seed)
        self.scaled = QCheckBox("scale digits to 28 × 28")
        self.scaled.setToolTip("Enlarge the 8×8 digits (bilinear) to the shapes' 28×28, so that a body trained on "
                               "shapes fits them (the digits-transfer preset); the network's input follows")
        self.scaled.toggled.connect(self._on_scaled)
        form.addRow("size", self.scaled)
        self.task = QLabel()
        self.task.setWordWrap(True)
        self.task.setToolTip("What the network learns from the images, set by the session (open an autoencoder "
                             "preset such as digits-vae-2d to reconstruct)")
        form.addRow("task", self.task)
        self.group.buttonClicked.connect(self._on_dataset)
        self.seed.valueChanged.connect(self._on_seed)

    def _controls(self) -> list:
        return [self.group, *self.buttons.values(), self.noise, self.split, self.val, self.samples, self.seed,
                self.scaled]

    def set_spec(self, spec: SessionSpec) -> None:
        super().set_spec(spec)
        ds = spec.dataset
        with blocked(self._controls()):
            self.buttons[ds.name].setChecked(True)
            self.noise.setValue(round(ds.noise))
            self.split.setValue(round(ds.train_fraction * 100))
            self.val.setValue(round(ds.validation_fraction * 100))
            self.samples.setMaximum(max_samples(ds.name))  # before the value: digits stop at 1,797
            self.samples.setValue(ds.samples)
            self.seed.setValue(min(ds.seed, MAX_SEED))
            self.scaled.setChecked(ds.size == SHAPES_SIZE)
        self.scaled.setEnabled(ds.name == "digits")  # the shapes are 28×28 already
        self.task.setText("reconstruct them (an autoencoder; the classes only colour its codes)"
                          if ds.task == "reconstruction" else "name each image's class")
        self._on_slider_moved()

    @Slot()
    def _on_slider_moved(self) -> None:
        super()._on_slider_moved()
        self.val_label.setText(f"{self.val.sliderPosition()} %")

    @Slot(int)
    def _on_split(self, value: int) -> None:
        """A train share that leaves under 5 % for the test set takes the room from validation."""
        self._on_slider_moved()
        if self.spec is not None:
            val = min(self.spec.dataset.validation_fraction, round(0.95 - value / 100, 2))
            self._edit(train_fraction=value / 100, validation_fraction=max(val, 0.0))

    @Slot(int)
    def _on_val(self, value: int) -> None:
        """Validation takes its share from the test set; past 95 % with training it takes it from training."""
        self._on_slider_moved()
        if self.spec is not None:
            train = min(self.spec.dataset.train_fraction, round(0.95 - value / 100, 2))
            self._edit(train_fraction=train, validation_fraction=value / 100)

    @Slot(QAbstractButton)
    def _on_dataset(self, button: QAbstractButton) -> None:
        self._switch(str(button.property("dataset")))

    def _switch(self, name: str) -> None:
        """Another image set: the user's noise, split and seed stay; a count left at the old set's natural size
        takes the new set's, any other is kept, clamped to what the new set has. The head follows the classes."""
        if self.spec is None or name == self.spec.dataset.name:
            return
        old = self.spec.dataset
        samples = old.samples
        if samples == self.variants[old.name].samples:
            samples = self.variants[name].samples
        samples = max(MIN_SAMPLES, min(samples, max_samples(name)))
        dataset = Images.model_validate(old.model_dump() | {"name": name, "samples": samples})
        self.spec_edited.emit(fit_model(self.spec, dataset))

    @Slot(bool)
    def _on_scaled(self, on: bool) -> None:
        """Digits at 28×28 or their own 8×8: the network's input (and a dense head's) follows, via fit_model."""
        if self.spec is not None and self.spec.dataset.name == "digits":
            dataset = self.spec.dataset.model_copy(update={"size": SHAPES_SIZE if on else 0})
            self.spec_edited.emit(fit_model(self.spec, Images.model_validate(dataset.model_dump())))

    @Slot(int)
    def _on_seed(self, value: int) -> None:
        self._edit(seed=value)
