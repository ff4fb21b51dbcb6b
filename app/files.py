"""The File menu: new, open, presets, save, recent files, export, autosave and recovery, the title bar. It serves
any window that offers the small `SessionWindow` protocol."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from PySide6.QtCore import QObject, QTimer, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMenu, QMenuBar, QMessageBox, QWidget

from engine import EngineError
from engine.cli import resolve
from engine.presets import load_preset, preset_names
from engine.session import Session, save_session

from .actions import make_action
from .controller import Controller
from .export import write_csv
from .recovery import autosave_path, discard
from .settings import settings

AUTOSAVE_MS = 60_000
MAX_RECENT = 8
DEFAULT_PRESET = "tfp-circle"
FILTER_OPEN = "Sessions and specs (*.dlp *.json);;All files (*)"
FILTER_SAVE = "DL Playground session (*.dlp)"


@dataclass(frozen=True)
class ViewExport:
    """A view the File menu exports as PNG or SVG."""

    key: str  # in default file names: "circle-output.png"
    label: str  # "Output view"
    write: Callable[[str, Path], None]  # (format, path); raises OSError


class SessionWindow(Protocol):
    """What the file manager needs of the window it serves."""

    controller: Controller

    def window(self) -> QWidget: ...  # the dialogs' parent

    def menuBar(self) -> QMenuBar: ...

    def close(self) -> bool: ...

    def show_status(self, text: str, ms: int = 4000) -> None: ...

    def show_title(self, title: str, modified: bool) -> None: ...

    def session_shown(self) -> None: ...  # another session replaced the shown one

    def view_exports(self) -> list[ViewExport]: ...

    def ui_state(self) -> dict[str, Any]: ...

    def apply_ui(self, ui: Any) -> None: ...


class FileManager(QObject):
    """Owns the file the window shows (if any), its menu, the autosave timer and the window title."""

    def __init__(self, host: SessionWindow) -> None:
        super().__init__(host.window())
        self.host = host
        self.path: Path | None = None
        self.name = host.controller.spec.name or DEFAULT_PRESET
        self.autosave_file = autosave_path()
        self.timer = QTimer(self)
        self.timer.setInterval(AUTOSAVE_MS)
        self.timer.timeout.connect(self.autosave)
        self.timer.start()
        self._build_menu()
        host.controller.modified_changed.connect(self._on_modified)

    @property
    def controller(self) -> Controller:
        return self.host.controller

    @property
    def parent_widget(self) -> QWidget:
        return self.host.window()

    # --- menu --------------------------------------------------------------------------------------

    def _act(self, menu: QMenu, text: str, tip: str, slot: Callable[[], object],
             shortcut: QKeySequence | QKeySequence.StandardKey | str) -> None:
        menu.addAction(make_action(self, text, tip, slot, shortcut))

    def _build_menu(self) -> None:
        menu = self.host.menuBar().addMenu("&File")
        menu.setToolTipsVisible(True)
        self._act(menu, "&New", "Start a new session from the default preset", self.new, QKeySequence.StandardKey.New)
        self._act(menu, "&Open…", "Open a session (.dlp) or spec (.json)", self.open_dialog, "Ctrl+O")
        presets = menu.addMenu("Open &preset")
        presets.setToolTipsVisible(True)
        for name in preset_names():
            action = presets.addAction(name)
            action.setData(name)
            action.setToolTip(f"Start the {name} preset")
        presets.triggered.connect(self._on_preset)
        self.recent_menu = menu.addMenu("&Recent files")
        self.recent_menu.triggered.connect(self._on_recent)
        menu.addSeparator()
        self._act(menu, "&Save", "Save the session with its weights and history", self.save, "Ctrl+S")
        self._act(menu, "Save &As…", "Save the session under a new name", self.save_as, "Ctrl+Shift+S")
        export = menu.addMenu("&Export")
        export.setToolTipsVisible(True)
        for view in self.host.view_exports():
            for fmt in ("png", "svg"):
                action = export.addAction(f"{view.label} as {fmt.upper()}…")
                action.setData((view.key, fmt))
                action.setToolTip(f"Save the {view.label.lower()} as a {fmt.upper()} image")
        export.addSeparator()
        action = export.addAction("History as CSV…")
        action.setData(("history", "csv"))
        action.setToolTip("Per-epoch train and test loss and accuracy as a CSV table")
        action = export.addAction("Step losses as CSV…")
        action.setData(("steps", "csv"))
        action.setToolTip("The loss of every training step as a CSV table")
        export.triggered.connect(self._on_export)
        menu.addSeparator()
        self._act(menu, "&Quit", "Close the window (asks about unsaved changes)", self.host.close, "Ctrl+Q")
        self._refresh_recent()

    # --- title and modified state ------------------------------------------------------------------

    def update_title(self) -> None:
        label = self.path.name if self.path else f"{self.name} (unsaved)"
        self.host.show_title(f"{label}[*] — DL Playground", self.controller.modified)

    @Slot(bool)
    def _on_modified(self, modified: bool) -> None:
        self.update_title()
        if not modified:
            discard(self.autosave_file)

    def confirm_discard(self, doing: str) -> bool:
        """Ask before losing unsaved changes. True when it is fine to go on."""
        if not self.controller.modified:
            return True
        self.controller.pause()
        answer = QMessageBox.question(
            self.parent_widget, "Unsaved changes", f"Save the changes to {self.path.name if self.path else self.name} "
            f"before {doing}?", QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Save)
        if answer == QMessageBox.StandardButton.Save:
            return self.save()
        return answer == QMessageBox.StandardButton.Discard

    # --- opening -----------------------------------------------------------------------------------

    @Slot()
    def new(self) -> None:
        if self.confirm_discard("starting a new session"):
            self.show_session(Session(load_preset(DEFAULT_PRESET), None, {}), None, DEFAULT_PRESET)

    @Slot()
    def open_dialog(self) -> None:
        if not self.confirm_discard("opening another session"):
            return
        start = str(self.path.parent) if self.path else str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self.parent_widget, "Open session", start, FILTER_OPEN)
        if path:
            self.open_path(path, confirmed=True)

    def open_path(self, path: str | Path, confirmed: bool = False) -> bool:
        """Open a .dlp session or .json spec; errors are a dialog and leave the current session as it was."""
        if not confirmed and not self.confirm_discard("opening another session"):
            return False
        path = Path(path)
        try:
            session = resolve(str(path))
            self.show_session(session, path if path.suffix == ".dlp" else None, path.stem)
        except EngineError as exc:
            QMessageBox.critical(self.parent_widget, "Cannot open file", str(exc))  # it names the file
            return False
        self.add_recent(path)
        return True

    @Slot(QAction)
    def _on_preset(self, action: QAction) -> None:
        if self.confirm_discard("opening a preset"):
            name = action.data()
            self.show_session(Session(load_preset(name), None, {}), None, name)

    @Slot(QAction)
    def _on_recent(self, action: QAction) -> None:
        if action.data():
            self.open_path(action.data())

    def show_session(self, session: Session, path: Path | None, name: str, modified: bool = False) -> None:
        """Replace the window's session (raises EngineError, changing nothing, if it does not build)."""
        self.controller.load(session.spec, session.checkpoint)
        self.path, self.name = path, session.spec.name or name
        self.host.apply_ui(session.ui)
        self.host.session_shown()
        self.controller.set_modified(modified)
        self.update_title()

    # --- saving ------------------------------------------------------------------------------------

    def write(self, path: Path, extra_ui: dict[str, Any] | None = None) -> None:
        """Save the session as it is between two steps (training may go on)."""
        c = self.controller
        save_session(path, c.spec, c.checkpoint(), self.host.ui_state() | (extra_ui or {}))

    @Slot()
    def save(self) -> bool:
        if self.path is None:
            return self.save_as()
        return self._save_to(self.path)

    @Slot()
    def save_as(self) -> bool:
        start = str(self.path) if self.path else str(Path.home() / f"{self.name}.dlp")
        path, _ = QFileDialog.getSaveFileName(self.parent_widget, "Save session", start, FILTER_SAVE)
        if not path:
            return False
        path_ = Path(path)
        if path_.suffix != ".dlp":
            path_ = path_.with_name(path_.name + ".dlp")
        return self._save_to(path_)

    def _save_to(self, path: Path) -> bool:
        try:
            self.write(path)
        except (EngineError, OSError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            QMessageBox.critical(self.parent_widget, "Cannot save", f"{path.name}: {why}. The previous file is unchanged.")
            return False
        self.path, self.name = path, path.stem
        self.controller.set_modified(False)
        self.add_recent(path)
        self.update_title()
        self.host.show_status(f"Saved {path}")
        return True

    @Slot()
    def autosave(self) -> None:
        """Write the recovery copy while there are unsaved changes; never disturbs the user's own file."""
        if not self.controller.modified:
            return
        meta = {"recovery": {"path": str(self.path) if self.path else None, "name": self.name}}
        try:
            self.write(self.autosave_file, meta)
        except (EngineError, OSError) as exc:
            self.host.show_status(f"Autosave failed: {exc}", 8000)

    def finish(self) -> None:
        """A clean exit: nothing is left to recover."""
        self.timer.stop()
        discard(self.autosave_file)

    # --- recent files ------------------------------------------------------------------------------

    def recent(self) -> list[str]:
        value = settings().value("recent", [])
        items = [value] if isinstance(value, str) else list(value or [])
        return [p for p in items if isinstance(p, str)]

    def add_recent(self, path: Path) -> None:
        items = [str(path.resolve())] + [p for p in self.recent() if p != str(path.resolve())]
        s = settings()
        s.setValue("recent", items[:MAX_RECENT])
        s.sync()
        self._refresh_recent()

    def _refresh_recent(self) -> None:
        self.recent_menu.clear()
        items = self.recent()
        for p in items:
            action = self.recent_menu.addAction(Path(p).name)
            action.setData(p)
            action.setToolTip(p)
        self.recent_menu.setEnabled(bool(items))

    # --- export ------------------------------------------------------------------------------------

    @Slot(QAction)
    def _on_export(self, action: QAction) -> None:
        key, fmt = action.data()
        default = str((self.path.parent if self.path else Path.home()) / f"{self.name}-{key}.{fmt}")
        path, _ = QFileDialog.getSaveFileName(self.parent_widget, "Export", default, f"{fmt.upper()} (*.{fmt})")
        if path:
            try:
                self.export(key, fmt, Path(path))
            except OSError as exc:
                QMessageBox.critical(self.parent_widget, "Cannot export", f"{Path(path).name}: {exc.strerror or exc}")
                return
            self.host.show_status(f"Exported {path}")

    def export(self, key: str, fmt: str, path: Path) -> None:
        """Write one view as PNG or SVG, or the history ("history": per epoch, "steps": per step) as CSV."""
        if fmt == "csv":
            h = self.controller.history
            write_csv(path, h.csv_rows() if key == "history" else h.step_rows())
            return
        views = {view.key: view for view in self.host.view_exports()}
        views[key].write(fmt, path)
