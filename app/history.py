"""The GUI's copy of a run's history, grown from snapshot deltas (no Qt, no torch)."""
from __future__ import annotations

import numpy as np

from engine import Snapshot
from engine.train.history import EPOCH_KEYS


class Buffer:
    """A float64 array that doubles its capacity as it grows; `view()` is the filled part."""

    def __init__(self, capacity: int = 1024) -> None:
        self._data = np.empty(capacity, dtype=np.float64)
        self.n = 0

    def put(self, start: int, values: np.ndarray) -> None:
        """Write `values` at `start` and drop anything after them (a resend after reset overwrites)."""
        end = start + len(values)
        if end > len(self._data):
            grown = np.empty(max(end, 2 * len(self._data)), dtype=np.float64)
            grown[:self.n] = self._data[:self.n]
            self._data = grown
        self._data[start:end] = values
        self.n = end

    def view(self) -> np.ndarray:
        return self._data[:self.n]


class RunHistory:
    """Every step's loss, the per-epoch metrics and the health probes seen so far for one run."""

    def __init__(self, steps_per_epoch: int = 1) -> None:
        self.steps_per_epoch = steps_per_epoch
        self.step_loss = Buffer()
        self.epochs = {k: Buffer(256) for k in EPOCH_KEYS}
        self.probe_steps: list[int] = []
        self.grad_norms: dict[str, list[float]] = {}
        self.dead: dict[str, list[float]] = {}
        self.run_id = -1

    def absorb(self, snap: Snapshot) -> None:
        """Take a snapshot's deltas (and its probe, if new)."""
        self.run_id = snap.run_id
        self.step_loss.put(snap.step_start, snap.step_loss)
        for k in EPOCH_KEYS:
            self.epochs[k].put(snap.epoch_start, snap.epochs[k])
        probe = snap.probes.get("grad_norms")
        if probe is None or (self.probe_steps and probe.step <= self.probe_steps[-1]):
            return
        self.probe_steps.append(probe.step)
        dead = snap.probes.get("dead_units")
        for store, values in ((self.grad_norms, probe.arrays), (self.dead, dead.arrays if dead else {})):
            for node, v in values.items():
                series = store.setdefault(node, [])
                series.extend([np.nan] * (len(self.probe_steps) - 1 - len(series)))
                series.append(float(v))

    @property
    def n_epochs(self) -> int:
        return self.epochs["epoch_train_loss"].n

    def epoch_x(self) -> np.ndarray:
        return np.arange(1, self.n_epochs + 1, dtype=np.float64)

    def step_x(self) -> np.ndarray:
        """Each step's position in epochs (step k ends at k / steps_per_epoch)."""
        return np.arange(1, self.step_loss.n + 1, dtype=np.float64) / self.steps_per_epoch

    def probe_x(self) -> np.ndarray:
        return np.asarray(self.probe_steps, dtype=np.float64) / self.steps_per_epoch

    def series(self, store: dict[str, list[float]], node: str) -> np.ndarray:
        values = store.get(node, [])
        return np.asarray(values + [np.nan] * (len(self.probe_steps) - len(values)), dtype=np.float64)

    def step_rows(self) -> list[list[str]]:
        """Every step's loss as CSV rows (step, its position in epochs, loss), header first."""
        return [["step", "epoch", "loss"]] + [[str(i + 1), f"{x:.6g}", repr(float(v))]
                                              for i, (x, v) in enumerate(zip(self.step_x(), self.step_loss.view()))]

    def csv_rows(self) -> list[list[str]]:
        """Per-epoch history as CSV rows, header first."""
        rows = [["epoch", "train_loss", "test_loss", "train_accuracy", "test_accuracy"]]
        cols = [self.epochs[k].view() for k in EPOCH_KEYS]
        for i in range(self.n_epochs):
            rows.append([str(i + 1), *("" if np.isnan(c[i]) else repr(float(c[i])) for c in cols)])
        return rows
