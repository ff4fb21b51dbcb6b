"""The layer registry: each op is one small entry (param schema, shape rule, torch factory).

Shapes here never include the batch dimension: a dense layer's output is ``(units,)``.
Adding an op is one ``register(...)`` call and one test against torch.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

Shape = tuple[int, ...]

MAX_UNITS = 65_536


class ShapeError(ValueError):
    """A shape rule failed; the message reads on after the node id ("dense_2 expects ...")."""


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass
class BuildContext:
    """What factories may need beyond params and shapes: the trainer-owned dropout generator."""

    generator: torch.Generator | None = None


@dataclass(frozen=True)
class Op:
    """One layer type: its parameter schema, shape rule, parameter count and torch factory."""

    name: str
    family: str
    doc: str
    params: type[Params]
    inputs: tuple[int, int | None]  # (min, max); max None = any number
    shape: Callable[[Params, list[Shape]], Shape]
    build: Callable[[Params, list[Shape], BuildContext], nn.Module]
    count: Callable[[Params, list[Shape]], int] = lambda p, s: 0
    penalized: tuple[str, ...] = ()  # parameter names that L1/L2 and weight decay act on
    tags: frozenset[str] = field(default_factory=frozenset)


OPS: dict[str, Op] = {}


def register(op: Op) -> Op:
    """Add an op to the registry under its lowercase name."""
    OPS[op.name] = op
    return op


# --- activations -----------------------------------------------------------------------------

ActivationName = Literal["relu", "leaky_relu", "prelu", "sigmoid", "tanh", "silu", "softplus", "gelu", "linear"]

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor] | None] = {
    "relu": torch.relu,
    "leaky_relu": F.leaky_relu,
    "prelu": None,  # has a learned slope: built as nn.PReLU
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "silu": F.silu,
    "softplus": F.softplus,
    "gelu": F.gelu,
    "linear": None,
}
RELU_LIKE = frozenset({"relu"})


class Activation(nn.Module):
    """A parameter-free activation (or PReLU) as a module."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.prelu = nn.PReLU() if name == "prelu" else None
        self.fn = ACTIVATIONS[name]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.prelu is not None:
            return self.prelu(x)
        return x if self.fn is None else self.fn(x)


def _one(shapes: list[Shape]) -> Shape:
    return shapes[0]


def _features(shape: Shape) -> int:
    if len(shape) != 1:
        dims = ", ".join(str(d) for d in shape)
        raise ShapeError(f"expects (B, F) but gets (B, {dims}): insert a Flatten")
    return shape[0]


# --- input / output ----------------------------------------------------------------------------

class NoParams(Params):
    pass


class Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


register(Op(
    name="input", family="core", doc="The network's input: the dataset's features.",
    params=NoParams, inputs=(0, 0),
    shape=lambda p, s: (),  # filled in by the graph from the dataset
    build=lambda p, s, ctx: Identity(),
))


class OutputParams(Params):
    activation: Literal["softmax", "sigmoid", "tanh", "linear"] = "tanh"


register(Op(
    name="output", family="core",
    doc="The task head: softmax (K classes), sigmoid or tanh (two classes) or linear (regression).",
    params=OutputParams, inputs=(1, 1), shape=lambda p, s: _one(s),
    build=lambda p, s, ctx: Identity(),
))


# --- dense -------------------------------------------------------------------------------------

InitName = Literal["default", "xavier", "kaiming", "uniform", "zeros"]


class DenseParams(Params):
    units: int = Field(4, ge=1, le=MAX_UNITS)
    activation: ActivationName = "linear"
    bias: bool = True
    init: InitName = "default"


class Dense(nn.Linear):
    """A fully connected layer with its own activation (TensorFlow Playground's 'layer')."""

    def __init__(self, in_features: int, p: DenseParams) -> None:
        super().__init__(in_features, p.units, bias=p.bias)
        self.activation = p.activation
        self.act = nn.PReLU() if p.activation == "prelu" else None
        self._fn = ACTIVATIONS[p.activation]
        init_weights(self, p.init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, F) -> (B, units)
        y = F.linear(x, self.weight, self.bias)
        if self.act is not None:
            return self.act(y)
        return y if self._fn is None else self._fn(y)


def init_weights(layer: nn.Linear, init: str) -> None:
    """Initialise a layer's weight and bias in place (uses the global torch RNG, seeded by the caller)."""
    w, b = layer.weight, layer.bias
    with torch.no_grad():
        if init == "default":
            return  # torch's own: kaiming-uniform(a=√5) weights, uniform(±1/√fan_in) biases
        if init == "xavier":
            nn.init.xavier_uniform_(w)
        elif init == "kaiming":
            nn.init.kaiming_uniform_(w, nonlinearity="relu")
        elif init == "uniform":
            nn.init.uniform_(w, -0.5, 0.5)
        elif init == "zeros":
            nn.init.zeros_(w)
        if b is not None:
            # TensorFlow Playground starts every bias at 0.1; the other schemes start at 0.
            nn.init.constant_(b, 0.1 if init == "uniform" else 0.0)


