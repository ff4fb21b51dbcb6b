"""Files from the window: save and reopen, bad files, autosave and recovery, export, drops, layout memory."""
from __future__ import annotations

import os
import zipfile

import numpy as np
import torch
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QMessageBox

from app import recovery
from app.main import offer_recovery
from engine.session import load_session


def train_epochs(qtbot, window, n: int) -> None:
    c = window.controller
    for _ in range(n):
        target = c.trainer.epoch + 1
        window.epoch_action.trigger()
        qtbot.waitUntil(lambda t=target: not c.worker.busy and c.snapshot.epoch == t)


def test_save_and_reopen_gives_the_same_run(open_window, qtbot, tmp_path):
    w = open_window("spiral")
    train_epochs(qtbot, w, 3)
    w.batch_action.trigger()
    c = w.controller
    # Wait for the step to be drawn, not only done: the GUI takes the last snapshot when the worker's idle
    # signal arrives, a moment after the worker stops being busy.
    qtbot.waitUntil(lambda: not c.worker.busy and c.snapshot.step == c.trainer.step == 3 * c.trainer.steps_per_epoch + 1)
    w.output.discretize.setChecked(True)
    path = tmp_path / "run.dlp"
    assert w.files._save_to(path)
    assert not w.isWindowModified() and w.windowTitle().startswith("run.dlp")

    w2 = open_window(str(path))
    a, b = w.controller, w2.controller
    assert b.snapshot.epoch == 3 and b.snapshot.step == a.snapshot.step
    for key in ("epoch_train_loss", "epoch_test_loss", "epoch_test_accuracy"):
        np.testing.assert_array_equal(a.history.epochs[key].view(), b.history.epochs[key].view())
    np.testing.assert_array_equal(a.history.step_loss.view(), b.history.step_loss.view())
    np.testing.assert_array_equal(w.curves.train_curve.xy()[1], w2.curves.train_curve.xy()[1])
    np.testing.assert_array_equal(w.output.rgb, w2.output.rgb)  # same boundary, drawn discretized again
    assert w2.output.discretize.isChecked()
    for k, v in a.trainer.model.state_dict().items():
        assert torch.equal(v, b.trainer.model.state_dict()[k])
    # Both go on exactly alike: same losses, same weights.
    train_epochs(qtbot, w, 2)
    train_epochs(qtbot, w2, 2)
    np.testing.assert_array_equal(a.history.step_loss.view(), b.history.step_loss.view())
    for k, v in a.trainer.model.state_dict().items():
        assert torch.equal(v, b.trainer.model.state_dict()[k])


def test_saving_while_training_writes_a_consistent_state(open_window, qtbot, tmp_path):
    w = open_window("tfp-circle")
    w.controller.play()
    qtbot.waitUntil(lambda: w.controller.snapshot.epoch >= 2)
    path = tmp_path / "live.dlp"
    assert w.files._save_to(path)
    assert w.controller.playing
    w.controller.pause()
    s = load_session(path)
    assert s.checkpoint is not None and s.checkpoint.epoch >= 2
    assert len(s.checkpoint.history["step_loss"]) == s.checkpoint.step


def test_a_corrupt_file_shows_the_reason_and_keeps_the_session(open_window, dialogs, tmp_path):
    w = open_window("xor")
    before = (w.controller.spec, w.controller.trainer.run_id, w.windowTitle())
    bad = tmp_path / "broken.dlp"
    bad.write_bytes(b"PK\x03\x04 this is not a zip at all")
    assert not w.files.open_path(bad)
    assert dialogs.texts("critical") and "broken.dlp" in dialogs.texts("critical")[0]
    assert "\n" not in dialogs.texts("critical")[0].split(": ", 1)[1]  # one line, the engine's reason
    assert (w.controller.spec, w.controller.trainer.run_id, w.windowTitle()) == before
    member = tmp_path / "evil.dlp"
    with zipfile.ZipFile(member, "w") as zf:
        zf.writestr("../escape.json", "{}")
    assert not w.files.open_path(member)
    assert "evil.dlp" in dialogs.texts("critical")[1]
    assert w.controller.trainer.run_id == before[1]


def test_unsaved_changes_are_asked_about(open_window, dialogs):
    w = open_window("tfp-circle")
    w.data_panel.editor.noise.setValue(10)
    assert w.isWindowModified() and "*" not in w.windowTitle().replace("[*]", "")
    spec = w.controller.spec
    dialogs.answers = [QMessageBox.StandardButton.Cancel]
    w.files.new()
    assert dialogs.texts("question") and w.controller.spec == spec
    dialogs.answers = [QMessageBox.StandardButton.Discard]
    w.files.new()
    assert w.controller.spec.dataset.noise == 0 and not w.isWindowModified()


