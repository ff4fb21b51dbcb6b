"""The GUI's copy of a run's history, grown from snapshot deltas (no Qt, no torch)."""
from __future__ import annotations

import numpy as np

from engine import Snapshot
from engine.train.history import BUCKET, EPOCH_KEYS, KEEP


class Buffer:
    """A float64 series grown from snapshot deltas: its newest values exact in an array that doubles as it
    grows (``view()`` is the filled part), older ones folded into (min, max) pairs per BUCKET values, as the
    engine's history does, so memory stays bounded however long a run trains."""

    def __init__(self, capacity: int = 1024) -> None:
        self._data = np.empty(capacity, dtype=np.float64)
        self.n = 0  # exact values held
        self.start = 0  # the global index of the first exact value
        self.folded = np.empty(0, dtype=np.float64)  # (min, max) pairs covering [folded_from, start)
        self.folded_from = 0

    @property
    def total(self) -> int:
        """The global index after the last value: how many values the series has had."""
        return self.start + self.n

    def put(self, start: int, values: np.ndarray) -> None:
        """Write `values` at global index `start` and drop anything after them (a resend overwrites)."""
        if self.n == 0 and not len(self.folded):
            self.start = self.folded_from = start  # a reopened long run starts where its exact part does
        if start < self.start:
            values, start = values[self.start - start:], self.start  # those steps are folded already
        local = start - self.start
        end = local + len(values)
        if end > len(self._data):
            grown = np.empty(max(end, 2 * len(self._data)), dtype=np.float64)
            grown[:self.n] = self._data[:self.n]
            self._data = grown
        self._data[local:end] = values
        self.n = end
        if self.n >= 2 * KEEP:
            self._fold(self.n - KEEP)

    def _fold(self, k: int) -> None:
        k -= k % BUCKET
        block = self._data[:k].reshape(-1, BUCKET)
        pairs = np.stack([np.fmin.reduce(block, axis=1), np.fmax.reduce(block, axis=1)], axis=1).ravel()
        self.folded = np.concatenate([self.folded, pairs])
        rest = np.empty(2 * KEEP, dtype=np.float64)  # a new array: views handed to plots stay valid
        rest[:self.n - k] = self._data[k:self.n]
        self._data, self.n, self.start = rest, self.n - k, self.start + k

    def view(self) -> np.ndarray:
        return self._data[:self.n]

    def folded_xy(self) -> tuple[np.ndarray, np.ndarray]:
        """The folded part as a line through each bucket's min and max, at the bucket's first and last index."""
        first = self.folded_from + BUCKET * np.arange(len(self.folded) // 2, dtype=np.float64)
        x = np.stack([first, first + BUCKET - 1], axis=1).ravel()
        return x, self.folded


class RunHistory:
    """Every step's loss, the per-epoch metrics and the health probes seen so far for one run."""

    def __init__(self, steps_per_epoch: int = 1) -> None:
        self.steps_per_epoch = steps_per_epoch
        self.step_loss = Buffer()
        self.epochs = {k: Buffer(256) for k in EPOCH_KEYS}
        self.probe_steps = Buffer(256)  # the step of each health probe; the series below are aligned with it
        self.grad_norms: dict[str, Buffer] = {}
        self.dead: dict[str, Buffer] = {}
        self.run_id = -1

    def absorb(self, snap: Snapshot) -> None:
        """Take a snapshot's deltas (and its probe, if new)."""
        self.run_id = snap.run_id
        self.step_loss.put(snap.step_start, snap.step_loss)
        for k in EPOCH_KEYS:
            self.epochs[k].put(snap.epoch_start, snap.epochs[k])
        probe = snap.probes.get("grad_norms")
        steps = self.probe_steps
        if probe is None or (steps.n and probe.step <= steps.view()[-1]):
            return
        index = steps.total
        steps.put(index, np.array([probe.step], dtype=np.float64))
        dead = snap.probes.get("dead_units")
        for store, values in ((self.grad_norms, probe.arrays), (self.dead, dead.arrays if dead else {})):
            for node, v in values.items():
                series = store.setdefault(node, Buffer(256))
                gap = np.full(index - series.total, np.nan)  # probes that did not measure this layer
                series.put(series.total, np.append(gap, float(v)))

    def epoch_at(self, x: float) -> tuple[int, int] | str:
        """The recorded epoch nearest to plot position ``x`` and its index among the exact epoch values, or why
        there is none to read (no epoch yet; one kept only as a (min, max) range by a long run)."""
        if self.n_epochs == 0:
            return "No epoch finished yet"
        first = self.epochs["epoch_train_loss"].start + 1  # epochs before it are folded into (min, max) pairs
        epoch = int(np.clip(round(x), 1, self.n_epochs))
        if epoch < first:
            return "No exact value kept for that epoch (a long run keeps its oldest epochs as ranges)"
        return epoch, epoch - first

    @property
    def n_epochs(self) -> int:
        return self.epochs["epoch_train_loss"].total

    def epoch_x(self) -> np.ndarray:
        """The epoch numbers of the exact epoch values."""
        b = self.epochs["epoch_train_loss"]
        return np.arange(b.start + 1, b.total + 1, dtype=np.float64)

    def step_x(self) -> np.ndarray:
        """Each exact step's position in epochs (step k ends at k / steps_per_epoch)."""
        return np.arange(self.step_loss.start + 1, self.step_loss.total + 1, dtype=np.float64) / self.steps_per_epoch

    def probe_x(self) -> np.ndarray:
        return self.probe_steps.view() / self.steps_per_epoch

    def series(self, store: dict[str, Buffer], node: str) -> np.ndarray:
        """A layer's values at every probe step (NaN where a probe did not measure it)."""
        n = self.probe_steps.n
        values = store[node].view() if node in store else np.empty(0)
        return values if len(values) == n else np.concatenate([values, np.full(n - len(values), np.nan)])

    def step_rows(self) -> list[list[str]]:
        """Every step's loss as CSV rows (step, its position in epochs, loss), header first."""
        first = self.step_loss.start
        return [["step", "epoch", "loss"]] + [[str(first + i + 1), f"{x:.6g}", repr(float(v))]
                                              for i, (x, v) in enumerate(zip(self.step_x(), self.step_loss.view()))]

    def csv_rows(self) -> list[list[str]]:
        """Per-epoch history as CSV rows, header first."""
        rows = [["epoch", *(k.removeprefix("epoch_") for k in EPOCH_KEYS)]]
        cols = [self.epochs[k].view() for k in EPOCH_KEYS]
        first = self.epochs["epoch_train_loss"].start
        for i in range(len(cols[0])):
            rows.append([str(first + i + 1), *("" if np.isnan(c[i]) else repr(float(c[i])) for c in cols)])
        return rows
