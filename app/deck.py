"""The window's views, laid out from the VIEWS table: central tabs and docks, the views that do not apply put
away, and which docks show and each view's options as the session file keeps them."""
from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget, QMainWindow, QTabWidget, QWidget

from engine import SessionSpec

from .controller import Controller
from .files import ViewExport
from .views.base import LiveView
from .views.table import VIEWS

log = logging.getLogger(__name__)


class ViewDeck:
    """Builds every view of the table into `window`: central ones as tabs before `tabs_after`, the rest as docks
    after the `panels` docks (title → widget, docked left)."""

    def __init__(self, window: QMainWindow, controller: Controller, tabs_after: list[tuple[str, str, QWidget]],
                 panels: dict[str, QWidget]) -> None:
        self.window = window
        self.views: dict[str, LiveView] = {entry.name: entry.cls(controller) for entry in VIEWS}
        self.tabs = QTabWidget()
        self.tabs.setObjectName("central_tabs")
        for entry in VIEWS:
            if entry.area is None:
                self.tabs.setTabToolTip(self.tabs.addTab(self.views[entry.name], entry.title), entry.tooltip)
        for title, tooltip, widget in tabs_after:
            self.tabs.setTabToolTip(self.tabs.addTab(widget, title), tooltip)
        self.docks: dict[str, QDockWidget] = {}
        for title, widget in panels.items():
            self._dock(title, widget, Qt.DockWidgetArea.LeftDockWidgetArea)
        titles = {entry.name: entry.title for entry in VIEWS}
        for entry in VIEWS:
            if entry.area is not None:
                self._dock(entry.title, self.views[entry.name], entry.area, entry.tooltip)
                self.docks[entry.title].visibilityChanged.connect(self.views[entry.name].on_visibility)
        for entry in VIEWS:
            if entry.area is not None and entry.tab_with is not None:
                window.tabifyDockWidget(self.docks[titles[entry.tab_with]], self.docks[entry.title])
                self.docks[titles[entry.tab_with]].raise_()
        self._put_away: dict[str, bool] = {}  # views put away because they do not apply: were they shown?

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea, about: str = "") -> None:
        dock = QDockWidget(title, self.window)
        dock.setObjectName(f"dock_{title.lower()}")  # the saved window state finds docks by these names
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        action = dock.toggleViewAction()
        action.setToolTip(f"Show or hide the {title} panel" + (f": {about[0].lower()}{about[1:]}" if about else ""))
        self.window.addDockWidget(area, dock)
        self.docks[title] = dock

    def fit(self, spec: SessionSpec) -> None:
        """Put away the views that do not apply to this problem (no input plane, say); bring back those that do."""
        changed = False
        for entry in VIEWS:
            fits = entry.applies(spec)
            view = self.views[entry.name]
            if entry.area is None:
                self.tabs.setTabVisible(self.tabs.indexOf(view), fits)
                continue
            dock = self.docks[entry.title]
            action = dock.toggleViewAction()
            if fits == action.isEnabled():
                continue
            changed = True
            action.setEnabled(fits)
            if not fits:
                self._put_away[entry.name] = not dock.isHidden()
                dock.hide()
            elif self._put_away.pop(entry.name, False):
                dock.show()
        if changed:  # hiding a tabbed dock makes Qt show another of its tabs: the host's tab comes first
            titles = {entry.name: entry.title for entry in VIEWS}
            for host in {entry.tab_with for entry in VIEWS if entry.tab_with is not None}:
                self.docks[titles[host]].raise_()

    def show_all(self) -> None:
        """Every view in sight at once, docks side by side instead of tabbed (for the soak test and the benchmark:
        Qt's splitDockWidget leaves a tabbed dock parked out of sight)."""
        central = [e for e in VIEWS if e.area is None and self.tabs.isTabVisible(self.tabs.indexOf(self.views[e.name]))]
        if central:  # one central tab shows at a time: the first that applies (Network, or Samples for images)
            self.tabs.setCurrentWidget(self.views[central[0].name])
        for entry in VIEWS:
            if entry.area is None:
                continue
            elif entry.tab_with is not None and self.docks[entry.title].toggleViewAction().isEnabled():
                dock = self.docks[entry.title]
                self.window.removeDockWidget(dock)
                self.window.addDockWidget(entry.area, dock, Qt.Orientation.Vertical)
                dock.show()

    def exports(self) -> list[ViewExport]:
        """Every view, for the File menu's Export."""
        return [ViewExport(entry.name, entry.export_label, self.views[entry.name].export) for entry in VIEWS]

    def ui_state(self) -> dict[str, Any]:
        """Which docks show, each view's options and the current tab."""
        ui: dict[str, Any] = {"views": {name: not dock.isHidden() for name, dock in self.docks.items()}}
        ui |= {name: state for name, view in self.views.items() if (state := view.ui_state())}
        ui["tab"] = self.tabs.currentIndex()
        return ui

    def apply_ui(self, ui: dict[str, Any]) -> None:
        """Take what `ui_state` saved; whatever does not fit (a file may hold anything) is logged and skipped."""
        shown = ui.get("views", {})
        if not isinstance(shown, dict):
            log.warning("ignoring the session's open views: expected a mapping, got %s", type(shown).__name__)
            shown = {}
        for name, visible in shown.items():
            if name not in self.docks:
                log.warning("ignoring unknown view %r in the session's open views", name)
            elif not isinstance(visible, bool):
                log.warning("ignoring whether view %r is open: expected true or false, got %r", name, visible)
            elif self.docks[name].toggleViewAction().isEnabled():  # a view put away stays away
                self.docks[name].setVisible(visible)
        for name, view in self.views.items():
            view.apply_ui(ui.get(name, {}))
        if "tab" not in ui:
            return
        tab = ui["tab"]
        if not (isinstance(tab, int) and not isinstance(tab, bool) and 0 <= tab < self.tabs.count()):
            log.warning("ignoring the session's tab %r: not a tab of this window", tab)
        elif self.tabs.isTabVisible(tab):
            self.tabs.setCurrentIndex(tab)
