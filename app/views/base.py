"""The live-view base: what every view of a run shares. A view does no work while nobody can see it (a closed
or tabbed-away dock, a hidden tab, a minimised window) and catches up when shown; a visible one redraws only
when what it draws from changed (its probes' steps, the history, its own options). It names the probes it
draws, so the controller runs only those of the views that show."""
from __future__ import annotations

import logging
import time
from collections.abc import Hashable
from pathlib import Path
from typing import Any, ClassVar

from PySide6.QtCore import Qt, QTimer, Slot
from PySide6.QtGui import QHideEvent, QResizeEvent, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLayout,
    QSizePolicy,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from engine import Snapshot

from ..controller import Controller, RunInfo
from ..export import export_widget

log = logging.getLogger(__name__)

Part = QWidget | QLayout
# A dock view's minimum height: the window's minimum height counts every right-hand dock's, even those put away
# or tabbed behind another, so a tall minimum there pushes the window past a 1000-px screen.
DOCK_MIN_HEIGHT = 24


def text_label(text: str = "", *, rich: bool = False, wrap: bool = False) -> QLabel:
    """A caption, key or readout line of a view: it takes the width the view gives it, not its text's, so a
    long text is cut (or, with ``wrap``, wrapped) instead of widening the dock; ``rich`` for coloured keys."""
    label = QLabel(text)
    if rich:
        label.setTextFormat(Qt.TextFormat.RichText)
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    label.setWordWrap(wrap)
    return label


def control_row(*items: str | Part | tuple[Part, int], stretch: bool = True) -> QHBoxLayout:
    """A row of controls, left to right: a string is the label of the widget after it (and shows its tooltip),
    ``(part, k)`` takes k shares of the spare width; a stretch closes the row unless ``stretch`` is False."""
    row = QHBoxLayout()
    for i, item in enumerate(items):
        if isinstance(item, str):
            label = QLabel(item)
            after = items[i + 1] if i + 1 < len(items) else None
            if isinstance(after, tuple):
                after = after[0]
            if isinstance(after, QWidget):
                label.setToolTip(after.toolTip())
            row.addWidget(label)
        else:
            _add(row, item)
    if stretch:
        row.addStretch(1)
    return row


def _add(layout: QHBoxLayout | QVBoxLayout, item: Part | tuple[Part, int]) -> None:
    part, k = item if isinstance(item, tuple) else (item, 0)
    if isinstance(part, QLayout):
        layout.addLayout(part, k)
    else:
        layout.addWidget(part, k)


