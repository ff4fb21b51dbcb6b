"""The task head: what the last layer must give (units, output activation) and how its output is scored
(label encoding, loss, output values, accuracy). Which heads suit which task is ``check.HEADS``."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from .datasets import input_shape

if TYPE_CHECKING:
    from .spec import SessionSpec


def output_activation(spec: SessionSpec) -> str:
    """The activation of the spec's output node (tanh when it names none)."""
    node = next(n for n in spec.model.nodes if n.op == "output")
    return str(node.params.get("activation", "tanh"))


@dataclass(frozen=True)
class Head:
    """Turns the output node's pre-activation ``z`` (B, C), or (B, T, V) for a per-token task, into losses,
    predictions and accuracy."""

    activation: str = "tanh"
    n_classes: int = 2  # 0 for regression
    task: str = "classification"
    loss_name: str = "mse"
    # reconstruction: the picture the output gives back (the input's shape); sequence: (T,), one token per step
    shape: tuple[int, ...] = ()

    @classmethod
    def of(cls, spec: SessionSpec) -> Head:
        """The head a session's spec asks for."""
        task = spec.dataset.task
        shape = tuple(input_shape(spec.dataset)) if task in ("reconstruction", "sequence") else ()
        return cls(output_activation(spec), spec.dataset.n_classes, task, spec.loss, shape)

    @property
    def units(self) -> int:
        """Output units: K for softmax (a sequence's vocabulary, at each step), a picture's pixels for
        reconstruction, 1 otherwise."""
        if self.task == "reconstruction":
            return math.prod(self.shape)
        return self.n_classes if self.activation == "softmax" else 1

    @property
    def output_shape(self) -> tuple[int, ...]:
        """What the output node must give per sample: (T, V) for a per-token task, else (units,)."""
        return (*self.shape, self.units) if self.task == "sequence" else (self.units,)

    @property
    def tokens(self) -> int:
        """Answers per sample that accuracy counts: T for a per-token task, else 1."""
        return self.shape[0] if self.task == "sequence" else 1

    @property
    def pm1(self) -> bool:
        """±1 targets for squared error on tanh/linear (TensorFlow Playground's convention), 0/1 otherwise."""
        return self.task == "classification" and self.loss_name == "mse" and self.activation in ("tanh", "linear")

    def targets(self, y: np.ndarray, device: torch.device) -> torch.Tensor:
        """Encode dataset labels as the loss expects them."""
        t = torch.from_numpy(np.ascontiguousarray(y)).to(device)
        if self.task == "regression":
            return t.float().unsqueeze(1)  # (B, 1)
        if self.activation == "softmax":
            return t.long() if self.loss_name == "cross_entropy" else F.one_hot(t.long(), self.n_classes).float()
        t = t.float().unsqueeze(1)  # (B, 1) in {0, 1}
        return t * 2 - 1 if self.pm1 else t

    def output(self, z: torch.Tensor) -> torch.Tensor:
        """The network's output after the head's activation (probabilities, ±1 scores or values)."""
        a = self.activation
        if a == "softmax":
            return torch.softmax(z, dim=-1)
        if a == "sigmoid":
            return torch.sigmoid(z)
        if a == "tanh":
            return torch.tanh(z)
        return z

    def loss(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Mean loss of a batch; cross-entropies are computed from logits for stability. A reconstruction's is
        summed over each picture's pixels (the VAE's evidence bound does so: averaged over pixels it would be
        outweighed by the KL term) and averaged over the batch."""
        if self.task == "reconstruction":
            return self.pixel_loss(z, t).mean()
        if self.task == "sequence":  # the mean over every token of the batch
            return F.cross_entropy(z.reshape(-1, z.shape[-1]), t.reshape(-1))
        if self.loss_name == "cross_entropy":
            return F.cross_entropy(z, t)
        if self.loss_name == "bce":
            return F.binary_cross_entropy_with_logits(z, t)
        return F.mse_loss(self.output(z), t)

    def pixel_loss(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """A reconstruction's loss per picture, (B,): ``z`` the output's pre-activation in any shape of B rows,
        ``t`` the pictures in [0, 1] flattened (B, D)."""
        z = z.reshape(len(z), -1)
        if self.loss_name == "bce":
            return F.binary_cross_entropy_with_logits(z, t, reduction="none").sum(1)
        return (self.output(z) - t).pow(2).sum(1)

    def correct(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-sample correctness (bool) against class indices ``y``: (B,), or (B, T) per token."""
        if self.activation == "softmax":
            return z.argmax(dim=-1) == y
        return (z[:, 0] > 0) == (y > 0)  # every binary head decides at z = 0
