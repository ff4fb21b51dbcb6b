"""The Features view drawn from real probes of a digits CNN: maps of the selected image, a layer picked in the
combo, and the first convolution's kernels."""
from __future__ import annotations

import numpy as np

import engine.probes.features  # noqa: F401  (registers the probes before the window builds its trainer)
from app.views.features import FeaturesView, fit_grid, has_feature_maps, scaled
from engine.presets import load_preset
from tests.app.helpers import train_epochs


def colours(widget) -> set[str]:
    picture = widget.grab().toImage()
    return {picture.pixelColor(x, y).name() for x in range(0, picture.width(), 3)
            for y in range(0, picture.height(), 3)}


def shown_view(qtbot, window) -> FeaturesView:
    view = FeaturesView(window.controller)
    qtbot.addWidget(view)
    view.resize(560, 520)
    view.show()
    qtbot.waitExposed(view)
    return view


def arrays(window, probe: str) -> dict[str, np.ndarray]:
    return window.controller.snapshot.probes[probe].arrays


def test_the_view_draws_maps_and_kernels_and_follows_layer_and_sample(open_window, qtbot):
    w = open_window("digits-cnn")
    c = w.controller
    view = shown_view(qtbot, w)
    qtbot.waitUntil(lambda: view.drawn_maps == 16 and view.drawn_kernels == 16, timeout=30_000)
    assert {"feature_maps", "kernels"} <= c.wanted
    assert [view.layer.itemData(i) for i in range(view.layer.count())] == ["conv_1", "pool_1", "conv_2", "pool_2"]
    assert view.layer.currentData() == "conv_1"
    train_epochs(qtbot, w, 1)
    a = arrays(w, "feature_maps")
    qtbot.waitUntil(lambda: view.picture.pixmap is not None)
    assert len(colours(view.picture)) > 20  # the image, shaded maps and kernels: not a blank panel
    assert view.caption.text().startswith(f"test image {c.sample} (label {int(a['label'][0])}) through conv_1")
    np.testing.assert_array_equal(arrays(w, "kernels")["weights"],
                                  c.trainer.model.layers["conv_1"].weight.detach().numpy())

    view.layer.setCurrentIndex(view.layer.findData("conv_2"))
    assert c.trainer.prober.request("feature_maps").layer == "conv_2"
    qtbot.waitUntil(lambda: view.drawn_maps == 32, timeout=30_000)
    assert arrays(w, "feature_maps")["maps"].shape == (32, 4, 4)
    assert "through conv_2" in view.caption.text()

    c.select_sample(5)
    assert c.trainer.prober.request("feature_maps").sample == 5
    qtbot.waitUntil(lambda: arrays(w, "feature_maps")["sample"].tolist() == [5], timeout=30_000)
    a = arrays(w, "feature_maps")
    np.testing.assert_array_equal(a["input"], c.trainer.data.meta["raw_test"][5])
    assert a["layer"].tolist() == ["conv_2"]
    qtbot.waitUntil(lambda: view.caption.text().startswith("test image 5 "))


def test_the_view_keeps_its_probes_off_while_hidden_and_redraws_to_fit(open_window, qtbot):
    w = open_window("digits-cnn")
    view = shown_view(qtbot, w)
    qtbot.waitUntil(lambda: view.drawn_maps == 16, timeout=30_000)
    small = view.picture.pixmap.size()
    view.resize(900, 800)
    qtbot.waitUntil(lambda: view.picture.pixmap.size() != small)
    assert view.picture.pixmap.width() > small.width()
    view.hide()
    qtbot.waitUntil(lambda: not w.controller.probes_pending)
    assert "feature_maps" not in w.controller.wanted


def test_layout_and_scaling_helpers():
    cols, side = fit_grid(17, 560, 300, 1.0, 120)
    rows = -(-17 // cols)
    assert cols * side + 6 * (cols + 1) <= 560 and rows * (side + 13 + 6) <= 300 and side > 30
    assert fit_grid(16, 2000, 60, 1.0, 30) == (16, 30)  # room to spare: one row
    maps = np.array([[[1.0, -4.0]], [[0.0, 0.0]], [[0.5, 0.25]]], dtype=np.float32)
    np.testing.assert_allclose(scaled(maps), [[[0.25, -1.0]], [[0.0, 0.0]], [[1.0, 0.5]]])
    assert has_feature_maps(load_preset("digits-cnn")) and has_feature_maps(load_preset("shapes-cnn"))
    assert not has_feature_maps(load_preset("digits-mlp")) and not has_feature_maps(load_preset("tfp-circle"))
