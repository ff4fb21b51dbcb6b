"""Helpers the window tests share."""
from __future__ import annotations

from typing import Any


def train_epochs(qtbot: Any, window: Any, n: int) -> None:
    """Play until n more epochs have been drawn, pause, and wait until the stop is drawn. `pause` waits up
    to 5 s for the step boundary; on a loaded CI machine it can return first, and the worker's idle signal
    then brings the last frame (a test read the curves and the trainer mid-step once: 282 losses, step 281)."""
    c = window.controller
    target = c.trainer.epoch + n
    c.play()
    qtbot.waitUntil(lambda: c.snapshot is not None and c.snapshot.epoch >= target, timeout=30_000)
    c.pause()
    qtbot.waitUntil(lambda: not c.worker.busy and c.snapshot.step == c.trainer.step, timeout=30_000)
