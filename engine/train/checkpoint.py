"""Checkpoints: everything needed to continue a run bit-identically, as owned CPU copies (no Qt, no files)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..spec import SessionSpec


@dataclass(frozen=True)
class Checkpoint:
    """The whole state of a run between two steps."""

    spec: SessionSpec
    step: int
    epoch: int
    batch_index: int
    elapsed: float
    status: str
    message: str
    weights: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    rng: dict[str, torch.Tensor]  # shuffle and dropout generator states, the current epoch's permutation
    early: dict[str, float]
    best_weights: dict[str, torch.Tensor] | None
    history: dict[str, np.ndarray] = field(default_factory=dict)
    epoch_correct: int = 0  # running train metrics: training samples stepped on correctly so far this epoch
    epoch_parts: tuple[float, float] = (0.0, 0.0)  # and a VAE's Σ data term, Σ KL, each × batch size


def cpu_copy(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in tensors.items()}


def clone_state(state: Any) -> Any:
    """A deep copy of an optimizer state dict with every tensor copied to the CPU."""
    if isinstance(state, torch.Tensor):
        return state.detach().to("cpu", copy=True)
    if isinstance(state, dict):
        return {k: clone_state(x) for k, x in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(clone_state(x) for x in state)
    return state