def _dense_shape(p: DenseParams, shapes: list[Shape]) -> Shape:
    _features(shapes[0])
    return (p.units,)


register(Op(
    name="dense", family="core", doc="Fully connected layer: y = act(x·Wᵀ + b).",
    params=DenseParams, inputs=(1, 1),
    shape=_dense_shape,
    build=lambda p, s, ctx: Dense(s[0][0], p),
    count=lambda p, s: s[0][0] * p.units + (p.units if p.bias else 0) + (1 if p.activation == "prelu" else 0),
    penalized=("weight",),
))


class ActivationParams(Params):
    fn: ActivationName = "relu"


register(Op(
    name="activation", family="core", doc="An element-wise non-linearity.",
    params=ActivationParams, inputs=(1, 1), shape=lambda p, s: _one(s),
    build=lambda p, s, ctx: Activation(p.fn),
    count=lambda p, s: 1 if p.fn == "prelu" else 0,
))


# --- dropout and normalisation -----------------------------------------------------------------

class DropoutParams(Params):
    p: float = Field(0.5, ge=0.0, lt=1.0)


class Dropout(nn.Module):
    """Inverted dropout drawing its mask from a trainer-owned generator, so runs resume bit-identically."""

    def __init__(self, p: float, generator: torch.Generator | None) -> None:
        super().__init__()
        self.p = p
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = torch.empty_like(x).bernoulli_(keep, generator=self.generator)
        return x * mask.div_(keep)


register(Op(
    name="dropout", family="core", doc="Zeroes each unit with probability p while training; scales the rest by 1/(1−p).",
    params=DropoutParams, inputs=(1, 1), shape=lambda p, s: _one(s),
    build=lambda p, s, ctx: Dropout(p.p, ctx.generator),
))


class BatchNormParams(Params):
    momentum: float = Field(0.1, gt=0.0, le=1.0)
    eps: float = Field(1e-5, gt=0.0, le=1.0)


register(Op(
    name="batch_norm", family="core", doc="Normalises each feature over the batch, then scales and shifts.",
    params=BatchNormParams, inputs=(1, 1),
    shape=lambda p, s: (_features(s[0]),),
    build=lambda p, s, ctx: nn.BatchNorm1d(s[0][0], eps=p.eps, momentum=p.momentum),
    count=lambda p, s: 2 * s[0][0],
))


class LayerNormParams(Params):
    eps: float = Field(1e-5, gt=0.0, le=1.0)
    affine: bool = True


register(Op(
    name="layer_norm", family="core", doc="Normalises each sample over its last dimension, then scales and shifts.",
    params=LayerNormParams, inputs=(1, 1), shape=lambda p, s: _one(s),
    build=lambda p, s, ctx: nn.LayerNorm(s[0][-1], eps=p.eps, elementwise_affine=p.affine),
    count=lambda p, s: 2 * s[0][-1] if p.affine else 0,
))


# --- merges --------------------------------------------------------------------------------------

class Add(nn.Module):
    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


def _add_shape(p: Params, shapes: list[Shape]) -> Shape:
    for s in shapes[1:]:
        if s != shapes[0]:
            raise ShapeError(f"needs equal shapes but gets {_fmt_all(shapes)}: make the branches the same size")
    return shapes[0]


register(Op(
    name="add", family="core", doc="Element-wise sum of its inputs (a residual connection).",
    params=NoParams, inputs=(2, None), shape=_add_shape, build=lambda p, s, ctx: Add(),
))


class Concat(nn.Module):
    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=-1)


def _concat_shape(p: Params, shapes: list[Shape]) -> Shape:
    lead = shapes[0][:-1]
    for s in shapes:
        if len(s) == 0 or s[:-1] != lead:
            raise ShapeError(f"joins the last dimension, so the others must match, but gets {_fmt_all(shapes)}")
    return (*lead, sum(s[-1] for s in shapes))


register(Op(
    name="concat", family="core", doc="Joins its inputs along the last dimension.",
    params=NoParams, inputs=(2, None), shape=_concat_shape, build=lambda p, s, ctx: Concat(),
))


def fmt_shape(shape: Shape) -> str:
    """Format a per-sample shape with the batch dimension: ``(B, 8, 4)``."""
    return "(" + ", ".join(["B", *(str(d) for d in shape)]) + ")"


def _fmt_all(shapes: list[Shape]) -> str:
    return ", ".join(fmt_shape(s) for s in shapes)


def total_size(shape: Shape) -> int:
    return math.prod(shape) if shape else 1
