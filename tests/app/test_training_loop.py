"""The window drives training: play, pause, step, live changes, divergence, errors, closing."""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from PySide6.QtGui import QKeySequence

from app.views.table import VIEWS
from engine import Trainer
from engine.presets import preset_names


def wait_epochs(qtbot, window, n: int, timeout: int = 30_000) -> None:
    qtbot.waitUntil(lambda: window.controller.snapshot is not None and window.controller.snapshot.epoch >= n,
                    timeout=timeout)


@pytest.mark.parametrize("preset", preset_names())
def test_each_preset_opens_and_shows_its_starting_model(open_window, qtbot, preset):
    w = open_window(preset)
    c = w.controller
    assert preset in w.windowTitle()
    assert c.snapshot is not None and c.snapshot.step == 0
    if c.trainer.data.points_train is not None:  # a plane to draw the output over
        assert w.output.rgb is not None and w.output.rgb.shape[2] == 3
        assert len(w.network.canvas.columns) == len(c.trainer.info.order) - len(
            [n for n in c.trainer.info.order if c.trainer.info.nodes[n].op not in ("dense", "input")])
    elif c.trainer.spec.dataset.task == "reconstruction":  # autoencoders: their views, not the classifier's
        assert not w.docks["Reconstructions"].isHidden() and w.docks["Saliency"].isHidden()
        assert not w.deck.tabs.isTabVisible(w.deck.tabs.indexOf(w.views["samples"]))
    elif c.trainer.spec.dataset.kind == "sequences":  # sequences: the predictions tab shows examples' answers
        view = w.views["sequence_predictions"]
        assert w.deck.tabs.isTabVisible(w.deck.tabs.indexOf(view))
        assert not w.deck.tabs.isTabVisible(w.deck.tabs.indexOf(w.views["samples"]))
        w.deck.tabs.setCurrentWidget(view)
        qtbot.waitUntil(lambda: view.rows.a is not None, timeout=10_000)
        assert len(view.rows.a["inputs"]) > 0
    else:  # images: the samples tab shows the test images with the untrained network's guesses
        w.deck.tabs.setCurrentWidget(w.views["samples"])
        assert len(w.views["samples"].grid.rows) > 0
    assert f"{c.trainer.info.total_params:,} parameters" == w.params_label.text()


def test_shortcuts_are_the_documented_keys(open_window):
    w = open_window()
    assert w.play_action.shortcut() == QKeySequence("Space")
    assert w.epoch_action.shortcut() == QKeySequence("Right")
    assert w.batch_action.shortcut() == QKeySequence("Shift+Right")
    assert w.reset_action.shortcut() == QKeySequence("R")


def test_play_lowers_the_loss_and_changes_the_boundary(open_window, qtbot):
    w = open_window("tfp-circle")
    before = w.output.rgb.copy()
    w.play_action.trigger()
    assert w.controller.playing and w.play_action.text() == "Pause"
    wait_epochs(qtbot, w, 15)
    w.play_action.trigger()
    assert not w.controller.playing
    h = w.controller.history
    losses = h.epochs["epoch_train_loss"].view()
    assert losses[-1] < 0.5 * losses[0]
    assert (w.output.rgb != before).any(axis=2).mean() > 0.05  # a visible share of pixels changed
    # Every step's loss reached the GUI, in order, as the trainer recorded it.
    np.testing.assert_array_equal(h.step_loss.view(), np.array(w.controller.trainer.history["step_loss"]))
    assert h.step_loss.n == w.controller.trainer.step


def test_pause_stops_the_epoch_counter(open_window, qtbot):
    w = open_window()
    w.controller.play()
    wait_epochs(qtbot, w, 2)
    w.controller.pause()
    # pause waits at most 5 s for the step boundary; on a loaded machine the idle signal brings the last frame
    qtbot.waitUntil(lambda: not w.controller.worker.busy and w.controller.snapshot.step == w.controller.trainer.step)
    epoch, label = w.controller.trainer.epoch, w.epoch_label.text()
    qtbot.wait(400)
    assert w.controller.trainer.epoch == epoch
    assert w.controller.snapshot.epoch == epoch
    assert w.epoch_label.text() == label


def test_step_advances_exactly_one_epoch_or_one_batch(open_window, qtbot):
    w = open_window()
    c = w.controller
    spe = c.trainer.steps_per_epoch
    w.epoch_action.trigger()
    qtbot.waitUntil(lambda: not c.worker.busy and c.snapshot.step == spe)
    assert c.trainer.epoch == 1 and c.snapshot.epoch == 1
    w.batch_action.trigger()
    qtbot.waitUntil(lambda: not c.worker.busy and c.snapshot.step == spe + 1)
    assert c.trainer.epoch == 1
    w.epoch_action.trigger()  # finishes the epoch the batch step began
    qtbot.waitUntil(lambda: not c.worker.busy and c.snapshot.step == 2 * spe)
    assert c.trainer.epoch == 2 and c.history.n_epochs == 2


