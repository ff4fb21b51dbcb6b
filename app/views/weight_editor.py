"""The number field a clicked link opens in the network canvas, to set that weight by hand."""
from __future__ import annotations

from PySide6.QtCore import QLocale, QPointF, Qt, Signal
from PySide6.QtGui import QDoubleValidator, QFocusEvent, QKeyEvent
from PySide6.QtWidgets import QLineEdit, QToolTip, QWidget

WEIGHT_LIMIT = 1e6  # float32 turns anything past ~3.4e38 into inf; nothing useful lies anywhere near this


class WeightEditor(QLineEdit):
    """The number field a clicked link opens where it was clicked: Enter applies, Escape or clicking elsewhere
    cancels. A refused value keeps the field open, framed in red, with the reason in its tooltip."""

    applied = Signal(float)

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        validator = QDoubleValidator(-WEIGHT_LIMIT, WEIGHT_LIMIT, -1, self)
        validator.setLocale(QLocale.c())  # the same "0.5" whatever the system's decimal comma
        validator.setNotation(QDoubleValidator.Notation.ScientificNotation)
        self.setValidator(validator)
        self.setFixedWidth(110)
        self.error = ""
        self.hide()

    def open(self, value: float, at: QPointF) -> None:
        """Show `value` at `at` (parent coordinates, kept inside the parent), selected, with the keyboard."""
        self.error = ""
        self.setStyleSheet("")
        self.setToolTip("The weight: Enter applies, Esc cancels")
        self.setText(f"{value:.6g}")
        self.selectAll()
        parent = self.parentWidget()
        # Just below the click, so that the link being edited stays in sight.
        x = min(max(0, int(at.x()) - self.width() // 2), max(0, parent.width() - self.width()))
        y = min(max(0, int(at.y()) + 8), max(0, parent.height() - self.height()))
        self.move(x, y)
        self.show()
        self.raise_()
        self.setFocus(Qt.FocusReason.MouseFocusReason)

    def refuse(self, message: str) -> None:
        """Say why the value was not applied, and keep the field open to correct it."""
        self.error = message
        self.setStyleSheet("QLineEdit { border: 1px solid #b71c1c; }")
        self.setToolTip(message)
        QToolTip.showText(self.mapToGlobal(self.rect().bottomLeft()), message, self)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.hide()
        elif event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            if self.hasAcceptableInput():
                self.applied.emit(float(self.text()))
            else:  # QLineEdit would ignore Enter silently
                self.refuse(f"Type a number between {-WEIGHT_LIMIT:g} and {WEIGHT_LIMIT:g}, such as 0.5 or -1.2e-3")
        else:
            super().keyPressEvent(event)

    def focusOutEvent(self, event: QFocusEvent) -> None:
        super().focusOutEvent(event)
        self.hide()
