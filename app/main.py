"""Start the app: ``dl-playground [FILE.dlp | SPEC.json | PRESET]`` or ``python -m app [...]``."""
from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

T0 = time.perf_counter()

import pyqtgraph as pg
import PySide6
import torch
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from engine import EngineError
from engine.cli import resolve
from engine.presets import load_preset
from engine.session import Session, load_session

from .files import DEFAULT_PRESET
from .recovery import discard, orphans, recovery_meta
from .window import MainWindow

# Known to crash the interpreter within seconds of live plotting (ARCHITECTURE.md, "The Qt pin"). pyproject keeps pip from
# installing it; this catches a Qt that came another way (conda, a system package, `pip install PySide6`).
CRASHING_QT = (("6.12.0", "0.14."),)


def unsupported_qt(pyside: str = PySide6.__version__, pyqtgraph: str = pg.__version__) -> str | None:
    """Why this PySide6 and pyqtgraph must not run together, or None when they may."""
    for bad_pyside, bad_pg in CRASHING_QT:
        if pyside == bad_pyside and pyqtgraph.startswith(bad_pg):
            return (f"PySide6 {pyside} with pyqtgraph {pyqtgraph} crashes during live plotting. "
                    "Install a tested Qt: pip install 'PySide6-Essentials>=6.10.2,<6.12'")
    return None


def configure() -> None:
    """Process-wide settings: one torch thread (two stalled the GUI in tests), row-major images."""
    torch.set_num_threads(1)
    pg.setConfigOptions(imageAxisOrder="row-major", antialias=True, background="w", foreground="k")


def offer_recovery(window: MainWindow) -> None:
    """After a crash: offer the newest autosave left behind, then clear the rest."""
    found = orphans()
    if not found:
        return
    newest = found[0]
    answer = QMessageBox.question(
        window, "Recover session?",
        f"DL Playground did not close cleanly last time. Recover the autosaved session ({newest.summary})?",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes)
    if answer == QMessageBox.StandardButton.Yes:
        try:
            session = load_session(newest.path)
            original = newest.original
            window.files.show_session(session, Path(original) if original else None,
                                      recovery_meta(session.ui).get("name") or "recovered", modified=True)
        except EngineError as exc:
            QMessageBox.critical(window, "Cannot recover", str(exc))
    for o in found:
        discard(o.path)


def build(source: str | None) -> tuple[MainWindow, str | None]:
    """The window with `source` open (the default preset, and an error, if it cannot be opened). Show it before
    closing it: Qt sends no close event to a window never shown, and the close event stops the training thread."""
    error = None
    default = Session(load_preset(DEFAULT_PRESET), None, {})
    session = default
    window = None
    if source:
        try:
            session = resolve(source)
            window = MainWindow(session.spec, session.checkpoint)  # one trainer, built once, from the file's state
        except EngineError as exc:
            error, session = str(exc), default  # the error names the file; the window opens on the default
    if window is None:
        window = MainWindow(session.spec, session.checkpoint)
    window.apply_ui(session.ui)
    if source and error is None:
        p = Path(source)
        if p.suffix == ".dlp" and p.is_file():
            window.files.path = p
            window.files.add_recent(p)
        window.files.name = session.spec.name or p.stem
        window.files.update_title()
    return window, error


def handle_signals(app: QApplication, window: MainWindow) -> None:
    """Ctrl+C or SIGTERM: keep an autosave of unsaved work (the next launch offers it), stop training, exit."""
    def stop(signum: int, frame: object) -> None:
        window.files.autosave()
        window.files.timer.stop()
        window.controller.shutdown()
        app.exit(128 + signum)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    ticker = QTimer(window)  # Python runs signal handlers only between bytecodes: wake it up now and then
    ticker.timeout.connect(lambda: None)
    ticker.start(250)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dl-playground", description="Build networks and watch them train.")
    parser.add_argument("source", nargs="?", help="a session file (.dlp), a spec (.json) or a preset name")
    parser.add_argument("--startup-time", action="store_true",
                        help="print when the window is ready for input, then quit (for the benchmark)")
    args = parser.parse_args(argv)
    why = unsupported_qt()
    if why:
        print(f"error: {why}", file=sys.stderr)
        return 2
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("DL Playground")
    configure()
    window, error = build(args.source)
    window.show()
    handle_signals(app, window)
    app.aboutToQuit.connect(window.controller.shutdown)
    if args.startup_time:
        def ready() -> None:
            print(f"window usable {time.perf_counter() - T0:.3f} s after app.main started", flush=True)
            window.controller.set_modified(False)
            window.close()
        QTimer.singleShot(0, ready)  # runs once the event loop has drawn the window and handles input
    if error:
        QTimer.singleShot(0, lambda: QMessageBox.critical(window, "Cannot open", error))
    QTimer.singleShot(0, lambda: offer_recovery(window))
    return app.exec()
