"""The File menu: new, open, presets, save, recent files, export, autosave and recovery, the title bar."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyqtgraph.exporters as pgx
from PySide6.QtCore import QObject, QPoint, QRectF, QTimer, Slot
from PySide6.QtGui import QAction, QKeySequence, QPainter
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import QFileDialog, QGraphicsView, QMenu, QMessageBox, QWidget

from engine import EngineError
from engine.cli import resolve
from engine.presets import load_preset, preset_names
from engine.session import Session, atomic_write, save_session

from .recovery import autosave_path, discard

if TYPE_CHECKING:
    from .window import MainWindow

AUTOSAVE_MS = 60_000
MAX_RECENT = 8
DEFAULT_PRESET = "tfp-circle"
FILTER_OPEN = "Sessions and specs (*.dlp *.json);;All files (*)"
FILTER_SAVE = "DL Playground session (*.dlp)"


class FileManager(QObject):
    """Owns the file the window shows (if any), its menu, the autosave timer and the window title."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.path: Path | None = None
        self.name = window.controller.spec.name or DEFAULT_PRESET
        self.autosave_file = autosave_path()
        self.timer = QTimer(self)
        self.timer.setInterval(AUTOSAVE_MS)
        self.timer.timeout.connect(self.autosave)
        self.timer.start()
        self._build_menu()
        window.controller.modified_changed.connect(self._on_modified)

    # --- menu --------------------------------------------------------------------------------------

    def _act(self, menu: QMenu, text: str, slot: Any, shortcut: QKeySequence | str | None = None,
             tip: str = "") -> QAction:
        action = menu.addAction(text)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.setToolTip(tip or text)
        action.setStatusTip(tip or text)
        action.triggered.connect(slot)
        return action

    def _build_menu(self) -> None:
        menu = self.window.menuBar().addMenu("&File")
        menu.setToolTipsVisible(True)
        self._act(menu, "&New", self.new, QKeySequence.StandardKey.New, "Start a new session from the default preset")
        self._act(menu, "&Open…", self.open_dialog, "Ctrl+O", "Open a session (.dlp) or spec (.json)")
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
        self._act(menu, "&Save", self.save, "Ctrl+S", "Save the session with its weights and history")
        self._act(menu, "Save &As…", self.save_as, "Ctrl+Shift+S", "Save the session under a new name")
        export = menu.addMenu("&Export")
        export.setToolTipsVisible(True)
        w = self.window
        for label, key in (("Output view", "output"), ("Loss curves", "curves"), ("Health plots", "health"),
                           ("Network view", "network")):
            for fmt in ("png", "svg"):
                action = export.addAction(f"{label} as {fmt.upper()}…")
                action.setData((key, fmt))
                action.setToolTip(f"Save the {label.lower()} as a {fmt.upper()} image")
        export.addSeparator()
        action = export.addAction("History as CSV…")
        action.setData(("history", "csv"))
        action.setToolTip("Per-epoch train and test loss and accuracy as a CSV table")
        action = export.addAction("Step losses as CSV…")
        action.setData(("steps", "csv"))
        action.setToolTip("The loss of every training step as a CSV table")
        export.triggered.connect(self._on_export)
        menu.addSeparator()
        self._act(menu, "&Quit", w.close, "Ctrl+Q", "Close the window (asks about unsaved changes)")
        self._refresh_recent()

    # --- title and modified state ------------------------------------------------------------------

    def update_title(self) -> None:
        label = self.path.name if self.path else f"{self.name} (unsaved)"
        self.window.setWindowTitle(f"{label}[*] — DL Playground")
        self.window.setWindowModified(self.window.controller.modified)

    @Slot(bool)
    def _on_modified(self, modified: bool) -> None:
        self.update_title()
        if not modified:
            discard(self.autosave_file)

    def confirm_discard(self, doing: str) -> bool:
        """Ask before losing unsaved changes. True when it is fine to go on."""
        if not self.window.controller.modified:
            return True
        self.window.controller.pause()
        answer = QMessageBox.question(
            self.window, "Unsaved changes", f"Save the changes to {self.path.name if self.path else self.name} "
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
        path, _ = QFileDialog.getOpenFileName(self.window, "Open session", start, FILTER_OPEN)
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
            QMessageBox.critical(self.window, "Cannot open file", f"{path.name}: {exc}")
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
        self.window.controller.load(session.spec, session.checkpoint)
        self.path, self.name = path, session.spec.name or name
        self.apply_ui(session.ui)
        self.window.banner.hide()
        self.window.controller.set_modified(modified)
        self.update_title()

    # --- saving ------------------------------------------------------------------------------------

    def ui_state(self) -> dict[str, Any]:
        w = self.window
        return {"views": {name: not dock.isHidden() for name, dock in w.docks.items()},
                "output": {"show_test": w.output.show_test.isChecked(), "discretize": w.output.discretize.isChecked()},
                "curves": {"log_y": w.curves.log_y.isChecked()},
                "tab": w.tabs.currentIndex(),
                **({"editor_draft": draft} if (draft := w.editor.draft()) is not None else {})}

    def apply_ui(self, ui: dict[str, Any]) -> None:
        w = self.window
        for name, visible in ui.get("views", {}).items():
            if name in w.docks and isinstance(visible, bool):
                w.docks[name].setVisible(visible)
        out = ui.get("output", {})
        w.output.show_test.setChecked(bool(out.get("show_test", False)))
        w.output.discretize.setChecked(bool(out.get("discretize", False)))
        w.curves.log_y.setChecked(bool(ui.get("curves", {}).get("log_y", False)))
        if ui.get("tab") in (0, 1):
            w.tabs.setCurrentIndex(ui["tab"])
        if "editor_draft" in ui:
            w.editor.restore_draft(ui["editor_draft"])  # an invalid graph the user was still working on

    def write(self, path: Path, extra_ui: dict[str, Any] | None = None) -> None:
        """Save the session as it is between two steps (training may go on)."""
        c = self.window.controller
        save_session(path, c.spec, c.checkpoint(), self.ui_state() | (extra_ui or {}))

    @Slot()
    def save(self) -> bool:
        if self.path is None:
            return self.save_as()
        return self._save_to(self.path)

    @Slot()
    def save_as(self) -> bool:
        start = str(self.path) if self.path else str(Path.home() / f"{self.name}.dlp")
        path, _ = QFileDialog.getSaveFileName(self.window, "Save session", start, FILTER_SAVE)
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
            QMessageBox.critical(self.window, "Cannot save", f"{path.name}: {why}. The previous file is unchanged.")
            return False
        self.path, self.name = path, path.stem
        self.window.controller.set_modified(False)
        self.add_recent(path)
        self.update_title()
        self.window.statusBar().showMessage(f"Saved {path}", 4000)
        return True

    @Slot()
    def autosave(self) -> None:
        """Write the recovery copy while there are unsaved changes; never disturbs the user's own file."""
        if not self.window.controller.modified:
            return
        meta = {"recovery": {"path": str(self.path) if self.path else None, "name": self.name}}
        try:
            self.write(self.autosave_file, meta)
        except (EngineError, OSError) as exc:
            self.window.statusBar().showMessage(f"Autosave failed: {exc}", 8000)

    def finish(self) -> None:
        """A clean exit: nothing is left to recover."""
        self.timer.stop()
        discard(self.autosave_file)

    # --- recent files ------------------------------------------------------------------------------

    def recent(self) -> list[str]:
        value = self.window.settings().value("recent", [])
        items = [value] if isinstance(value, str) else list(value or [])
        return [p for p in items if isinstance(p, str)]

    def add_recent(self, path: Path) -> None:
        items = [str(path.resolve())] + [p for p in self.recent() if p != str(path.resolve())]
        s = self.window.settings()
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
        path, _ = QFileDialog.getSaveFileName(self.window, "Export", default, f"{fmt.upper()} (*.{fmt})")
        if path:
            try:
                self.export(key, fmt, Path(path))
            except OSError as exc:
                QMessageBox.critical(self.window, "Cannot export", f"{Path(path).name}: {exc.strerror or exc}")
                return
            self.window.statusBar().showMessage(f"Exported {path}", 4000)

    def export(self, key: str, fmt: str, path: Path) -> None:
        """Write one view as PNG (pyqtgraph's exporter for plots) or SVG, or the history as CSV."""
        w = self.window
        if fmt == "csv":
            h = w.controller.history
            rows = h.csv_rows() if key == "history" else [["step", "epoch", "loss"]] + [
                [str(i + 1), f"{x:.6g}", repr(float(v))] for i, (x, v) in enumerate(zip(h.step_x(), h.step_loss.view()))]
            buf = io.StringIO()
            csv.writer(buf, lineterminator="\n").writerows(rows)
            data = buf.getvalue().encode()
            atomic_write(path, lambda f: f.write(data))
            return
        if key == "network":
            _export_widget(w.network.body, fmt, path)
            return
        if fmt == "svg":
            # pyqtgraph 0.14's SVGExporter fails on Qt ≥ 6.9 path data (pyqtgraph#3485); Qt's own SVG
            # generator renders the same scene.
            _export_widget({"output": w.output.plot, "curves": w.curves.graphics, "health": w.health.graphics}[key],
                           fmt, path)
            return
        item = {"output": w.output.plot.getPlotItem(), "curves": w.curves.graphics.scene(),
                "health": w.health.graphics.scene()}[key]
        exporter = pgx.ImageExporter(item)
        exporter.parameters()["width"] = max(800, int(exporter.parameters()["width"]))
        exporter.export(str(path))
        if not path.is_file():
            raise OSError("the PNG exporter wrote nothing")


def _export_widget(widget: QWidget, fmt: str, path: Path) -> None:
    if fmt == "png":
        if not widget.grab().save(str(path), "PNG"):
            raise OSError("could not write the PNG")
        return
    gen = QSvgGenerator()
    gen.setFileName(str(path))
    gen.setSize(widget.size())
    gen.setViewBox(QRectF(0, 0, widget.width(), widget.height()))
    gen.setTitle("DL Playground network")
    painter = QPainter(gen)
    try:
        if isinstance(widget, QGraphicsView):
            widget.render(painter)  # the view's visible scene, as vectors
        else:
            widget.render(painter, QPoint(0, 0))
    finally:
        painter.end()
    if not path.is_file():
        raise OSError("could not write the SVG")
