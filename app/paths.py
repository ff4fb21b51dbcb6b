"""Where the app keeps its settings and autosaves (platformdirs; DL_PLAYGROUND_HOME overrides, for tests)."""
from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "dl-playground"


def data_dir() -> Path:
    home = os.environ.get("DL_PLAYGROUND_HOME")
    path = Path(home) / "data" if home else Path(platformdirs.user_data_dir(APP, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def config_dir() -> Path:
    home = os.environ.get("DL_PLAYGROUND_HOME")
    path = Path(home) / "config" if home else Path(platformdirs.user_config_dir(APP, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def recovery_dir() -> Path:
    path = data_dir() / "recovery"
    path.mkdir(parents=True, exist_ok=True)
    return path


def settings_file() -> Path:
    return config_dir() / "settings.ini"
