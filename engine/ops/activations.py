"""Activation functions: one registry entry each, used by dense, conv and graph layers and the activation op.

Adding an activation is one ``ActivationFn`` entry in ``_ENTRIES`` and one test; the stack editor's menu, the
inspector's choices and the spec's validation all read this registry.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ActivationFn:
    """One activation: an element-wise function, or (maxout) the max over ``pieces`` linear pieces per unit."""

    name: str
    doc: str
    fn: Callable[[torch.Tensor], torch.Tensor] | None  # None: identity (linear) or a learned module (prelu)
    learned: bool = False  # has its own parameter (PReLU's slope)
    relu_like: bool = False  # outputs exactly 0 below a threshold, so units can die
    pieces: bool = False  # maxout: the layer computes k linear pieces per unit and keeps the largest


_ENTRIES = (
    ActivationFn("relu", "max(0, x)", torch.relu, relu_like=True),
    ActivationFn("leaky_relu", "x, or 0.01·x below 0", F.leaky_relu),
    ActivationFn("prelu", "x, or a·x below 0 with a learned slope a", None, learned=True),
    ActivationFn("elu", "x, or eˣ − 1 below 0 (smooth, negative outputs push means towards 0)", F.elu),
    ActivationFn("selu", "λ·ELU with α, λ chosen so activations keep mean 0 and variance 1", F.selu),
    ActivationFn("sigmoid", "1 / (1 + e⁻ˣ)", torch.sigmoid),
    ActivationFn("tanh", "tanh x", torch.tanh),
    ActivationFn("silu", "x·sigmoid(x)", F.silu),
    ActivationFn("softplus", "log(1 + eˣ), a smooth ReLU", F.softplus),
    ActivationFn("gelu", "x·Φ(x)", F.gelu),
    ActivationFn("maxout", "the largest of k linear pieces per unit (Goodfellow et al., 2013)", None, pieces=True),
    ActivationFn("linear", "x (no activation)", None),
)
ACTIVATIONS: dict[str, ActivationFn] = {a.name: a for a in _ENTRIES}

# Every activation, and the element-wise ones (maxout needs a layer that can make k pieces per unit).
ActivationName = Literal[tuple(ACTIVATIONS)]  # type: ignore[valid-type]
PointwiseName = Literal[tuple(n for n, a in ACTIVATIONS.items() if not a.pieces)]  # type: ignore[valid-type]


def maxout(y: torch.Tensor, pieces: int) -> torch.Tensor:
    """(B, F·k, ...) → (B, F, ...): the max over each unit's k consecutive pieces."""
    b, c = y.shape[0], y.shape[1]
    return y.reshape(b, c // pieces, pieces, *y.shape[2:]).amax(dim=2)


class Activated:
    """For layers that end in their own activation (dense, conv, GCN): a PReLU module, a function or maxout."""

    act: nn.Module | None
    _fn: Callable[[torch.Tensor], torch.Tensor] | None
    _pieces: int

    def set_activation(self, name: str, pieces: int = 1) -> None:
        entry = ACTIVATIONS[name]
        self.act = nn.PReLU() if entry.learned else None
        self._fn = entry.fn
        self._pieces = pieces if entry.pieces else 1

    def activate(self, y: torch.Tensor) -> torch.Tensor:
        if self.act is not None:
            return self.act(y)
        if self._pieces > 1:
            return maxout(y, self._pieces)
        return y if self._fn is None else self._fn(y)


class Activation(nn.Module):
    """The activation op as a module (the PReLU slope keeps its ``prelu`` name in saved weights)."""

    def __init__(self, name: str, pieces: int = 1) -> None:
        super().__init__()
        entry = ACTIVATIONS[name]
        self.name = name
        self.prelu = nn.PReLU() if entry.learned else None
        self.fn = entry.fn
        self.pieces = pieces if entry.pieces else 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.prelu is not None:
            return self.prelu(x)
        if self.pieces > 1:
            return maxout(x, self.pieces)
        return x if self.fn is None else self.fn(x)
