"""Regularization: L1/L2 penalties added to the loss and early stopping on the validation (or test) loss."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..spec import EarlyStopping


def penalty(weights: list[torch.Tensor], l1: float, l2: float) -> torch.Tensor | None:
    """λ₁·Σ|w| + λ₂·Σw² over the given weights, or None when both rates are zero."""
    total = None
    if l1 > 0:
        total = l1 * torch.stack([w.abs().sum() for w in weights]).sum()
    if l2 > 0:
        sq = l2 * torch.stack([w.pow(2).sum() for w in weights]).sum()
        total = sq if total is None else total + sq
    return total


@dataclass
class EarlyStopper:
    """Tracks the best validation (or test) loss; says when `patience` epochs passed without a min_delta improvement."""

    best: float = float("inf")
    best_epoch: int = 0
    wait: int = 0

    def update(self, rule: EarlyStopping, loss: float, epoch: int) -> tuple[bool, bool]:
        """Record an epoch's loss; return (improved, should_stop)."""
        if loss < self.best - rule.min_delta:
            self.best, self.best_epoch, self.wait = loss, epoch, 0
            return True, False
        self.wait += 1
        return False, self.wait >= rule.patience
