"""The network editor: palette | canvas | inspector and summary, kept in step with the session's spec."""
from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import QPointF, Qt, QTimer, Slot
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMenu,
    QMessageBox,
    QSplitter,
    QTabWidget,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine import EngineError
from engine.graph import same_architecture
from engine.spec import ModelSpec, Node
from engine.stack import template_for
from engine.templates import TEMPLATES

from ..actions import make_action
from ..controller import Controller
from ..export import export_scene, write_text
from .canvas import EditorScene, EditorView
from .document import EditorDocument
from .inspector import Inspector
from .palette import Palette
from .summary import SummaryTable, summary_text

CLIP_KEY = "dl_playground_blocks"  # marks clipboard text as blocks copied from an editor
PASTE_OFFSET = 40.0
DATA_NOTE = {"images": "28×28 images", "tokens": "token sequences", "graphs": "8-node graphs"}


class NetworkEditor(QWidget):
    """Edits the session's model graph. Valid edits apply at once (asking first if that would throw away
    training); an invalid draft is kept, shown in red, and training is refused until it is fixed."""

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.doc = EditorDocument(controller.spec.model, controller.spec, self)
        self.scene = EditorScene(self.doc, self)
        self.view = EditorView(self.scene)
        self.palette = Palette()
        self.inspector = Inspector(self.doc)
        self.summary = SummaryTable(self.doc)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setToolTip("Whether the graph can train, and if not, the first reason why")
        side = QTabWidget()
        side.addTab(self.inspector, "Inspector")
        side.addTab(self.summary, "Summary")
        side.setMinimumWidth(230)
        self.side = side
        left = QSplitter(Qt.Orientation.Vertical)
        left.addWidget(self.palette)
        left.addWidget(side)
        left.setSizes([330, 420])
        split = QSplitter()
        split.addWidget(left)
        split.addWidget(self.view)
        split.setStretchFactor(1, 1)
        split.setSizes([270, 800])
        self.toolbar = QToolBar("Graph editor")
        self._build_actions()
        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        col.addWidget(self.toolbar)
        col.addWidget(split, 1)
        col.addWidget(self.status)
        self._synced = controller.spec.model  # the model the controller last had from or gave to this editor
        self.doc.changed.connect(self._on_doc_changed)
        # Any edit, an unfinished draft included, is unsaved work: autosave and the close prompt see it.
        self.doc.undo_stack.indexChanged.connect(self._on_edited)
        self.doc.refused.connect(self._on_refused)
        self.scene.node_selected.connect(self.inspector.show_node)
        self.palette.op_activated.connect(self._on_op_activated)
        self.view.op_dropped.connect(self._on_op_dropped)
        self.view.delete_pressed.connect(self.delete_selection)
        controller.spec_changed.connect(self._on_spec)
        controller.session_replaced.connect(self._on_session)
        self._show_status()
        self._fitted = False

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if not self._fitted:  # the first time the canvas has its real size
            self._fitted = True
            QTimer.singleShot(0, self.view.fit)

    # --- actions ---------------------------------------------------------------------------------

    def _act(self, text: str, tip: str, shortcut: QKeySequence | QKeySequence.StandardKey | str | None,
             slot: Any) -> QAction:
        # Shortcuts act only while the editor has focus: Ctrl+Z here undoes graph edits, not the window's.
        action = make_action(self, text, tip, slot, shortcut, context=Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        stack = self.doc.undo_stack
        self.undo_action = self._act("Undo", "Undo", QKeySequence.StandardKey.Undo, stack.undo)
        self.redo_action = self._act("Redo", "Redo", QKeySequence.StandardKey.Redo, stack.redo)
        stack.canUndoChanged.connect(self.undo_action.setEnabled)
        stack.canRedoChanged.connect(self.redo_action.setEnabled)
        stack.undoTextChanged.connect(lambda t: self.undo_action.setToolTip(f"Undo {t} (Ctrl+Z)"))
        stack.redoTextChanged.connect(lambda t: self.redo_action.setToolTip(f"Redo {t} (Ctrl+Shift+Z)"))
        self.undo_action.setEnabled(False)
        self.redo_action.setEnabled(False)
        bar = self.toolbar
        bar.addAction(self.undo_action)
        bar.addAction(self.redo_action)
        bar.addSeparator()
        self.delete_action = self._act("Delete", "Delete the selected blocks and wires (Delete key on the canvas)",
                                       None, self.delete_selection)
        self.copy_action = self._act("Copy", "Copy the selected blocks and the wires between them",
                                     QKeySequence.StandardKey.Copy, self.copy_selection)
        self.paste_action = self._act("Paste", "Paste copied blocks as new ones", QKeySequence.StandardKey.Paste,
                                      self.paste)
        self.select_all_action = self._act("Select all", "Select every block", QKeySequence.StandardKey.SelectAll,
                                           self.select_all)
        bar.addAction(self.delete_action)
        bar.addSeparator()
        self.layout_action = self._act("Auto-layout", "Arrange the blocks in layers, inputs on the left",
                                       "Ctrl+L", self.doc.auto_layout)
        self.fit_action = self._act("Fit", "Zoom to show the whole graph", "Ctrl+0", self.view.fit)
        self.zoom_in_action = self._act("Zoom in", "Zoom in (or use the mouse wheel)",
                                        QKeySequence.StandardKey.ZoomIn, lambda: self.view.zoom(1.25))
        self.zoom_out_action = self._act("Zoom out", "Zoom out (or use the mouse wheel)",
                                         QKeySequence.StandardKey.ZoomOut, lambda: self.view.zoom(0.8))
        bar.addAction(self.layout_action)
        bar.addAction(self.fit_action)
        # Everything, copy and paste included, is also on the canvas's right-click menu.
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        for a in (self.undo_action, self.redo_action, None, self.copy_action, self.paste_action, self.delete_action,
                  self.select_all_action, None, self.layout_action, self.fit_action, self.zoom_in_action,
                  self.zoom_out_action):
            if a is None:
                sep = QAction(self.view)
                sep.setSeparator(True)
                a = sep
            self.view.addAction(a)
        bar.addSeparator()
        self.templates_menu = QMenu("Templates", self)
        for t in TEMPLATES.values():
            note = "" if t.data == "session" else f" — for {DATA_NOTE[t.data]}"
            a = self.templates_menu.addAction(t.title + note)
            a.setToolTip(t.doc)
            a.setData(t.name)
        self.templates_menu.setToolTipsVisible(True)
        self.templates_menu.triggered.connect(lambda a: self.insert_template(a.data()))
        self.templates_button = QToolButton()
        self.templates_button.setText("Templates")
        self.templates_button.setMenu(self.templates_menu)
        self.templates_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.templates_button.setToolTip("Replace the graph with a ready-made network you can edit (undoable)")
        bar.addWidget(self.templates_button)
        export = QMenu("Export", self)
        export.addAction("Graph as PNG…").triggered.connect(lambda: self._export_dialog("png"))
        export.addAction("Graph as SVG…").triggered.connect(lambda: self._export_dialog("svg"))
        export.addAction("Summary as text…").triggered.connect(lambda: self._export_dialog("txt"))
        self.export_button = QToolButton()
        self.export_button.setText("Export")
        self.export_button.setMenu(export)
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.export_button.setToolTip("Save the graph as an image or the model summary as a text table")
        bar.addWidget(self.export_button)
        bar.addSeparator()
        self.focus_action = self._act("Hide panels", "Hide the side panels to give the graph the whole window; "
                                      "press again to bring them back", "Ctrl+Shift+F", self._on_focus)
        self.focus_action.setCheckable(True)
        bar.addAction(self.focus_action)
        self._hidden_docks: list[QWidget] = []

    @Slot()
    def _on_focus(self) -> None:
        window = self.window()
        docks = [d for d in window.findChildren(QDockWidget) if d.parent() is window]
        if self.focus_action.isChecked():
            self._hidden_docks = [d for d in docks if d.isVisible()]
            for d in self._hidden_docks:
                d.hide()
        else:
            for d in self._hidden_docks:
                d.show()
            self._hidden_docks = []

    # --- edits -----------------------------------------------------------------------------------

    def add_op(self, op: str, at: QPointF) -> str:
        return self.doc.add_node(op, (at.x() - 78, at.y() - 30))

    @Slot(str)
    def _on_op_activated(self, op: str) -> None:
        node_id = self.add_op(op, self.view.mapToScene(self.view.viewport().rect().center()))
        self._select([node_id])

    @Slot(str, QPointF)
    def _on_op_dropped(self, op: str, at: QPointF) -> None:
        self._select([self.add_op(op, at)])

    def _select(self, ids: list[str]) -> None:
        self.scene.clearSelection()
        for n in ids:
            if n in self.scene.blocks:
                self.scene.blocks[n].setSelected(True)

    @Slot()
    def delete_selection(self) -> None:
        self.doc.delete(self.scene.selected_nodes(), self.scene.selected_wires())

    @Slot()
    def select_all(self) -> None:
        for b in self.scene.blocks.values():
            b.setSelected(True)

    @Slot()
    def copy_selection(self) -> None:
        picked = self.scene.selected_nodes()
        if not picked:
            return
        data = self.doc.as_dict()
        payload = {CLIP_KEY: 1, "nodes": [n for n in data["nodes"] if n["id"] in picked],
                   "edges": [e for e in data["edges"] if e[0] in picked and e[1] in picked]}
        # Plain text, not a QMimeData of our own: PySide6 frees a QMimeData handed to the clipboard twice at
        # exit (a segfault after every copy). As JSON it also pastes into another window or a text editor.
        QGuiApplication.clipboard().setText(json.dumps(payload))

    @Slot()
    def paste(self) -> None:
        try:
            payload = json.loads(QGuiApplication.clipboard().text())
            if not isinstance(payload, dict) or payload.get(CLIP_KEY) != 1:
                return
            nodes = [Node.model_validate(n).model_dump(mode="json") for n in payload["nodes"]]
            edges = [[str(a), str(b)] for a, b in payload["edges"]]
        except (ValueError, KeyError, TypeError):  # pydantic's ValidationError is a ValueError
            return  # not blocks copied from an editor: nothing to paste
        self._select(self.doc.paste(nodes, edges, (PASTE_OFFSET, PASTE_OFFSET)))

    def insert_template(self, name: str) -> None:
        # built for the session's head and, for sequence data, fitted to its vocabulary and length
        self.doc.replace(template_for(name, self.controller.spec), f"template {TEMPLATES[name].title}")
        self.view.fit()

    @Slot(str)
    def _on_refused(self, message: str) -> None:
        self.status.setText(f"<span style='color:#b71c1c'>Not done: {html.escape(message)}</span>")

    # --- keeping the session in step --------------------------------------------------------------

    def _show_status(self) -> None:
        d = self.doc.diagnosis
        total = sum(d.counts.values())
        if d.valid:
            self.status.setText(f"<span style='color:#1b5e20'>✓ The graph is valid: {len(self.doc.model.nodes)} "
                                f"blocks, {total:,} parameters.</span>")
        else:
            self.status.setText(f"<span style='color:#b71c1c'>✗ Training is refused until the graph is valid: "
                                f"{html.escape(d.problem or '')}</span>")

    @Slot()
    def _on_doc_changed(self) -> None:
        self._show_status()
        c = self.controller
        d = self.doc.diagnosis
        model = self.doc.model
        if not d.valid:
            c.set_blocked(d.problem)
            return
        if same_architecture(model, c.spec.model):
            c.set_blocked(None)
            c.set_layout(model)
            self._synced = model
            return
        if c.trainer.step > 0:
            # This edit must stay its own undo step: a declined one is undone alone, an accepted one starts a
            # new run, and neither should fold into the edit before it.
            self.doc.hold_merge = True
            QTimer.singleShot(0, self._release_merge)
            if not confirm_reset(self, c):
                QTimer.singleShot(0, self.doc.undo_stack.undo)  # not inside the push that is still running
                return
        # Lift the refusal before the new run: the window hears of the new spec, and hides a banner saying that
        # training is refused, only when nothing blocks training any more.
        c.set_blocked(None)
        try:
            # The diagnosis already checked this model against this spec: no second validation pass here.
            self._synced = model
            c.set_spec(c.spec.model_copy(update={"model": model}))
        except EngineError as exc:
            c.set_blocked(str(exc))
            self.status.setText(f"<span style='color:#b71c1c'>✗ {html.escape(str(exc))}</span>")

    @Slot()
    def _on_edited(self) -> None:
        if not self.doc.undo_stack.isClean():
            self.controller.set_modified(True)

    def _release_merge(self) -> None:
        self.doc.hold_merge = False

    @Slot()
    def _on_spec(self) -> None:
        """The session's spec changed: a stack edit or a dataset change. Follow it without losing the draft."""
        spec = self.controller.spec
        if same_architecture(spec.model, self._synced):
            self._synced = spec.model
            self.doc.set_context(spec)
            return
        self._synced = spec.model
        self.doc.spec = spec
        self.doc.replace(spec.model, "edit in the layer stack")

    @Slot()
    def _on_session(self) -> None:
        spec = self.controller.spec
        self._synced = spec.model
        self.doc.reset(spec.model, spec)
        self.view.fit()

    def restore_draft(self, data: Any) -> None:
        """Put back an unfinished draft saved with the session (ignored when it is not a model graph)."""
        try:
            model = ModelSpec.model_validate(data)
        except ValueError:
            return
        if model != self.doc.model:
            self.doc.replace(model, "unfinished draft")

    def draft(self) -> dict[str, Any] | None:
        """The draft when it is not what the session holds (it is invalid), to save alongside the session."""
        if same_architecture(self.doc.model, self.controller.spec.model):
            return None
        return self.doc.as_dict()

    # --- export ----------------------------------------------------------------------------------

    def _export_dialog(self, fmt: str) -> None:
        filters = {"png": "PNG image (*.png)", "svg": "SVG image (*.svg)", "txt": "Text (*.txt)"}
        path, _ = QFileDialog.getSaveFileName(self, "Export", f"network.{fmt}", filters[fmt])
        if not path:
            return
        try:
            self.export(fmt, Path(path))
        except OSError as exc:
            QMessageBox.warning(self, "Export failed", f"Could not write {path}: {exc}")

    def export(self, fmt: str, path: Path) -> None:
        """Write the graph as PNG or SVG, or the summary as text."""
        if fmt == "txt":
            write_text(path, summary_text(self.doc))
            return
        self.scene.clearSelection()  # the picture shows the graph, not the selection
        export_scene(self.scene, fmt, path, title="DL Playground network graph")


def confirm_reset(parent: QWidget, controller: Controller) -> bool:
    """Ask before an architecture change throws away a run that has trained."""
    answer = QMessageBox.question(
        parent, "Reset training?",
        f"Changing the network's architecture starts training over (now at epoch {controller.trainer.epoch}, "
        f"step {controller.trainer.step}). Apply the change and reset?",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Yes)
    return answer == QMessageBox.StandardButton.Yes
