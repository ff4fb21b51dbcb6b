"""Autosave and crash recovery: one autosave file per running window, removed on a clean exit."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import EngineError
from engine.session import load_session

from .paths import recovery_dir


def recovery_meta(ui: Any) -> dict[str, str]:
    """What an autosave says about the session it saved (its file and name); what a file holds here is unchecked."""
    meta = ui.get("recovery") if isinstance(ui, dict) else None
    if not isinstance(meta, dict):
        return {}
    return {k: v for k, v in meta.items() if k in ("path", "name") and isinstance(v, str)}


def autosave_path() -> Path:
    return recovery_dir() / f"autosave-{os.getpid()}.dlp"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class Orphan:
    """An autosave left behind by a window that did not close cleanly."""

    path: Path
    original: str | None  # the file the session came from, if it had one
    summary: str


def orphans() -> list[Orphan]:
    """Autosaves whose process is gone, newest first. Unreadable ones are described, not raised."""
    found = []
    for path in recovery_dir().glob("autosave-*.dlp"):
        try:
            pid = int(path.stem.split("-", 1)[1])
        except ValueError:
            continue
        if _alive(pid):
            continue
        try:
            session = load_session(path)
            meta = recovery_meta(session.ui)
            epoch = session.checkpoint.epoch if session.checkpoint else 0
            name = meta.get("name") or session.spec.name or "untitled"
            found.append(Orphan(path, meta.get("path"), f"{name}, epoch {epoch}"))
        except EngineError as exc:
            found.append(Orphan(path, None, f"unreadable autosave ({exc})"))
    return sorted(found, key=lambda o: o.path.stat().st_mtime, reverse=True)


def discard(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
