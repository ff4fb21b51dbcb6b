"""The main window: toolbar, panels and the views of the VIEWS table docked around the network, banner, title,
the session's ui state and layout memory."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, cast

from PySide6.QtCore import QByteArray, QEvent, QObject, Qt, Slot
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QKeyEvent
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QCheckBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QStyle,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from engine import Checkpoint, EngineError, SessionSpec
from engine.check import parse_spec
from engine.spec import spec_to_dict
from engine.stack import Stack, with_stack

from .actions import make_action
from .controller import Controller
from .deck import ViewDeck
from .editor.editor import NetworkEditor, confirm_reset
from .files import FileManager, ViewExport
from .panels.data import DataPanel
from .panels.training import TrainingPanel
from .settings import settings
from .views.curves import CurvesView
from .views.health import HealthView
from .views.network import NetworkView
from .views.output import OutputView

log = logging.getLogger(__name__)


class SpaceKeepsPlaying(QObject):
    """Space plays or pauses even while a spin box has focus (the status bar promises it): a spin box claims
    Space as text through a shortcut override; this filter, on the focused spin box, turns that claim down so
    the Play shortcut fires. Spin boxes hold numbers, so they never needed the space."""

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        # Filtered but not accepted: the shortcut map goes on to the window's Play action.
        return (event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent)
                and event.key() == Qt.Key.Key_Space and event.modifiers() == Qt.KeyboardModifier.NoModifier)


class Banner(QFrame):
    """A strip above the network that explains why training stopped by itself."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.action = QPushButton("Reset")
        self.action.setToolTip("Start over from the same initial weights (R)")
        close = QPushButton("✕")
        close.setFlat(True)
        close.setToolTip("Hide this message")
        close.clicked.connect(self.hide)
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 4, 8, 4)
        row.addWidget(self.label, 1)
        row.addWidget(self.action)
        row.addWidget(close)
        self.refusal = False  # the message says training is refused: it goes once nothing blocks training
        self.hide()

    def show_message(self, text: str, severe: bool, reset: bool = True, refusal: bool = False) -> None:
        """Show why training stopped; `reset` offers the Reset button (it cannot mend an invalid graph);
        `refusal` marks the message that training is refused, which goes by itself when the graph is mended."""
        self.refusal = refusal
        self.action.setVisible(reset)
        colour = "#fde2e1; color: #7a1712" if severe else "#e3f0fb; color: #0b3c5d"
        self.setStyleSheet(f"Banner {{ background: {colour.split(';')[0]}; border-radius: 4px; }}"
                           f" QLabel {{ {colour.split('; ')[1]}; }}")
        self.label.setText(text)
        self.show()


def scrolled(widget: QWidget) -> QScrollArea:
    area = QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # fit the width, scroll down
    # Never narrower than the content plus a scroll bar, which would clip the right-hand edge of the controls.
    area.setMinimumWidth(widget.minimumSizeHint().width() + area.verticalScrollBar().sizeHint().width() + 2)
    return area