def test_autosave_recovery_and_clean_exit(open_window, qtbot, dialogs):
    w = open_window("moons")
    train_epochs(qtbot, w, 2)
    assert w.controller.modified
    w.files.autosave()
    auto = w.files.autosave_file
    assert auto.is_file() and recovery.orphans() == []  # this process is alive: nothing to offer
    crashed = auto.with_name("autosave-999999999.dlp")  # as if left by a process that died
    os.replace(auto, crashed)
    assert [o.path for o in recovery.orphans()] == [crashed]
    w2 = open_window("tfp-circle")
    dialogs.answers = [QMessageBox.StandardButton.Yes]
    offer_recovery(w2)
    assert w2.controller.snapshot.epoch == 2 and w2.controller.spec.dataset.name == "moons"
    assert w2.isWindowModified() and not crashed.exists()
    w2.files.autosave()
    assert w2.files.autosave_file.is_file()
    w2.controller.set_modified(False)
    w2.close()
    assert not w2.files.autosave_file.exists()  # a clean exit leaves nothing to recover


def test_export_every_view_and_the_history(open_window, qtbot, tmp_path):
    w = open_window("tfp-circle")
    train_epochs(qtbot, w, 3)
    for key in ("output", "curves", "health", "network"):
        for fmt in ("png", "svg"):
            path = tmp_path / f"{key}.{fmt}"
            w.files.export(key, fmt, path)
            data = path.read_bytes()
            assert data.startswith(b"\x89PNG") if fmt == "png" else b"<svg" in data[:2000]
    w.files.export("history", "csv", tmp_path / "h.csv")
    rows = (tmp_path / "h.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,train_loss") and len(rows) == 4
    w.files.export("steps", "csv", tmp_path / "s.csv")
    assert len((tmp_path / "s.csv").read_text().splitlines()) == w.controller.trainer.step + 1


def test_dropping_a_session_file_opens_it(open_window, qtbot, tmp_path):
    w = open_window("spiral3")
    train_epochs(qtbot, w, 1)
    path = tmp_path / "dropped.dlp"
    w.files._save_to(path)
    w2 = open_window("tfp-circle")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    w2.dropEvent(event)
    assert w2.controller.spec.dataset.name == "spiral3" and w2.controller.snapshot.epoch == 1
    assert w2.windowTitle().startswith("dropped.dlp")
    assert str(path.resolve()) in w2.files.recent()


def test_window_remembers_its_layout(open_window):
    w = open_window()
    w.docks["Health"].hide()
    w.controller.set_modified(False)
    w.close()
    w2 = open_window()
    assert w2.docks["Health"].isHidden() and not w2.docks["Curves"].isHidden()


def test_launch_with_a_bad_source_opens_the_default_and_says_why(tmp_path, qtbot):
    from app.main import build

    window, error = build(str(tmp_path / "missing.dlp"))
    window.show()  # a window that was never shown gets no close event, so nothing would stop its thread
    try:
        assert error is not None and "missing.dlp" in error and "no such file" in error
        assert window.controller.spec.name == "tfp-circle"
    finally:
        window.controller.set_modified(False)
        window.close()


def test_launch_with_a_spec_json(open_window, tmp_path):
    from engine.presets import PRESET_DIR

    spec = tmp_path / "mine.json"
    spec.write_text((PRESET_DIR / "xor.json").read_text())
    w = open_window(str(spec))
    assert w.controller.spec.dataset.name == "xor" and w.files.path is None


def test_an_image_session_reopens_with_its_selected_image_and_view_settings(open_window, qtbot, tmp_path, caplog):
    w = open_window("digits-cnn")
    w.controller.select_sample(17)
    sal = w.views["saliency"]
    sal.method.setCurrentIndex(sal.method.findData("integrated_gradients"))
    sal.target.setCurrentIndex(sal.target.findData(3))
    w.views["adversarial"].slider.setValue(7)
    path = tmp_path / "digits.dlp"
    assert w.files._save_to(path)
    ui = load_session(path).ui
    assert ui["sample"] == 17 and ui["saliency"]["method"] == "integrated_gradients" and ui["saliency"]["target"] == 3
    w2 = open_window(str(path))
    sal2 = w2.views["saliency"]
    qtbot.waitUntil(lambda: sal2.target.currentData() == 3)  # its classes come when it first draws the run
    assert w2.controller.sample == 17 and sal2.method.currentData() == "integrated_gradients"
    assert sal2.target.currentData() == 3 and w2.views["adversarial"].slider.value() == 7
    assert sal2.request().sample == 17 and sal2.request().method == "integrated_gradients"
    # what a file may hold instead: each is skipped with a log line, the rest still applies
    with caplog.at_level("WARNING", logger="app"):
        w2.apply_ui({"sample": 10_000, "saliency": {"method": "telepathy", "target": "3", "layer": [1]},
                     "adversarial": {"eps": 10_000}})
    assert w2.controller.sample == 17 and sal2.method.currentData() == "integrated_gradients"
    assert sal2.target.currentData() == 3 and w2.views["adversarial"].slider.value() == 7
    assert len(caplog.records) >= 4