def test_learning_rate_change_mid_run_keeps_the_epoch_count(open_window, qtbot):
    w = open_window()
    c = w.controller
    c.play()
    wait_epochs(qtbot, w, 3)
    run, epoch = c.trainer.run_id, c.snapshot.epoch
    w.training_panel.opt_boxes["lr"].setValue(0.01)
    qtbot.waitUntil(lambda: c.trainer.spec.optimizer.lr == 0.01)
    assert c.trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.01)
    wait_epochs(qtbot, w, epoch + 1)
    assert c.trainer.run_id == run and c.playing
    assert c.spec.optimizer.lr == 0.01 and w.windowTitle().endswith("— DL Playground")
    c.pause()


def test_data_change_resets_to_the_same_initial_weights(open_window, qtbot):
    w = open_window()
    c = w.controller
    c.play()
    wait_epochs(qtbot, w, 2)
    run = c.trainer.run_id
    w.data_panel.editor.noise.setValue(20)
    assert c.trainer.run_id != run and c.spec.dataset.noise == 20
    c.pause()
    fresh = Trainer(c.spec)
    c.reset()
    for k, v in fresh.model.state_dict().items():
        assert torch.equal(v, c.trainer.model.state_dict()[k])


def test_reset_without_same_weights_draws_new_ones(open_window):
    w = open_window()
    c = w.controller
    first = {k: v.clone() for k, v in c.trainer.model.state_dict().items()}
    w.same_weights.setChecked(False)
    w.reset_action.trigger()
    assert any(not torch.equal(v, c.trainer.model.state_dict()[k]) for k, v in first.items())
    w.same_weights.setChecked(True)
    seed = c.spec.training.seed
    w.reset_action.trigger()
    assert c.spec.training.seed == seed


def test_divergence_pauses_with_a_banner_naming_the_epoch(open_window, qtbot):
    w = open_window("plane")
    w.training_panel.opt_boxes["lr"].setValue(9.0)
    w.apply_spec(w.controller.spec.model_copy(update={"model": _wide_relu(w.controller.spec)}))
    w.controller.play()
    qtbot.waitUntil(lambda: w.banner.isVisible(), timeout=20_000)
    assert not w.controller.playing
    text = w.banner.label.text()
    assert "diverged" in text and "epoch" in text and "lower learning rate" in text


def _wide_relu(spec):
    from engine.presets import mlp
    from engine.spec import ModelSpec

    return ModelSpec.model_validate(mlp([8, 8], "relu", "linear"))


def test_engine_error_shows_a_dialog_and_the_app_keeps_running(open_window, qtbot, dialogs, monkeypatch):
    w = open_window()
    c = w.controller

    def broken() -> bool:
        raise RuntimeError("simulated failure inside a step")

    monkeypatch.setattr(c.trainer, "_step", broken)
    c.play()
    qtbot.waitUntil(lambda: bool(dialogs.texts("critical")))
    assert "simulated failure" in dialogs.texts("critical")[0]
    assert not c.playing and c.training.running()
    c.reset()  # a new trainer: the broken step is gone
    w.epoch_action.trigger()
    qtbot.waitUntil(lambda: not c.worker.busy and c.snapshot.epoch == 1)


def test_closing_while_training_stops_the_thread_quickly(open_window, qtbot):
    w = open_window("spiral")
    w.controller.play()
    wait_epochs(qtbot, w, 1)
    w.controller.set_modified(False)
    t = time.perf_counter()
    assert w.close()
    assert time.perf_counter() - t < 2.0
    assert not w.controller.training.running()


def test_live_plotting_soak(open_window, qtbot):
    """Plot live with every view shown for a few seconds (PySide6 6.12.0 + pyqtgraph 0.14 crashed here)."""
    w = open_window("spiral")
    w.deck.show_all()
    fits = {e.name for e in VIEWS if e.applies(w.controller.spec)  # every dock that applies, one central tab
            and (e.area is not None or w.views[e.name] is w.tabs.currentWidget())}
    assert all(d.isVisible() == d.toggleViewAction().isEnabled() for d in w.docks.values())
    qtbot.waitUntil(lambda: all(v.showing() for n, v in w.views.items() if n in fits))  # none parked out of sight
    w.controller.play()
    qtbot.wait(4000)
    w.controller.pause()
    assert w.controller.frames_drawn > 20
    assert len(w.health.grad_curves) == 5 and w.health.grad_curves["dense_1"].yData is not None
