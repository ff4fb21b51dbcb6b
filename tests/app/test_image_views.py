"""The image views in the window: samples, saliency and confusion drawn from real probes of a training CNN,
and the clicks that tie them together."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, Qt

from engine.presets import load_preset
from engine.session import Session
from tests.app.helpers import train_epochs


def wait_for(qtbot, window, probe: str, check=lambda a: True):
    c = window.controller
    qtbot.waitUntil(lambda: c.snapshot is not None and probe in c.snapshot.probes
                    and check(c.snapshot.probes[probe].arrays), timeout=30_000)
    return c.snapshot.probes[probe].arrays


def test_an_image_session_shows_the_image_views_and_puts_the_plane_views_away(open_window):
    w = open_window("digits-cnn")
    tabs = w.deck.tabs
    assert tabs.isTabVisible(tabs.indexOf(w.views["samples"]))
    assert not tabs.isTabVisible(tabs.indexOf(w.views["network"]))
    assert not w.docks["Saliency"].isHidden() and w.docks["Output"].isHidden()
    assert w.docks["Output"].toggleViewAction().isEnabled() is False


def test_samples_grid_marks_wrong_predictions_and_filters_to_them(open_window, qtbot):
    w = open_window("digits-cnn")
    w.deck.tabs.setCurrentWidget(w.views["samples"])
    train_epochs(qtbot, w, 1)
    p = wait_for(qtbot, w, "predictions")
    view = w.views["samples"]
    n = len(p["label"])
    assert list(view.grid.rows) == list(range(min(n, 240)))
    assert view.summary.text().startswith(f"{n} of {n} test images")
    view.only_wrong.setChecked(True)
    p = w.controller.snapshot.probes["predictions"].arrays
    wrong = np.flatnonzero(p["label"] != p["prediction"])
    np.testing.assert_array_equal(view.grid.rows, wrong[:240])
    grab = view.grid.grab().toImage()
    assert grab.width() > 0 and view.grid.pixmap is not None


def test_clicking_a_sample_explains_it_in_the_saliency_view(open_window, qtbot):
    w = open_window("digits-cnn")
    w.deck.tabs.setCurrentWidget(w.views["samples"])
    train_epochs(qtbot, w, 1)
    grid = w.views["samples"].grid
    qtbot.waitUntil(lambda: len(grid.rows) > 5)
    cell = grid.cell_rect(5).center()
    qtbot.mouseClick(grid, Qt.MouseButton.LeftButton, pos=QPoint(cell.x(), cell.y()))
    target = int(grid.rows[5])
    assert w.controller.sample == target
    a = wait_for(qtbot, w, "saliency", lambda a: a["rows"].tolist() == [target])
    assert np.abs(a["attribution"]).sum() > 0
    view = w.views["saliency"]
    assert view.caption.text().startswith(f"test image {target}:")
    picture = view.picture.grab().toImage()
    colours = {picture.pixelColor(x, y).name() for x in range(0, picture.width(), 7)
               for y in range(0, picture.height(), 7)}
    assert len(colours) > 10  # the image and a coloured map, not a blank panel
    view.method.setCurrentIndex(view.method.findData("gradcam"))
    assert view.layer.isEnabled() and view.layer.currentText() == "conv_2"
    a = wait_for(qtbot, w, "saliency", lambda a: a["rows"].tolist() == [target])
    assert w.controller.trainer.prober.request("saliency").method == "gradcam"
    view.target.setCurrentIndex(view.target.findData(3))
    a = wait_for(qtbot, w, "saliency", lambda a: a["target"].tolist() == [3])
    assert "explaining class 3" in view.caption.text()


def test_a_confusion_cell_filters_the_samples_to_its_images(open_window, qtbot):
    w = open_window("digits-cnn")
    w.deck.tabs.setCurrentWidget(w.views["samples"])
    w.docks["Confusion"].raise_()
    train_epochs(qtbot, w, 1)
    p = wait_for(qtbot, w, "predictions")
    view = w.views["confusion"]
    qtbot.waitUntil(lambda: view.matrix.confusion.sum() == len(p["label"]))
    assert view.matrix.confusion.sum() == len(w.controller.trainer.data.y_test)
    left, top, side = view.matrix.geometry_of()
    i, j = 3, 3  # the diagonal: images of 3 predicted as 3
    qtbot.mouseClick(view.matrix, Qt.MouseButton.LeftButton,
                     pos=QPoint(left + j * side + side // 2, top + i * side + side // 2))
    assert w.controller.sample_filter == (3, 3)
    samples = w.views["samples"]
    qtbot.waitUntil(lambda: len(samples.grid.rows) == int(p["confusion"][3, 3]))
    assert (p["label"][samples.grid.rows] == 3).all() and (p["prediction"][samples.grid.rows] == 3).all()
    assert samples.clear_filter.isVisible()
    samples.clear_filter.click()
    assert w.controller.sample_filter is None


def test_the_drawing_canvas_gives_the_data_pipelines_tensor_and_the_network_answers(open_window, qtbot):
    w = open_window("digits-cnn")
    view = w.views["drawing"]
    w.deck.tabs.setCurrentWidget(view)
    c = w.controller
    data = c.trainer.data
    raw = data.meta["raw_test"][4, 0]
    view.canvas.set_picture(raw)
    np.testing.assert_array_equal(view.canvas.pixels(), raw)  # the canvas cut down as the data is
    view._ask()
    a = wait_for(qtbot, w, "drawing", lambda a: a["input"].any())
    np.testing.assert_array_equal(a["model_input"], data.x_test[4])  # the same tensor the network trains on
    assert abs(float(a["probabilities"].sum()) - 1.0) < 1e-5
    # draw a stroke with the mouse: ink lands, the network answers for the new picture
    view._clear()
    canvas = view.canvas
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=QPoint(60, 40))
    for y in range(40, 190, 10):
        qtbot.mouseMove(canvas, pos=QPoint(110, y))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=QPoint(110, 190))
    drawn = canvas.pixels()
    assert drawn.max() > 0.9 and (drawn > 0).mean() < 0.6  # a stroke, not a flood
    a = wait_for(qtbot, w, "drawing", lambda a: np.array_equal(a["input"][0], drawn))
    assert view.caption.text().startswith("The network says")
    assert view.result.seen is not None and len(view.result.probs) == 10


def test_augmentation_is_offered_for_images_only_and_applies_live(open_window, qtbot):
    w = open_window("tfp-circle")
    panel = w.training_panel
    assert not panel.aug_box.isVisibleTo(panel) and not panel.aug_heading.isVisibleTo(panel)
    w = open_window("digits-cnn")
    panel = w.training_panel
    assert panel.aug_box.isVisibleTo(panel)
    boxes = panel.aug_fields.widgets()
    assert set(boxes) == {"noise", "shift", "rotation", "flip", "cutout"} and all(b.toolTip() for b in boxes.values())
    c = w.controller
    train_epochs(qtbot, w, 1)
    run = c.trainer.run_id
    boxes["shift"].setValue(1)
    boxes["rotation"].setValue(10.0)
    assert c.spec.regularization.augment.shift == 1 and c.spec.regularization.augment.rotation == 10.0
    train_epochs(qtbot, w, 1)
    assert c.trainer.run_id == run and c.trainer.spec.regularization.augment.shift == 1  # live, no reset


def test_switching_to_fewer_classes_drops_a_confusion_filter_they_lack(open_window, qtbot):
    w = open_window("digits-cnn")
    c = w.controller
    c.set_sample_filter((7, 7))
    w.data_panel.editor.buttons["shapes"].click()
    qtbot.waitUntil(lambda: c.spec.dataset.name == "shapes")
    assert c.sample_filter is None and c.trainer.spec.dataset.n_classes == 4


def test_an_image_run_draws_its_validation_curves_and_a_2d_run_none(open_window, qtbot):
    w = open_window("digits-mlp")
    train_epochs(qtbot, w, 2)
    h, curves = w.controller.history, w.curves
    np.testing.assert_array_equal(curves.val_curve.xy()[1], h.epochs["epoch_val_loss"].view())
    np.testing.assert_array_equal(curves.val_acc.xy()[1], h.epochs["epoch_val_accuracy"].view())
    assert np.isfinite(h.epochs["epoch_val_loss"].view()).all()
    numbers = curves.numbers.text()
    assert "Validation" in numbers and f"{h.epochs['epoch_val_accuracy'].view()[-1]:.1%}" in numbers
    text = curves.values_at(1)
    assert text.startswith("epoch 1: train loss") and "validation loss" in text and "validation accuracy" in text
    w.controller.pause()
    w.files.show_session(Session(load_preset("xor"), None, {}), None, "xor")  # a 2-D set: no validation
    train_epochs(qtbot, w, 1)
    assert len(curves.val_curve.xy()[1]) == 0 and len(curves.val_acc.xy()[1]) == 0
    assert "Validation" not in curves.numbers.text() and "validation" not in curves.values_at(1)


def test_digits_scaled_to_28_are_drawn_at_their_own_8x8_and_scaled_as_the_data_is(open_window, qtbot):
    w = open_window("digits-transfer")
    view = w.views["drawing"]
    w.deck.tabs.setCurrentWidget(view)
    data = w.controller.trainer.data
    assert view.canvas.pixels().shape == (8, 8) and data.x_test.shape[1:] == (1, 28, 28)
    w.controller.select_sample(9)
    view._copy_sample()  # "Start from the selected image": the digit's own 8×8 picture
    np.testing.assert_array_equal(view.canvas.pixels(), data.meta["native_test"][9, 0])
    a = wait_for(qtbot, w, "drawing", lambda a: a["input"].any())
    np.testing.assert_array_equal(a["model_input"], data.x_test[9])  # what the network trains on, bit for bit
    assert a["input"].shape == (1, 28, 28)


def test_the_sample_grid_redraws_only_the_cells_that_changed(open_window, qtbot):
    w = open_window("digits-cnn")
    view = w.views["samples"]
    w.deck.tabs.setCurrentWidget(view)
    p = wait_for(qtbot, w, "predictions")
    grid = view.grid
    before = grid.pixmap.toImage()
    shown = grid.rows.copy()
    changed = {**p, "prediction": p["prediction"].copy(), "confidence": p["confidence"].copy()}
    k = 5  # one cell gets another prediction; the others keep theirs
    row = int(shown[k])
    changed["prediction"][row] = (p["label"][row] + 1) % 10
    changed["confidence"][row] = 0.42
    painted = []
    original = grid.cell_rect
    grid.cell_rect = lambda i: painted.append(i) or original(i)
    try:
        images = [view._images[i] for i in shown.tolist()]
        captions = [f"{view.class_name(int(changed['prediction'][i]))} · {changed['confidence'][i]:.0%}"
                    for i in shown.tolist()]
        grid.render(images, captions, changed["label"][shown] != changed["prediction"][shown])
    finally:
        grid.cell_rect = original
    assert painted == [k]
    after = grid.pixmap.toImage()
    cell = grid.cell_rect(k)
    differs = [(x, y) for x in range(0, after.width(), 4) for y in range(0, after.height(), 4)
               if after.pixel(x, y) != before.pixel(x, y)]
    assert differs and all(cell.contains(x, y) for x, y in differs)  # the red frame and caption, nothing else
