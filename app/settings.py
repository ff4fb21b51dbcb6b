"""The app's settings (window layout, recent files) in one INI file under the user config folder."""
from __future__ import annotations

from PySide6.QtCore import QSettings

from .paths import settings_file


def settings() -> QSettings:
    """The settings store (``DL_PLAYGROUND_HOME`` moves it, for tests)."""
    return QSettings(str(settings_file()), QSettings.Format.IniFormat)
