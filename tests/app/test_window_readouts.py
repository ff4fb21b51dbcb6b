"""The toolbar's step counter, the status bar's GUI load, Space over a spin box, and the frame budget."""
from __future__ import annotations

import time

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractSpinBox

from app import controller as controller_module
from tests.app.helpers import train_epochs


def test_one_minibatch_step_moves_the_step_counter(open_window, qtbot):
    w = open_window("tfp-circle")
    assert w.step_label.text() == "step 0"
    w.batch_action.trigger()
    qtbot.waitUntil(lambda: w.controller.snapshot is not None and w.controller.snapshot.step == 1)
    qtbot.waitUntil(lambda: w.step_label.text() == "step 1")
    assert w.epoch_label.text() == "Epoch 000,000"  # the epoch counter alone would not have moved


def test_space_plays_while_a_spin_box_has_focus(open_window, qtbot):
    w = open_window("tfp-circle")
    qtbot.waitUntil(lambda: not w.controller._preparing)
    box = next(b for b in w.training_panel.findChildren(QAbstractSpinBox) if b.isVisible())
    w.activateWindow()
    box.setFocus()
    qtbot.waitUntil(box.hasFocus)
    before = box.text()
    qtbot.keyClick(box, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: w.controller.playing)
    assert box.text() == before  # the space went to Play, not into the number
    qtbot.keyClick(box, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: not w.controller.playing)


def test_gui_load_is_shown_while_training(open_window, qtbot):
    w = open_window("tfp-circle")
    train_epochs(qtbot, w, 3)
    w.controller.play()
    qtbot.waitUntil(lambda: w.load_label.text().startswith("GUI load"), timeout=5000)
    w.controller.pause()
    qtbot.waitUntil(lambda: w.load_label.text() == "")


def test_a_gui_over_its_budget_draws_less_often_and_back_at_full_rate_when_paused(open_window, qtbot):
    """The frame budget: a frame that costs more than the budget allows stretches the interval between frames
    (never beyond MAX_FRAME_S), so the training thread keeps its share; pausing restores the full rate."""
    w = open_window("tfp-circle")
    c = w.controller

    def heavy() -> None:  # a view that burns 40 ms of GUI CPU a frame: 30 frames a second would be 120 %
        end = time.thread_time() + 0.04
        while time.thread_time() < end:
            pass

    c.frame.connect(heavy)
    c.play()
    qtbot.waitUntil(lambda: c.frame_interval > 0.2, timeout=15000)
    assert c.frame_interval <= controller_module.MAX_FRAME_S
    frames = c.frames_drawn
    qtbot.wait(1500)
    assert c.frames_drawn - frames <= 1.5 / 0.2 + 1  # about 4–5 a second, not 30
    c.pause()
    c.frame.disconnect(heavy)
    assert c.frame_interval == controller_module.FRAME_S


def test_a_weight_edited_while_paused_redraws_every_view_at_once(open_window, qtbot):
    """The edit is probed again at the same step: views key their frames on the probe's serial, not its step."""
    from engine import EditWeight

    w = open_window("tfp-circle")
    train_epochs(qtbot, w, 2)
    c = w.controller
    before = w.output.rgb.copy()
    c.edit_weight(EditWeight("layers.dense_1.weight", (0, 0), 4.0))
    assert c.snapshot.step == c.trainer.step  # no training happened
    assert (w.output.rgb != before).any()  # the boundary of the edited network is on screen
