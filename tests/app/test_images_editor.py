"""The images family's editor in the data panel: a thumbnail per image set, noise, train share, number of images
and seed; moving between digits and shapes fits the model's head and input to the new set."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QToolButton

import app.panels.datasets.images  # noqa: F401  (registers the editor before any panel is built)
from app.panels.data import DataPanel
from app.panels.datasets import EDITORS
from app.panels.datasets.images import THUMB, ImagesEditor, fit_model
from engine import Trainer
from engine.check import parse_spec
from engine.datasets.images import Images
from engine.presets import load_preset
from engine.spec import SessionSpec, spec_to_dict
from engine.stack import fit_head
from tests.app.test_panels_data import rows


def shown_panel(qtbot, spec: SessionSpec) -> tuple[DataPanel, list[SessionSpec]]:
    """A shown data panel on `spec`, and the list of specs it emits."""
    panel = DataPanel()
    qtbot.addWidget(panel)
    panel.set_spec(spec)
    panel.resize(360, panel.sizeHint().height())
    panel.show()
    emitted: list[SessionSpec] = []
    panel.spec_edited.connect(emitted.append)
    return panel, emitted


def head_units(spec: SessionSpec) -> int:
    """Units of the dense layer that feeds the output, read from a spec the engine has fully checked."""
    spec = parse_spec(spec_to_dict(spec))  # the spec must be one the window would apply
    nodes = {n.id: n for n in spec.model.nodes}
    out = next(n for n in spec.model.nodes if n.op == "output")
    (feeder,) = [nodes[src] for src, dst in spec.model.edges if dst == out.id]
    assert feeder.op == "dense"
    return int(feeder.params["units"])


def input_declared(spec: SessionSpec) -> list[int]:
    return list(next(n for n in spec.model.nodes if n.op == "input").params["shape"])


def pixels(image: QImage) -> np.ndarray:
    """A QImage's pixels as an (H, W) array of packed RGB values."""
    image = image.convertToFormat(QImage.Format.Format_RGB32)
    w, h = image.width(), image.height()
    data = np.frombuffer(image.constBits(), dtype=np.uint32, count=image.bytesPerLine() * h // 4)
    return data.reshape(h, image.bytesPerLine() // 4)[:, :w] & 0xFFFFFF


def test_digits_cnn_shows_the_images_editor(qtbot):
    panel, emitted = shown_panel(qtbot, load_preset("digits-cnn"))
    editor = panel.editor
    assert type(editor) is ImagesEditor and EDITORS["images"] is ImagesEditor
    assert panel.family_picker is not None and panel.family_picker.currentData() == "images"
    assert editor.buttons["digits"].isChecked()
    assert not editor.buttons["shapes"].isChecked() and not editor.buttons["shapes_clutter"].isChecked()
    assert [b.text() for b in editor.buttons.values()] == ["digits", "shapes", "shapes + clutter"]
    assert editor.samples.value() == 1797 and editor.samples.maximum() == 1797
    assert editor.noise.value() == 0 and editor.noise_label.text() == "0 %"
    assert editor.split.value() == 70 and editor.split_label.text() == "70 %"
    assert editor.seed.value() == 0
    # The batch size goes where toy2d's convention puts it: after the count, above the seed.
    assert rows(editor.form) == ["family", "", "noise", "train share", "validation", "images", "batch size", "seed",
                                 "size", "task"]
    assert panel.batch.value() == 32
    assert editor.task.text() == "name each image's class"
    assert all(w.isVisible() for w in (*editor.buttons.values(), editor.noise, editor.samples, editor.seed))
    assert emitted == []  # showing a spec emits nothing


def test_switching_sets_fits_the_head_and_clamps_the_count(qtbot):
    panel, emitted = shown_panel(qtbot, load_preset("digits-cnn"))
    editor = panel.editor
    assert head_units(panel.spec) == 10
    qtbot.mouseClick(editor.buttons["shapes"], Qt.MouseButton.LeftButton)
    shapes = emitted[-1]
    assert shapes.dataset.name == "shapes" and shapes.dataset.n_classes == 4
    assert head_units(shapes) == 4 and input_declared(shapes) == [1, 28, 28]
    assert shapes.dataset.samples == 2000  # the natural size followed: digits had all of theirs
    assert shapes.loss == "cross_entropy" and shapes.training == panel.spec.training
    panel.set_spec(shapes)
    assert editor.buttons["shapes"].isChecked() and not editor.buttons["digits"].isChecked()
    assert editor.samples.maximum() == 20_000 and editor.samples.value() == 2000

    editor.samples.setValue(5000)
    assert emitted[-1].dataset.samples == 5000 and emitted[-1].model == shapes.model
    panel.set_spec(emitted[-1])
    qtbot.mouseClick(editor.buttons["digits"], Qt.MouseButton.LeftButton)
    digits = emitted[-1]
    assert digits.dataset.name == "digits" and head_units(digits) == 10 and input_declared(digits) == [1, 8, 8]
    assert digits.dataset.samples == 1797  # clamped: scikit-learn ships no more
    panel.set_spec(digits)
    assert editor.samples.maximum() == 1797 and editor.samples.value() == 1797

    # A count the user chose is kept when it fits; the clutter variant has the same four classes.
    editor.samples.setValue(500)
    panel.set_spec(emitted[-1])
    qtbot.mouseClick(editor.buttons["shapes_clutter"], Qt.MouseButton.LeftButton)
    clutter = emitted[-1]
    assert clutter.dataset.name == "shapes_clutter" and clutter.dataset.samples == 500 and head_units(clutter) == 4
    panel.set_spec(clutter)
    count = len(emitted)
    qtbot.mouseClick(editor.buttons["shapes_clutter"], Qt.MouseButton.LeftButton)  # the current set: no edit
    assert len(emitted) == count


@pytest.mark.parametrize("preset", ["digits-mlp", "shapes-cnn", "shapes-clutter-cnn"])
def test_every_image_preset_survives_a_round_trip(preset):
    spec = load_preset(preset)
    other = "shapes" if spec.dataset.name == "digits" else "digits"
    there = fit_model(spec, Images(name=other))
    assert head_units(there) == there.dataset.n_classes
    back = fit_model(there, spec.dataset)
    assert back.model == spec.model and head_units(back) == spec.dataset.n_classes


def test_a_plain_stack_is_fitted_by_fit_head():
    spec = fit_head(load_preset("tfp-circle"), Images(name="digits"))
    assert fit_model(spec, Images(name="shapes")) == fit_head(spec, Images(name="shapes"))


def test_sliders_and_spin_boxes_emit_whole_specs(qtbot):
    panel, emitted = shown_panel(qtbot, load_preset("digits-cnn"))
    editor, start = panel.editor, panel.spec
    editor.noise.setValue(20)
    assert emitted[-1].dataset == start.dataset.model_copy(update={"noise": 20.0})
    assert emitted[-1].model == start.model and editor.noise_label.text() == "20 %"
    panel.set_spec(emitted[-1])
    editor.split.setValue(60)
    assert emitted[-1].dataset.train_fraction == pytest.approx(0.6) and emitted[-1].dataset.noise == 20.0
    assert editor.split_label.text() == "60 %"
    panel.set_spec(emitted[-1])
    editor.seed.setValue(7)
    assert emitted[-1].dataset.seed == 7 and emitted[-1].dataset.train_fraction == pytest.approx(0.6)
    panel.set_spec(emitted[-1])
    editor.samples.setValue(1000)
    assert emitted[-1].dataset.samples == 1000
    editor.samples.setValue(5000)  # beyond the digits: the box stops at 1,797
    assert editor.samples.value() == 1797 and emitted[-1].dataset.samples == 1797
    assert all(isinstance(s.dataset, Images) for s in emitted)
    panel.batch.setValue(64)
    assert emitted[-1].training.batch_size == 64


def test_thumbnails_are_pictures_and_every_control_explains_itself(qtbot):
    panel, _ = shown_panel(qtbot, load_preset("digits-cnn"))
    editor = panel.editor
    tips = {name: b.toolTip() for name, b in editor.buttons.items()}
    assert tips["digits"] == "scikit-learn's 1,797 handwritten digits, 8×8"
    assert tips["shapes"] == "circle, square, triangle, cross; 28×28, generated"
    assert "distractor patch" in tips["shapes_clutter"]
    seen = []
    for b in editor.buttons.values():
        assert isinstance(b, QToolButton) and b.iconSize().width() == THUMB
        px = pixels(b.icon().pixmap(THUMB, THUMB).toImage())
        assert px.shape == (THUMB, THUMB)
        assert len(np.unique(px)) >= 8  # grey levels and class-coloured frames, not a blank square
        seen.append(px)
    assert not np.array_equal(seen[0], seen[1]) and not np.array_equal(seen[1], seen[2])
    for w in (editor.noise, editor.split, editor.samples, editor.seed, editor.box):
        assert w.toolTip()
    assert "1,797" in editor.samples.toolTip()


def test_picture(qtbot, tmp_path):
    panel, _ = shown_panel(qtbot, load_preset("digits-cnn"))
    qtbot.waitExposed(panel)
    picture = panel.grab()
    assert not picture.isNull() and picture.save(str(tmp_path / "images_editor.png"))
    picture.save("/tmp/images_editor.png")  # to look at


def test_the_validation_share_has_its_slider_and_always_leaves_a_test_set(qtbot):
    panel, emitted = shown_panel(qtbot, load_preset("digits-cnn"))
    editor = panel.editor
    assert editor.val.value() == 10 and editor.val_label.text() == "10 %"
    editor.val.setValue(20)
    assert emitted[-1].dataset.validation_fraction == pytest.approx(0.2)
    assert emitted[-1].dataset.train_fraction == pytest.approx(0.7) and editor.val_label.text() == "20 %"
    panel.set_spec(emitted[-1])
    editor.split.setValue(90)  # 90 % training: validation gives way so that 5 % stay for the test
    assert emitted[-1].dataset.train_fraction == pytest.approx(0.9)
    assert emitted[-1].dataset.validation_fraction == pytest.approx(0.05)
    panel.set_spec(emitted[-1])
    editor.val.setValue(40)  # and training gives way to a larger validation share
    d = emitted[-1].dataset
    assert d.validation_fraction == pytest.approx(0.4) and d.train_fraction == pytest.approx(0.55)


def test_scaling_the_digits_to_28_fits_the_networks_input(qtbot):
    panel, emitted = shown_panel(qtbot, load_preset("digits-cnn"))
    editor = panel.editor
    assert not editor.scaled.isChecked() and editor.scaled.isEnabled()
    editor.scaled.setChecked(True)
    spec = emitted[-1]
    assert spec.dataset.size == 28
    assert next(n for n in spec.model.nodes if n.op == "input").params["shape"] == [1, 28, 28]
    Trainer(spec, probes=False)  # the fitted network builds for the bigger digits
    panel.set_spec(load_preset("digits-transfer"))
    assert editor.scaled.isChecked()
    panel.set_spec(load_preset("shapes-cnn"))
    assert not editor.scaled.isEnabled()


@pytest.mark.parametrize("preset", ["digits-ae-2d", "digits-vae-2d"])
def test_an_autoencoder_follows_its_pictures_to_another_size(qtbot, preset):
    """Digits to shapes, or the digits at 28×28: the input, and the dense layer that gives the picture back,
    follow the new size, so the network still checks and trains."""
    panel, emitted = shown_panel(qtbot, load_preset(preset))
    qtbot.mouseClick(panel.editor.buttons["shapes"], Qt.MouseButton.LeftButton)
    shapes = emitted[-1]
    assert shapes.dataset.name == "shapes" and shapes.dataset.task == "reconstruction"
    assert input_declared(shapes) == [1, 28, 28]
    assert next(n for n in shapes.model.nodes if n.id == "reconstruct").params["units"] == 784
    tr = Trainer(parse_spec(spec_to_dict(shapes)), probes=False)
    tr.train_step()
    assert tr.history["step_loss"][0] > 0
    panel.set_spec(load_preset(preset))
    panel.editor.scaled.setChecked(True)
    assert input_declared(emitted[-1]) == [1, 28, 28] and emitted[-1].dataset.size == 28
    parse_spec(spec_to_dict(emitted[-1]))


def test_a_convolutional_decoder_that_cannot_follow_is_explained():
    s = load_preset("shapes-conv-ae")
    moved = fit_model(s, Images.model_validate(s.dataset.model_dump() | {"name": "digits", "samples": 1797}))
    from engine.errors import GraphError

    with pytest.raises(GraphError, match=r"make up_2 give \(B, 1, 8, 8\)"):
        parse_spec(spec_to_dict(moved))
