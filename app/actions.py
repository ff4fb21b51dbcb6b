"""One way to make an action: text, a tooltip that names its shortcut, an optional icon, a slot."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QIcon, QKeySequence


def make_action(parent: QObject, text: str, tip: str, slot: Callable[..., Any],
                shortcut: QKeySequence | QKeySequence.StandardKey | str | None = None, icon: QIcon | None = None,
                context: Qt.ShortcutContext | None = None) -> QAction:
    """An action whose tooltip and status tip say what it does and its shortcut ("Undo (Ctrl+Z)")."""
    action = QAction(text, parent) if icon is None else QAction(icon, text, parent)
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
        if context is not None:
            action.setShortcutContext(context)
        tip += f" ({action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)})"
    action.setToolTip(tip)
    action.setStatusTip(tip)
    action.triggered.connect(slot)
    return action
