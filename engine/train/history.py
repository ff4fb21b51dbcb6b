"""The run's metric history: every step's loss and every epoch's losses and accuracies, sent as deltas."""
from __future__ import annotations

import math

import numpy as np

HISTORY_KEYS = ("step_loss", "epoch_train_loss", "epoch_test_loss", "epoch_train_accuracy", "epoch_test_accuracy")
EPOCH_KEYS = HISTORY_KEYS[1:]


class History:
    """Python lists while recording (an append costs nanoseconds); arrays for snapshots and checkpoints."""

    def __init__(self, arrays: dict[str, np.ndarray] | None = None) -> None:
        self.values: dict[str, list[float]] = {k: [] for k in HISTORY_KEYS}
        if arrays is not None:
            self.values = {k: [float(x) for x in arrays.get(k, [])] for k in HISTORY_KEYS}
        self._sent_steps = 0
        self._sent_epochs = 0

    def __getitem__(self, key: str) -> list[float]:
        return self.values[key]

    def record_step(self, loss: float) -> None:
        self.values["step_loss"].append(loss)

    def record_epoch(self, metrics: dict[str, float]) -> None:
        """Append an epoch's evaluation (accuracies are NaN for regression)."""
        v = self.values
        v["epoch_train_loss"].append(metrics["train_loss"])
        v["epoch_test_loss"].append(metrics["test_loss"])
        v["epoch_train_accuracy"].append(metrics.get("train_accuracy", math.nan))
        v["epoch_test_accuracy"].append(metrics.get("test_accuracy", math.nan))

    def delta(self) -> tuple[int, np.ndarray, int, dict[str, np.ndarray]]:
        """What was recorded since the last call: (step_start, step_loss, epoch_start, epoch rows)."""
        v = self.values
        s0, e0 = self._sent_steps, self._sent_epochs
        steps = np.array(v["step_loss"][s0:], dtype=np.float64)
        epochs = {k: np.array(v[k][e0:], dtype=np.float64) for k in EPOCH_KEYS}
        self._sent_steps, self._sent_epochs = len(v["step_loss"]), len(v["epoch_train_loss"])
        return s0, steps, e0, epochs

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: np.array(v, dtype=np.float64) for k, v in self.values.items()}
