"""The adversarial view in the window: FGSM pictures and accuracy curves from the real probe of a training CNN,
following the ε slider and the selected sample."""
from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage

import engine.probes.adversarial  # registers the probe before the window's trainer is built
from app.views.adversarial import AdversarialView
from tests.app.helpers import train_epochs


def colours(image: QImage, step: int = 3) -> set[str]:
    return {image.pixelColor(x, y).name() for x in range(0, image.width(), step)
            for y in range(0, image.height(), step)}


def adversarial(w) -> dict[str, np.ndarray] | None:
    snap = w.controller.snapshot
    return None if snap is None or "adversarial" not in snap.probes else snap.probes["adversarial"].arrays


def test_the_adversarial_view_follows_the_slider_and_the_selected_sample(open_window, qtbot):
    assert "adversarial" in engine.probes.PROBES
    w = open_window("digits-cnn")
    assert "adversarial" in w.controller.run_info.probes
    c = w.controller
    view = AdversarialView(c)
    qtbot.addWidget(view)
    view.resize(520, 560)
    view.show()
    qtbot.waitExposed(view)
    assert c.trainer.prober.request("adversarial").eps == 0.1  # the slider's default, asked when first shown
    train_epochs(qtbot, w, 2)
    qtbot.waitUntil(lambda: view.drawn and int(view.drawn["row"]) == c.sample and len(view.history) >= 2,
                    timeout=30_000)
    assert view.clean_curve.xData is not None and len(view.clean_curve.xData) >= 2
    assert len(view.attack_curve.yData) == len(view.clean_curve.yData)
    assert all(0 <= a <= 1 and 0 <= b <= 1 for a, b in view.history.values())
    assert np.mean([a for a, _ in view.history.values()]) > np.mean([b for _, b in view.history.values()])
    assert view.numbers.text().count("%") == 2

    view.slider.setValue(25)
    assert view.eps_label.text() == "ε = 0.25"
    assert c.trainer.prober.request("adversarial").eps == 0.25
    assert not view.history or all(s == c.trainer.step for s in view.history)  # cleared: another experiment
    qtbot.waitUntil(lambda: adversarial(w) is not None and abs(float(adversarial(w)["eps"]) - 0.25) < 1e-6)
    qtbot.waitUntil(lambda: abs(float(view.drawn["eps"]) - 0.25) < 1e-6)
    a = view.drawn
    assert np.abs(a["perturbation"]).max() <= 0.25 + 1e-6 and np.abs(a["perturbation"]).max() > 0.2
    assert a["accuracy_adv"] < a["accuracy"]
    assert "ε = 0.25" in view.pictures.titles[2]
    assert list(view.history) == [c.trainer.step]

    c.select_sample(7)
    assert c.trainer.prober.request("adversarial").sample == 7
    qtbot.waitUntil(lambda: int(view.drawn["row"]) == 7)
    np.testing.assert_array_equal(view.drawn["input"], np.asarray(c.trainer.data.meta["raw_test"])[7])
    assert view.caption.text().startswith("test image 7, label ")

    picture = view.pictures.grab().toImage()
    assert len(colours(picture)) > 10  # grey images and a two-coloured map, not a blank panel
    for k in range(3):  # every picture drawn, each with more than one colour
        r = view.pictures.picture_rect(k)
        assert len(colours(picture.copy(r.adjusted(2, 2, -2, -2)), 1)) > 2
    train_epochs(qtbot, w, 1)
    qtbot.waitUntil(lambda: len(view.history) >= 2, timeout=30_000)
    assert len(view.attack_curve.xData) >= 2 and np.isfinite(view.attack_curve.yData).all()


def test_a_new_run_clears_the_curve(open_window, qtbot):
    w = open_window("digits-cnn")
    c = w.controller
    view = AdversarialView(c)
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    train_epochs(qtbot, w, 1)
    qtbot.waitUntil(lambda: len(view.history) >= 2, timeout=30_000)
    c.reset()
    qtbot.waitUntil(lambda: view.run is c.run_info and c.snapshot is not None and c.snapshot.step == 0)
    assert list(view.history) in ([], [0])
