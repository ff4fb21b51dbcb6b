"""Any bad file, however it arrives (launch, Open, drop, recovery), gets a dialog naming the problem once, and
the window stays usable; a reopened run tells the truth about its state."""
from __future__ import annotations

import zipfile

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QMessageBox

from app import recovery
from app.main import build, offer_recovery


def encrypted(path, source):
    """A copy of a session with every member's encryption flag set."""
    raw = bytearray(source.read_bytes())
    for sig, at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        i = raw.find(sig)
        while i != -1:
            raw[i + at] |= 0x1
            i = raw.find(sig, i + 4)
    path.write_bytes(bytes(raw))
    return path


def saved(w, path):
    w.files._save_to(path)
    return path


def test_launch_with_a_hostile_file_opens_the_default_and_says_why_once(open_window, tmp_path, qtbot):
    good = saved(open_window("moons"), tmp_path / "good.dlp")
    bad = encrypted(tmp_path / "enc.dlp", good)
    window, error = build(str(bad))
    window.show()
    try:
        assert error == f"{bad}: member manifest.json is encrypted; sessions are never encrypted"
        assert window.controller.spec.name == "tfp-circle"
    finally:
        window.controller.set_modified(False)
        window.close()


def test_open_and_drop_of_bad_files_keep_the_window_usable(open_window, dialogs, tmp_path, qtbot):
    w = open_window("spiral")
    good = saved(w, tmp_path / "good.dlp")
    text = tmp_path / "notes.dlp"
    text.write_text("just text")
    folder = tmp_path / "folder.dlp"
    folder.mkdir()
    zipped = tmp_path / "other.dlp"
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("manifest.json", "[" * 10_000 + "]" * 10_000)
    bad = [encrypted(tmp_path / "enc.dlp", good), text, folder, zipped]
    for path in bad[:2]:
        assert not w.files.open_path(path, confirmed=True)
    for path in bad[2:]:
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(path))])
        w.dropEvent(QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                               Qt.KeyboardModifier.NoModifier))
    texts = dialogs.texts("critical")
    assert len(texts) == 4
    for path, text in zip(bad, texts, strict=True):
        assert text.count(str(path)) == 1 and "\n" not in text, text  # the path once, one line
    assert "not a DL Playground session" in texts[1] and "is a folder" in texts[2] and "nested" in texts[3]
    assert w.controller.spec.name == "spiral"  # the session is untouched and still trains
    w.controller.step_epoch()
    qtbot.waitUntil(lambda: w.controller.snapshot is not None and w.controller.snapshot.epoch == 1)


def test_a_bad_autosave_is_described_and_discarded(open_window, dialogs, tmp_path):
    w = open_window("tfp-circle")
    crashed = w.files.autosave_file.with_name("autosave-999999999.dlp")
    crashed.write_bytes(b"PK\x03\x04 damaged")
    dialogs.answers = [QMessageBox.StandardButton.Yes]
    offer_recovery(w)
    assert dialogs.texts("question") and "unreadable autosave" in dialogs.texts("question")[0]
    assert dialogs.texts("critical") and str(crashed) in dialogs.texts("critical")[0]
    assert not crashed.exists() and w.controller.spec.name == "tfp-circle"
    assert recovery.orphans() == []


def test_a_session_saved_while_training_reopens_paused(open_window, qtbot, tmp_path):
    w = open_window("tfp-circle")
    w.controller.play()
    qtbot.waitUntil(lambda: w.controller.snapshot is not None and w.controller.snapshot.epoch >= 2)
    path = saved(w, tmp_path / "live.dlp")  # saved mid-run: the file's state says "running"
    w.controller.pause()
    w2 = open_window(str(path))
    assert not w2.controller.playing and w2.controller.snapshot.status == "paused"
    assert w2.status_label.text().startswith("paused")
