"""What crosses from the trainer to whoever listens: live commands in, snapshots out."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..probes import ProbeResult
from ..schedules import ScheduleSpec
from ..spec import OptimizerSpec, Regularization


@dataclass(frozen=True)
class Configure:
    """A live change applied at the next step boundary; weights are kept."""

    optimizer: OptimizerSpec | None = None
    schedule: ScheduleSpec | None = None
    regularization: Regularization | None = None


@dataclass(frozen=True)
class EditWeight:
    """Set one entry of one parameter by hand (a link's weight, a unit's bias), at the next step boundary. The
    optimizer's state for it is kept: the edit is a nudge to the model, not a new run."""

    param: str  # a key of the model's state dict, e.g. "layers.h1.weight"
    index: tuple[int, ...]
    value: float


@dataclass(frozen=True)
class Snapshot:
    """What a view needs, as owned copies. History travels as deltas since the previous snapshot; ``probes``
    holds the latest result of every probe that was asked for, keyed by probe name."""

    run_id: int
    step: int
    epoch: int
    status: str  # ready | running | paused | finished | diverged | early_stopped
    message: str
    lr: float
    elapsed: float  # seconds spent training this session
    step_start: int  # index of step_loss[0] in the whole history
    step_loss: np.ndarray
    epoch_start: int
    epochs: dict[str, np.ndarray]  # epoch_* history rows since epoch_start
    probes: dict[str, ProbeResult]

    def absorb(self, older: Snapshot) -> Snapshot:
        """This snapshot with an older, undrawn one's deltas prepended (a latest-slot replacing unread data)."""
        if older.run_id != self.run_id:
            return self
        epochs = {k: np.concatenate([older.epochs[k], v]) for k, v in self.epochs.items()}
        return Snapshot(self.run_id, self.step, self.epoch, self.status, self.message, self.lr, self.elapsed,
                        older.step_start, np.concatenate([older.step_loss, self.step_loss]),
                        older.epoch_start, epochs, {**older.probes, **self.probes})
