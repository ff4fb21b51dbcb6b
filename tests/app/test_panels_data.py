"""The data panel as a host: batch size, a family picker, and each family's editor from the app's registry, or
one generated from the family's spec schema for a family that brings none."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import numpy as np
import pytest
import shiboken6
from pydantic import Field, model_validator
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QLabel, QSpinBox

from app.panels.data import DataPanel
from app.panels.datasets import EDITORS, SchemaEditor
from engine.datasets import FAMILIES, DataFamily, Dataset
from engine.datasets.registry import register
from engine.presets import load_preset
from engine.schema import Strict
from engine.stack import fit_head, from_model


class Blobs(Strict):
    """A throwaway family's spec: Gaussian clusters in the plane."""

    kind: Literal["test_blobs"] = "test_blobs"
    clusters: int = Field(3, ge=2, le=6, description="how many clusters, one class each")
    spread: float = Field(0.5, gt=0.0, le=2.0, description="how wide each cluster is")
    layout: Literal["ring", "grid"] = Field("ring", description="where the cluster centres sit")
    balanced: bool = Field(True, description="the same number of points in every cluster")
    seed: int = Field(0, ge=0, le=2**32 - 1)

    @model_validator(mode="after")
    def _grid_is_even(self) -> Blobs:
        if self.layout == "grid" and self.clusters % 2:
            raise ValueError("a grid needs an even number of clusters")
        return self

    @property
    def task(self) -> Literal["classification"]:
        return "classification"

    @property
    def n_classes(self) -> int:
        return self.clusters


def _make(spec: Blobs) -> Dataset:
    x = np.zeros((4, 2), np.float32)
    y = np.arange(4) % spec.clusters
    return Dataset(spec, x, x, y, y)


@pytest.fixture
def blobs() -> Iterator[DataFamily]:
    """The throwaway family, registered for one test only."""
    family = register(DataFamily(
        kind="test_blobs", title="Test blobs", doc="Clusters for a test.", spec=Blobs, make=_make,
        input_shape=lambda spec: (2,), tasks=frozenset({"classification"}),
        thumbnail=lambda spec, size: np.zeros((size, size, 3), np.uint8), variants=dict))
    try:
        yield family
    finally:
        del FAMILIES[family.kind]


def rows(form: QFormLayout) -> list[str]:
    """The form's row labels, top to bottom."""
    labels = []
    for r in range(form.rowCount()):
        item = form.itemAt(r, QFormLayout.ItemRole.LabelRole)
        labels.append(item.widget().text() if item is not None and isinstance(item.widget(), QLabel) else "")
    return labels


def shown_panel(qtbot, spec) -> tuple[DataPanel, list]:
    panel = DataPanel()
    qtbot.addWidget(panel)
    panel.set_spec(spec)
    panel.show()
    emitted: list = []
    panel.spec_edited.connect(emitted.append)
    return panel, emitted


def test_each_family_shows_its_own_editor_under_a_family_picker(qtbot):
    panel, emitted = shown_panel(qtbot, load_preset("tfp-circle"))
    picker = panel.family_picker
    assert picker is not None and picker.currentData() == "toy2d"
    assert [picker.itemData(i) for i in range(picker.count())][:2] == ["toy2d", "images"]
    assert type(panel.editor) is EDITORS["toy2d"]
    # The batch size sits where it always did: below the points, above Regenerate.
    assert rows(panel.editor.form) == ["family", "problem", "", "noise", "train share", "points", "batch size", ""]
    panel.batch.setValue(32)
    assert emitted[-1].training.batch_size == 32 and emitted[-1].dataset == panel.spec.dataset


def test_a_family_without_an_editor_is_edited_from_its_schema(qtbot, blobs):
    spec = fit_head(load_preset("tfp-circle"), Blobs())
    panel, emitted = shown_panel(qtbot, spec)
    picker = panel.family_picker
    assert [picker.itemText(i) for i in range(picker.count())] == [f.title for f in FAMILIES.values()]
    assert picker.currentText() == "Test blobs"
    assert picker.itemData(picker.currentIndex(), Qt.ItemDataRole.ToolTipRole) == "Clusters for a test."
    editor = panel.editor
    assert isinstance(editor, SchemaEditor) and editor.isVisible()
    assert rows(editor.form) == ["family", "clusters", "spread", "layout", "balanced", "seed", "batch size"]
    w = editor.fields.widgets()
    assert isinstance(w["clusters"], QSpinBox) and (w["clusters"].minimum(), w["clusters"].maximum()) == (2, 6)
    assert isinstance(w["spread"], QDoubleSpinBox) and 0 < w["spread"].minimum() and w["spread"].maximum() == 2.0
    assert isinstance(w["layout"], QComboBox) and [w["layout"].itemText(i) for i in range(2)] == ["ring", "grid"]
    assert isinstance(w["balanced"], QCheckBox) and w["balanced"].isChecked()
    assert w["clusters"].toolTip() == "How many clusters, one class each"
    assert w["layout"].toolTip() == "Where the cluster centres sit"

    w["spread"].setValue(1.25)
    assert emitted[-1].dataset == Blobs(spread=1.25)
    panel.set_spec(emitted[-1])
    assert panel.editor is editor and w["spread"] is editor.fields.widgets()["spread"]  # updated in place
    w["balanced"].setChecked(False)
    assert emitted[-1].dataset == Blobs(spread=1.25, balanced=False)
    panel.set_spec(emitted[-1])
    w["clusters"].setValue(4)
    assert emitted[-1].dataset.clusters == 4 and from_model(emitted[-1].model).units_out == 4  # the head follows
    panel.set_spec(emitted[-1])
    # A rule between fields refuses the edit and says why; nothing is emitted.
    w["clusters"].setValue(5)
    panel.set_spec(emitted[-1])
    count = len(emitted)
    w["layout"].setCurrentIndex(w["layout"].findData("grid"))
    assert len(emitted) == count and not editor.error.isHidden() and "even number" in editor.error.text()
    w["clusters"].setValue(6)  # the grid the user chose is kept while the count is mended
    assert emitted[-1].dataset == Blobs(clusters=6, spread=1.25, layout="grid", balanced=False)
    panel.set_spec(emitted[-1])
    assert editor.error.isHidden()
    fine = emitted[-1].model_copy(update={"dataset": emitted[-1].dataset.model_copy(update={"spread": 1.23456})})
    panel.set_spec(fine)  # a value four decimals cannot show gets a box that can, in the same row
    w = editor.fields.widgets()
    assert w["spread"].value() == 1.23456
    assert rows(editor.form) == ["family", "clusters", "spread", "layout", "balanced", "seed", "batch size"]

    # Another family through the picker: its first problem; the new editor takes the panel's rows.
    picker.setCurrentIndex(picker.findData("toy2d"))
    toy = emitted[-1]
    assert toy.dataset.kind == "toy2d" and toy.dataset.name == "circle"
    panel.set_spec(toy)
    assert type(panel.editor) is EDITORS["toy2d"] and panel.editor.isVisible()
    assert rows(panel.editor.form)[:1] == ["family"] and "batch size" in rows(panel.editor.form)
    assert picker.isVisible() and panel.batch.isVisible() and picker.currentData() == "toy2d"
    qtbot.waitUntil(lambda: not shiboken6.isValid(editor))  # the old editor is gone
    panel.batch.setValue(64)
    assert emitted[-1].training.batch_size == 64 and emitted[-1].dataset == toy.dataset
