"""The run's metric history: every step's loss and every epoch's losses and accuracies, sent as deltas.

Memory stays bounded however long a run trains: each series keeps its newest values exactly, in a compact
array (8 bytes a value, and invisible to Python's garbage collector, whose full passes over lists of
millions of floats slowed long runs), and folds older ones into (min, max) pairs per bucket, so a curve
drawn from them looks the same.
"""
from __future__ import annotations

import math
from array import array

import numpy as np

HISTORY_KEYS = ("step_loss", "epoch_train_loss", "epoch_test_loss", "epoch_train_accuracy", "epoch_test_accuracy",
                "epoch_val_loss", "epoch_val_accuracy", "epoch_recon_loss", "epoch_kl", "epoch_test_sequence_accuracy",
                "epoch_long_loss", "epoch_long_accuracy", "epoch_long_sequence_accuracy")
EPOCH_KEYS = HISTORY_KEYS[1:]
# Series a file may lack: the validation ones arrived with image sets, the training loss's reconstruction and
# KL parts with autoencoders, exact-sequence accuracy and the longer held-out sequences' scores with sequence
# sets; an older file's runs had none of them, which these series record as NaN.
OPTIONAL_KEYS = ("epoch_val_loss", "epoch_val_accuracy", "epoch_recon_loss", "epoch_kl",
                 "epoch_test_sequence_accuracy", "epoch_long_loss", "epoch_long_accuracy",
                 "epoch_long_sequence_accuracy")
FOLDED = ".folded"  # the suffix of a series' folded part in checkpoints and session files
BUCKET = 64  # values per folded (min, max) pair
KEEP = 1 << 18  # values kept exactly (2 MiB a series); the older half is folded when twice this is reached


class Series:
    """A float series: the newest values exact, older ones as (min, max) per bucket of BUCKET values."""

    def __init__(self, exact: np.ndarray | None = None, folded: np.ndarray | None = None,
                 keep: int | None = None) -> None:
        self.keep = keep or KEEP
        self.exact = array("d", np.asarray(exact if exact is not None else [], dtype=np.float64).tobytes())
        self.folded = array("d", np.asarray(folded if folded is not None else [], dtype=np.float64).tobytes())
        if len(self.folded) % 2:
            raise ValueError("a folded series holds (min, max) pairs")

    @property
    def start(self) -> int:
        """The index of the first exact value: how many values were folded."""
        return len(self.folded) // 2 * BUCKET

    def __len__(self) -> int:
        return self.start + len(self.exact)

    def append(self, value: float) -> None:
        self.exact.append(value)
        if len(self.exact) >= 2 * self.keep:
            self._fold(len(self.exact) - self.keep)

    def _fold(self, n: int) -> None:
        n -= n % BUCKET
        block = np.array(self.exact[:n], dtype=np.float64).reshape(-1, BUCKET)  # a copy: the array shrinks next
        pairs = np.stack([np.fmin.reduce(block, axis=1), np.fmax.reduce(block, axis=1)], axis=1)  # NaN-tolerant
        self.folded.frombytes(pairs.tobytes())
        del self.exact[:n]

    def since(self, index: int) -> np.ndarray:
        """The exact values from global ``index`` on (those already folded are not there any more)."""
        return np.array(self.exact[max(index - self.start, 0):], dtype=np.float64)

    def values(self) -> list[float]:
        """The exact values as a list (the whole series while nothing is folded)."""
        return self.exact.tolist()

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(exact, folded pairs), owned copies."""
        return np.array(self.exact, dtype=np.float64), np.array(self.folded, dtype=np.float64)


class History:
    """The series of one run, and the delta bookkeeping of its snapshots."""

    def __init__(self, arrays: dict[str, np.ndarray] | None = None) -> None:
        arrays = arrays or {}
        self.series = {k: Series(arrays.get(k), arrays.get(k + FOLDED)) for k in HISTORY_KEYS}
        self._sent_steps = 0  # a restored run's first snapshot carries its whole (exact) history
        self._sent_epochs = 0

    def __getitem__(self, key: str) -> list[float]:
        """A series' exact values (all of them unless the run is long enough to fold)."""
        return self.series[key].values()

    def steps(self) -> int:
        return len(self.series["step_loss"])

    def epochs(self) -> int:
        return len(self.series["epoch_train_loss"])

    def record_step(self, loss: float) -> None:
        self.series["step_loss"].append(loss)

    def record_epoch(self, metrics: dict[str, float]) -> None:
        """Append an epoch's evaluation (accuracies are NaN for regression, validation NaN without that set, the
        reconstruction and KL parts NaN where the network has none, the sequence scores NaN without sequences)."""
        s = self.series
        s["epoch_train_loss"].append(metrics["train_loss"])
        s["epoch_test_loss"].append(metrics["test_loss"])
        s["epoch_train_accuracy"].append(metrics.get("train_accuracy", math.nan))
        s["epoch_test_accuracy"].append(metrics.get("test_accuracy", math.nan))
        s["epoch_val_loss"].append(metrics.get("val_loss", math.nan))
        s["epoch_val_accuracy"].append(metrics.get("val_accuracy", math.nan))
        s["epoch_recon_loss"].append(metrics.get("recon_loss", math.nan))
        s["epoch_kl"].append(metrics.get("kl", math.nan))
        for key in ("test_sequence_accuracy", "long_loss", "long_accuracy", "long_sequence_accuracy"):
            s["epoch_" + key].append(metrics.get(key, math.nan))

    def delta(self) -> tuple[int, np.ndarray, int, dict[str, np.ndarray]]:
        """What was recorded since the last call: (step_start, step_loss, epoch_start, epoch rows)."""
        s = self.series
        s0 = max(self._sent_steps, s["step_loss"].start)
        e0 = max(self._sent_epochs, s["epoch_train_loss"].start)
        steps = s["step_loss"].since(s0)
        epochs = {k: s[k].since(e0) for k in EPOCH_KEYS}
        self._sent_steps, self._sent_epochs = self.steps(), self.epochs()
        return s0, steps, e0, epochs

    def arrays(self) -> dict[str, np.ndarray]:
        """Every series' exact values under its key and, once folded, its pairs under ``key.folded``."""
        out = {}
        for k, series in self.series.items():
            exact, folded = series.arrays()
            out[k] = exact
            if len(folded):
                out[k + FOLDED] = folded
        return out