class LiveView(QWidget):
    """Subclasses set `probes`, implement `draw` and, when they have them, `on_run`, `toggles` and `export`."""

    probes: ClassVar[frozenset[str]] = frozenset()  # what the trainer must compute while this view shows
    uses_history: ClassVar[bool] = False  # redraw when the loss history grows, not only when a probe is new
    # Redraw at most this often (seconds; 0: at every new result). What arrives sooner waits, and is drawn when
    # its time comes even if no frame follows (paused). For views whose every redraw repaints much.
    min_redraw_s: ClassVar[float] = 0.0

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.run: RunInfo | None = None  # the run drawn; `on_run` is called when it changes
        self._pending: dict[str, Any] = {}  # saved choices waiting for the entries the next run brings
        self._drawn: Hashable = None  # the key of what is on screen
        self._drawn_at = 0.0  # when it was drawn (time.monotonic)
        self._held = QTimer(self)  # draws what min_redraw_s held back, once its time has come
        self._held.setSingleShot(True)
        self._held.timeout.connect(self.refresh)
        controller.frame.connect(self._on_frame)
        controller.run_changed.connect(self._on_frame)
        controller.attach(self)

    # --- what subclasses provide -------------------------------------------------------------------

    def on_run(self, run: RunInfo) -> None:
        """A new run is about to be drawn (new data, new layers): set up what stays for its length."""

    def draw(self, snap: Snapshot | None) -> None:
        """Draw the latest snapshot (None before a run's first frame; only views without probes see that)."""
        raise NotImplementedError

    def column(self, *parts: Part | tuple[Part, int]) -> QVBoxLayout:
        """The view's layout: ``parts`` top to bottom inside a 4-px margin; ``(part, k)`` takes k shares of the
        spare height."""
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        for part in parts:
            _add(layout, part)
        return layout

    def toggles(self) -> dict[str, QCheckBox]:
        """The view's own options, saved with the session under their keys (all off by default)."""
        return {}

    def choices(self) -> dict[str, QComboBox | QSlider]:
        """The view's own settings that are not on/off (a method, a layer, a slider), saved with the session
        under their keys: a combo box by its entry's data, a slider by its value. Missing ones keep their
        defaults."""
        return {}

    def shutdown(self) -> None:
        """The window is closing: stop any thread of the view's own and wait for it (a view behind another tab
        gets no hide event)."""

    def export(self, fmt: str, path: Path) -> None:
        """Write the view as a PNG or SVG image (the widget as drawn; plots override for a sharper PNG)."""
        export_widget(self, fmt, path)

    def class_name(self, k: int) -> str:
        """Class k's name in the run drawn (its index where the data set names none)."""
        return self.controller.run_info.class_name(k)

    # --- the frame guard ---------------------------------------------------------------------------

    def showing(self) -> bool:
        """True when someone can see the view: shown, not moved out of sight (Qt parks a tabbed-away dock
        off-screen, still "visible"), and its window not minimised."""
        return self.isVisible() and not self.visibleRegion().isEmpty() and not self.window().isMinimized()

    def ready(self, snap: Snapshot | None) -> bool:
        """True when the snapshot holds every probe this view draws that applies to the run."""
        if not self.probes:
            return True
        applying = self.probes & self.controller.run_info.probes
        return snap is not None and bool(applying) and all(n in snap.probes for n in applying)

    def frame_key(self, snap: Snapshot | None) -> Hashable:
        """What the drawing depends on: equal keys mean nothing new to draw."""
        c = self.controller
        # a probe's serial, not its step: a weight edited by hand is probed again at the same step
        steps = tuple(snap.probes[n].serial if snap is not None and n in snap.probes else -1
                      for n in sorted(self.probes))
        history = (c.history.step_loss.total, c.history.n_epochs) if self.uses_history else ()
        return (c.run_info.run_id, steps, history, tuple(t.isChecked() for t in self.toggles().values()))

    @Slot()
    def _on_frame(self) -> None:
        self.refresh()

    def refresh(self) -> None:
        """Draw what is new since the last frame, if the view shows."""
        if not self.showing():
            return
        c = self.controller
        if self.run is not c.run_info:
            self.run = c.run_info
            self._drawn = None
            self.on_run(self.run)
            choices = self.choices()
            for key, value in list(self._pending.items()):  # saved settings whose entries came with this run
                self._apply_choice(key, choices[key], value, drawn=True)
        snap = c.snapshot
        if not self.ready(snap):
            return
        key = self.frame_key(snap)
        if key != self._drawn:
            wait = self.min_redraw_s - (time.monotonic() - self._drawn_at)
            if wait > 0 and self._drawn is not None:  # a redraw asked for (an option, a new run) never waits
                if not self._held.isActive():
                    self._held.start(max(1, round(wait * 1000)))
                return
            self._drawn, self._drawn_at = key, time.monotonic()
            self.draw(snap)

    def redraw(self) -> None:
        """Draw again even if nothing new arrived (an option changed how it looks)."""
        self._drawn = None
        self.refresh()

    @Slot()
    def on_visibility(self) -> None:
        """Its dock was tabbed to or away from (no show or hide event comes then): `showing` may have changed."""
        self.controller.views_changed()

    def showEvent(self, event: QShowEvent) -> None:
        """Hidden views skip frames and probes: ask for the probes and catch up when shown."""
        super().showEvent(event)
        self.controller.views_changed()
        self.refresh()

    def hideEvent(self, event: QHideEvent) -> None:
        super().hideEvent(event)
        self.controller.views_changed()

    def resizeEvent(self, event: QResizeEvent) -> None:
        """A dock collapsed to nothing, or opened from it, hides or shows the view without a hide or show."""
        super().resizeEvent(event)
        self.controller.views_changed()

    # --- session state -----------------------------------------------------------------------------

    def ui_state(self) -> dict[str, Any]:
        """The view's options for the session file."""
        state: dict[str, Any] = {key: box.isChecked() for key, box in self.toggles().items()}
        for key, w in self.choices().items():
            if key in self._pending:  # a saved setting this view has not shown yet: kept as the file had it
                state[key] = self._pending[key]
                continue
            if isinstance(w, QComboBox) and w.count() == 0:
                continue  # entries come with a run this view has not drawn
            value = w.currentData() if isinstance(w, QComboBox) else w.value()
            if value is None or isinstance(value, (str, int, float)):
                state[key] = value
        return state

    def apply_ui(self, ui: Any) -> None:
        """Take options from a session file; anything missing is off, anything malformed is logged and off."""
        if not isinstance(ui, dict):
            log.warning("ignoring the %s view's saved options: expected a mapping, got %s", type(self).__name__,
                        type(ui).__name__)
            ui = {}
        boxes, choices = self.toggles(), self.choices()
        for key in ui.keys() - boxes.keys() - choices.keys():
            log.warning("ignoring unknown option %r of the %s view", key, type(self).__name__)
        for key, w in choices.items():
            if key in ui:
                self._apply_choice(key, w, ui[key])
        for key, box in boxes.items():
            value = ui.get(key, False)
            if not isinstance(value, bool):
                log.warning("ignoring option %r of the %s view: expected true or false, got %r", key,
                            type(self).__name__, value)
                value = False
            box.setChecked(value)

    def _apply_choice(self, key: str, w: QComboBox | QSlider, value: Any, drawn: bool = False) -> None:
        """Take one saved setting. A combo box whose entries come with the run (layers, classes) may not have
        them yet: the value waits until the view first draws the run (`drawn`), and is checked then."""
        name = type(self).__name__
        self._pending.pop(key, None)
        if isinstance(w, QComboBox):
            index = next((i for i in range(w.count()) if w.itemData(i) == value and
                          type(w.itemData(i)) is type(value)), -1)  # True is not 1, "1" is not 1
            if index >= 0:
                w.setCurrentIndex(index)
            elif not drawn and self.run is not self.controller.run_info and isinstance(value, (str, int)):
                self._pending[key] = value
            else:
                log.warning("ignoring option %r of the %s view: %r is not one of its entries", key, name, value)
        elif isinstance(value, int) and not isinstance(value, bool) and w.minimum() <= value <= w.maximum():
            w.setValue(value)
        else:
            log.warning("ignoring option %r of the %s view: expected a whole number from %d to %d, got %r", key,
                        name, w.minimum(), w.maximum(), value)