class MainWindow(QMainWindow):
    """One session per window. Panels edit the spec through the controller; views redraw on its frames."""

    def __init__(self, spec: SessionSpec, checkpoint: Checkpoint | None = None) -> None:
        super().__init__()
        self.setObjectName("main_window")
        self.setAcceptDrops(True)
        # Qt deletes the closed window's tree in its own order; left to Python's garbage collector, the
        # pyqtgraph scenes of a closed window were seen to crash the process when a second window was built.
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.controller = Controller(spec, checkpoint, self)
        c = self.controller
        self.data_panel = DataPanel()
        self.training_panel = TrainingPanel()
        self.banner = Banner(self)
        self.banner.action.clicked.connect(self._on_reset)
        self.editor = NetworkEditor(c)
        editor_tip = "Build any network as a graph: drag layers in, wire them, check shapes (Ctrl+E)"
        self.deck = ViewDeck(self, c, [("Graph editor", editor_tip, self.editor)],
                             {"Data": scrolled(self.data_panel), "Training": scrolled(self.training_panel)})
        self.views, self.docks, self.tabs = self.deck.views, self.deck.docks, self.deck.tabs
        self.tabs.currentChanged.connect(self._on_tab)
        central = QWidget()
        col = QVBoxLayout(central)
        col.setContentsMargins(0, 0, 0, 0)
        col.addWidget(self.banner)
        col.addWidget(self.tabs, 1)
        self.setCentralWidget(central)
        self._build_toolbar()
        self._space = SpaceKeepsPlaying(self)
        app = QApplication.instance()
        assert isinstance(app, QApplication)
        app.focusChanged.connect(self._on_focus)  # panels build their spin boxes anew: filter them as they focus
        self.files = FileManager(self)
        self._build_view_menu()
        self.statusBar().showMessage("Press Space to train", 4000)
        self.params_label = QLabel()
        self.statusBar().addPermanentWidget(self.params_label)
        self.load_label = QLabel()
        self.load_label.setToolTip(
            "GUI load: the share of time the window's thread was busy (drawing views, painting, events). Every "
            "view you open costs some; while training, the window draws less often rather than spend more than "
            "about 12 % of the time in its views' own drawing, which the training thread would wait for.")
        self.statusBar().addPermanentWidget(self.load_label)

        c.frame.connect(self._on_frame)
        c.state_changed.connect(self._on_state)
        c.spec_changed.connect(self._on_spec)
        c.modified_changed.connect(self.setWindowModified)
        c.stopped.connect(self._on_stopped)
        c.errored.connect(self._on_error)
        self.data_panel.spec_edited.connect(self.apply_spec)
        self.training_panel.spec_edited.connect(self.apply_spec)
        self.network.stack_edited.connect(self._on_stack_edited)
        self.network.features_edited.connect(self._on_features_edited)
        self._on_spec()
        self._on_state()
        self.layout().activate()  # lay out the docks as they now are (views that do not apply put away)
        self.resize(1560, 940)
        self.resizeDocks([self.docks["Data"], self.docks["Output"]], [350, 470], Qt.Orientation.Horizontal)
        self.resizeDocks([self.docks["Output"], self.docks["Curves"]], [430, 430], Qt.Orientation.Vertical)
        self.resizeDocks([self.docks["Data"], self.docks["Training"]], [500, 360], Qt.Orientation.Vertical)
        if not self.docks["Saliency"].isHidden():  # image sets: saliency where the output plane would be
            self.resizeDocks([self.docks["Saliency"], self.docks["Curves"]], [480, 380], Qt.Orientation.Vertical)
        elif not self.docks["Recurrent"].isHidden():  # recurrent networks: their internals need the height
            self.resizeDocks([self.docks["Curves"], self.docks["Recurrent"]], [330, 560], Qt.Orientation.Vertical)
        elif not self.docks["Reconstructions"].isHidden():  # autoencoders: their pictures there instead
            self.resizeDocks([self.docks["Reconstructions"], self.docks["Curves"]], [480, 380],
                             Qt.Orientation.Vertical)
        self.restore_layout()

    # The views the window itself wires up or tests reach; any other view is only in `views`.

    @property
    def network(self) -> NetworkView:
        return cast(NetworkView, self.views["network"])

    @property
    def output(self) -> OutputView:
        return cast(OutputView, self.views["output"])

    @property
    def curves(self) -> CurvesView:
        return cast(CurvesView, self.views["curves"])

    @property
    def health(self) -> HealthView:
        return cast(HealthView, self.views["health"])

    # --- toolbar -----------------------------------------------------------------------------------

    def _build_toolbar(self) -> None:
        bar = QToolBar("Training")
        bar.setObjectName("toolbar_training")
        bar.setMovable(False)
        self.addToolBar(bar)
        sp = QStyle.StandardPixmap
        icon = self.style().standardIcon
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.play_action = make_action(self, "Play", "Train until paused", self._on_play, "Space",
                                       icon(sp.SP_MediaPlay))
        self.epoch_action = make_action(self, "Epoch", "Train exactly one epoch", self._on_step_epoch, "Right",
                                        icon(sp.SP_MediaSkipForward))
        self.batch_action = make_action(self, "Batch", "Train one minibatch step", self._on_step_batch,
                                        "Shift+Right", icon(sp.SP_MediaSeekForward))
        self.reset_action = make_action(self, "Reset", "Start over", self._on_reset, "R", icon(sp.SP_BrowserReload))
        for a in (self.play_action, self.epoch_action, self.batch_action, self.reset_action):
            bar.addAction(a)
        self.same_weights = QCheckBox("same initial weights")
        self.same_weights.setChecked(True)
        self.same_weights.setToolTip("Reset to the same initial weights (the seed); untick to draw new ones")
        bar.addWidget(self.same_weights)
        bar.addSeparator()
        self.epoch_label = QLabel()
        self.epoch_label.setToolTip("Epochs trained (an epoch is one pass over the training set)")
        self.epoch_label.setStyleSheet("font-size: 16pt; padding: 0 12px;")
        self.step_label = QLabel()
        self.step_label.setToolTip("Minibatch steps trained (Shift+→ trains one)")
        self.step_label.setStyleSheet("padding: 0 12px 0 0;")
        self.rate_label = QLabel()
        self.rate_label.setMinimumWidth(110)
        self.rate_label.setToolTip("Training speed over the last two seconds")
        self.status_label = QLabel()
        self.status_label.setToolTip("What training is doing, the current learning rate and the last loss")
        for w in (self.epoch_label, self.step_label, self.rate_label, self.status_label):
            bar.addWidget(w)

    @Slot(QWidget, QWidget)
    def _on_focus(self, old: QWidget | None, new: QWidget | None) -> None:
        if isinstance(new, QAbstractSpinBox) and new.window() is self:
            new.installEventFilter(self._space)  # installing again only moves it first

    def _build_view_menu(self) -> None:
        menu = self.menuBar().addMenu("&View")
        menu.setToolTipsVisible(True)
        menu.addAction(make_action(self, "Graph editor", "Switch between the live network and the graph editor",
                                   self._on_switch_tab, "Ctrl+E"))
        menu.addSeparator()
        for dock in self.docks.values():
            menu.addAction(dock.toggleViewAction())

    @Slot()
    def _on_switch_tab(self) -> None:
        self.tabs.setCurrentIndex(1 - self.tabs.currentIndex())

    @Slot(int)
    def _on_tab(self, index: int) -> None:
        if self.tabs.widget(index) is self.editor:
            self.editor.view.setFocus()  # the editor's keys (Delete, Ctrl+Z, Ctrl+C…) work at once

    # --- toolbar actions ---------------------------------------------------------------------------

    def _refused(self) -> bool:
        """True (and the reason shown) when the graph editor holds an invalid network."""
        blocked = self.controller.blocked
        if blocked is None or self.controller.playing:
            return False
        self.banner.show_message(f"Training is refused until the graph is valid: {blocked}", severe=True, reset=False,
                                 refusal=True)
        self.tabs.setCurrentWidget(self.editor)
        return True

    @Slot()
    def _on_play(self) -> None:
        self.banner.hide()
        if not self._refused():
            self.controller.toggle()

    @Slot()
    def _on_step_epoch(self) -> None:
        if not self._refused():
            self.controller.step_epoch()

    @Slot()
    def _on_step_batch(self) -> None:
        if not self._refused():
            self.controller.step_batch()

    @Slot()
    def _on_reset(self) -> None:
        self.banner.hide()
        try:
            self.controller.reset(self.same_weights.isChecked())
        except EngineError as exc:
            self._on_error(str(exc))

    # --- edits -------------------------------------------------------------------------------------

    @Slot(object)
    def apply_spec(self, spec: SessionSpec) -> bool:
        """Apply an edited spec; a spec the engine rejects is explained and the panels show the old one."""
        try:
            spec = parse_spec(spec_to_dict(spec))  # full validation: model_copy does not validate
            self.controller.set_spec(spec)
        except EngineError as exc:
            self.statusBar().showMessage(f"Not applied: {exc}", 8000)
            QMessageBox.warning(self, "Change not applied", str(exc))
            self._on_spec()
            return False
        self.banner.hide()
        return True

    @Slot(object)
    def _on_stack_edited(self, stack: Stack) -> None:
        if self.controller.trainer.step > 0 and not confirm_reset(self, self.controller):
            self.network.show_stack()  # show the stack as it still is
            return
        self.apply_spec(with_stack(self.controller.spec, stack))

    @Slot(object)
    def _on_features_edited(self, features: tuple[str, ...]) -> None:
        spec = self.controller.spec
        ds = spec.dataset.model_copy(update={"features": features})
        self.apply_spec(spec.model_copy(update={"dataset": ds}))

    # --- from the controller -----------------------------------------------------------------------

    @Slot()
    def _on_spec(self) -> None:
        spec = self.controller.spec
        self.data_panel.set_spec(spec)
        self.training_panel.set_spec(spec)
        self.params_label.setText(f"{self.controller.run_info.total_params:,} parameters")
        if self.controller.blocked is None:
            self.banner.hide()
        self.deck.fit(spec)
        self.files.update_title()

    @Slot()
    def _on_state(self) -> None:
        playing = self.controller.playing
        self.play_action.setText("Pause" if playing else "Play")
        self.play_action.setIcon(self.style().standardIcon(
            QStyle.StandardPixmap.SP_MediaPause if playing else QStyle.StandardPixmap.SP_MediaPlay))
        self.play_action.setToolTip(f"{'Pause training' if playing else 'Train until paused'} (Space)")
        if self.banner.refusal and self.controller.blocked is None:
            self.banner.hide()  # the graph was mended (an undo keeps the run: no new spec says so)
        self._on_frame()

    @Slot()
    def _on_frame(self) -> None:
        c = self.controller
        snap = c.snapshot
        epoch = snap.epoch if snap else 0
        self.epoch_label.setText(f"Epoch {epoch:07,d}")
        self.step_label.setText(f"step {snap.step if snap else 0:,d}")
        self.load_label.setText(f"GUI load {c.gui_load:.0%}" if c.playing else "")
        self.rate_label.setText(f"{c.epochs_per_second():,.0f} epochs/s" if c.playing else "")
        if snap is None:
            return
        loss = c.history.epochs["epoch_test_loss"]
        last = f" · test loss {loss.view()[-1]:.4f}" if loss.n else ""
        self.status_label.setText(f"{c.status_text()} · lr {snap.lr:.4g}{last}")

    @Slot(str, str)
    def _on_stopped(self, status: str, message: str) -> None:
        if status == "diverged":
            self.banner.show_message(f"Training paused: it {message}.", severe=True)
        else:
            self.banner.show_message(message[:1].upper() + message[1:] + ".", severe=False)

    @Slot(str)
    def _on_error(self, message: str) -> None:
        QMessageBox.critical(self, "Training error", message)

    # --- what the file manager asks of its window ----------------------------------------------------

    def show_status(self, text: str, ms: int = 4000) -> None:
        self.statusBar().showMessage(text, ms)

    def show_title(self, title: str, modified: bool) -> None:
        self.setWindowTitle(title)
        self.setWindowModified(modified)

    def session_shown(self) -> None:
        """Another session is in the window: the last one's messages no longer apply."""
        self.banner.hide()

    def view_exports(self) -> list[ViewExport]:
        return self.deck.exports()

    def ui_state(self) -> dict[str, Any]:
        """What the session file keeps of the window: the views' state and an unfinished graph draft."""
        ui = self.deck.ui_state()
        if (draft := self.editor.draft()) is not None:
            ui["editor_draft"] = draft
        if self.controller.run_info.classes:  # image sets: the test image every view explains
            ui["sample"] = self.controller.sample
        return ui

    def apply_ui(self, ui: Any) -> None:
        """Take the state `ui_state` saved. A file may hold anything here: what does not fit is logged and skipped."""
        if not isinstance(ui, dict):
            log.warning("ignoring the session's view state: expected a mapping, got %s", type(ui).__name__)
            ui = {}
        self.deck.apply_ui(ui)
        if "sample" in ui:
            sample, n = ui["sample"], len(self.controller.run_info.data.y_test)
            if isinstance(sample, int) and not isinstance(sample, bool) and 0 <= sample < n:
                self.controller.select_sample(sample)
            else:
                log.warning("ignoring the session's selected image %r: this data has test images 0 to %d",
                            sample, n - 1)
        if "editor_draft" in ui:
            self.editor.restore_draft(ui["editor_draft"])  # an invalid graph the user was still working on

    # --- layout memory, visibility, drops and closing ----------------------------------------------

    def restore_layout(self) -> None:
        s = settings()
        geometry, state = s.value("window/geometry"), s.value("window/state")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        if isinstance(state, QByteArray):
            self.restoreState(state)

    def save_layout(self) -> None:
        s = settings()
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        s.sync()

    def changeEvent(self, event: QEvent) -> None:
        """Minimised, views stop drawing and their probes stop; restored, they catch up."""
        super().changeEvent(event)
        if event.type() == QEvent.Type.WindowStateChange:
            self.controller.views_changed()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile() and urls[0].toLocalFile().endswith((".dlp", ".json")):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        urls = event.mimeData().urls()
        if urls:
            event.acceptProposedAction()
            self.files.open_path(Path(urls[0].toLocalFile()))

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.files.confirm_discard("quitting"):
            event.ignore()
            return
        for view in self.views.values():
            view.shutdown()
        self.controller.shutdown()
        self.files.finish()
        self.save_layout()
        event.accept()
