"""Helpers the window tests share."""
from __future__ import annotations

from typing import Any


def train_epochs(qtbot: Any, window: Any, n: int) -> None:
    """Play until n more epochs have been drawn, then pause."""
    c = window.controller
    target = c.trainer.epoch + n
    c.play()
    qtbot.waitUntil(lambda: c.snapshot is not None and c.snapshot.epoch >= target, timeout=30_000)
    c.pause()
