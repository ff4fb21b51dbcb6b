from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before any QApplication exists

from collections.abc import Iterator
from typing import Any

import pytest
import shiboken6
from PySide6.QtWidgets import QMessageBox

from app import worker
from app.main import build, configure
from app.window import MainWindow


@pytest.fixture(autouse=True)
def app_home(tmp_path, monkeypatch) -> Any:
    """Settings, recent files and autosaves go to a temporary folder, never the user's."""
    home = tmp_path / "home"
    monkeypatch.setenv("DL_PLAYGROUND_HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def no_thread_left() -> Iterator[None]:
    """Fail any test that leaves a training QThread running (ARCHITECTURE.md, "Tests")."""
    yield
    running = [t for t in list(worker.LIVE) if t.running()]
    for t in running:
        t.shutdown()
    assert not running, f"{len(running)} training thread(s) left running"


class Dialogs:
    """Records message boxes instead of showing them; `answers` says what `question` returns."""

    def __init__(self) -> None:
        self.shown: list[tuple[str, str, str]] = []
        self.answers: list[QMessageBox.StandardButton] = []

    def texts(self, kind: str | None = None) -> list[str]:
        return [text for k, _title, text in self.shown if kind is None or k == kind]


@pytest.fixture(autouse=True)
def dialogs(monkeypatch) -> Dialogs:
    d = Dialogs()

    def record(kind: str):
        def show(parent, title, text, *args, **kwargs):
            d.shown.append((kind, title, text))
            if kind == "question":
                return d.answers.pop(0) if d.answers else QMessageBox.StandardButton.Discard
            return QMessageBox.StandardButton.Ok
        return show

    for kind in ("critical", "warning", "question", "information"):
        monkeypatch.setattr(QMessageBox, kind, staticmethod(record(kind)))
    return d


@pytest.fixture
def open_window(qtbot) -> Iterator[Any]:
    """A factory for shown windows that are closed (training stopped, no prompts) after the test."""
    configure()
    windows: list[MainWindow] = []

    def make(source: str | None = "tfp-circle") -> MainWindow:
        window, error = build(source)
        assert error is None, error
        window.show()
        qtbot.waitExposed(window)
        windows.append(window)
        qtbot.waitUntil(lambda: not window.controller.probes_pending)  # the shown views have their probes
        return window

    yield make
    for w in windows:
        if shiboken6.isValid(w):  # pytest-qt may have closed (and so deleted) it already
            w.controller.set_modified(False)
            w.close()
        assert not w.controller.training.running()
