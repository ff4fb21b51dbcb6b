"""Core ops: input and output, dense, activation, dropout, normalisation, merges and reshaping."""
from __future__ import annotations

import math
from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from .activations import ACTIVATIONS, Activated, Activation, ActivationName
from .registry import (
    MAX_UNITS,
    BuildContext,
    Dim,
    Family,
    Identity,
    NoParams,
    Op,
    Params,
    Shape,
    ShapeError,
    features,
    fmt_all,
    fmt_shape,
    one,
    register,
    register_family,
    total_size,
)

CORE = register_family(Family("core", "Core", "#e8eef7"))


# --- input / output ----------------------------------------------------------------------------

class InputParams(Params):
    # None takes the dataset's shape; a declared shape (a template's, say) must match the dataset's.
    shape: tuple[Dim, ...] | None = Field(None, min_length=1, max_length=4)


register(Op(
    name="input", family="core", key_params=("shape",),
    doc="The network's input: the dataset's features, images (C, H, W), token ids (T,) or node features (N, F).",
    params=InputParams, inputs=(0, 0),
    shape=lambda p, s: (),  # filled in by the graph from the dataset
    build=lambda p, s, ctx: Identity(),
))


class OutputParams(Params):
    activation: Literal["softmax", "sigmoid", "tanh", "linear"] = "tanh"


register(Op(
    name="output", family="core", key_params=("activation",),
    doc="The task head: softmax (K classes), sigmoid or tanh (two classes) or linear (regression).",
    params=OutputParams, inputs=(1, 1), shape=lambda p, s: one(s),
    build=lambda p, s, ctx: Identity(),
))


# --- dense -------------------------------------------------------------------------------------

InitName = Literal["default", "xavier", "kaiming", "uniform", "zeros"]


class DenseParams(Params):
    units: int = Field(4, ge=1, le=MAX_UNITS)
    activation: ActivationName = "linear"
    bias: bool = True
    init: InitName = "default"
    pieces: int = Field(2, ge=2, le=8, description="maxout only: linear pieces per unit, the largest is kept")

    def width(self) -> int:
        """Linear outputs: units, or units × pieces for maxout."""
        return self.units * self.pieces if ACTIVATIONS[self.activation].pieces else self.units


class Dense(Activated, nn.Linear):
    """A fully connected layer with its own activation (TensorFlow Playground's 'layer')."""

    def __init__(self, in_features: int, p: DenseParams) -> None:
        super().__init__(in_features, p.width(), bias=p.bias)
        self.activation = p.activation
        self.set_activation(p.activation, p.pieces)
        init_weights(self, p.init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, [T,] F) -> (B, [T,] units); maxout via (B, units·k)
        return self.activate(F.linear(x, self.weight, self.bias))


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
    s = shapes[0]
    if len(s) == 2:  # a sequence's steps (or a graph's nodes), each through the same weights: (T, F) -> (T, units)
        if ACTIVATIONS[p.activation].pieces:
            raise ShapeError(f"maxout takes a flat (B, F) input but gets {fmt_shape(s)}: insert a Flatten or "
                             "pick another activation")
        return (s[0], p.units)
    features(s)
    return (p.units,)


register(Op(
    name="dense", family="core",
    doc="Fully connected layer: y = act(x·Wᵀ + b). On a sequence (T, F) it acts on each step alike: (T, units).",
    params=DenseParams, inputs=(1, 1),
    shape=_dense_shape,
    build=lambda p, s, ctx: Dense(s[0][-1], p),
    count=lambda p, s: (s[0][-1] + p.bias) * p.width() + ACTIVATIONS[p.activation].learned,
    penalized=("weight",), key_params=("units", "activation"),
))


class ActivationParams(Params):
    fn: ActivationName = "relu"
    pieces: int = Field(2, ge=2, le=8, description="maxout only: each output is the max of this many inputs")


def _activation_shape(p: ActivationParams, shapes: list[Shape]) -> Shape:
    if not ACTIVATIONS[p.fn].pieces:
        return shapes[0]
    n = features(shapes[0])
    if n % p.pieces:
        raise ShapeError(f"maxout takes groups of {p.pieces} features but gets {n}: make it a multiple of {p.pieces}")
    return (n // p.pieces,)


register(Op(
    name="activation", family="core", doc="A non-linearity: element-wise, or maxout over groups of k features.",
    params=ActivationParams, inputs=(1, 1), shape=_activation_shape,
    build=lambda p, s, ctx: Activation(p.fn, p.pieces),
    count=lambda p, s: int(ACTIVATIONS[p.fn].learned), key_params=("fn",),
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
    name="dropout", family="core", key_params=("p",), modal=True, doc="Zeroes each unit with probability p while training; scales the rest by 1/(1−p).",
    params=DropoutParams, inputs=(1, 1), shape=lambda p, s: one(s),
    build=lambda p, s, ctx: Dropout(p.p, ctx.generator),
))


class BatchNormParams(Params):
    momentum: float = Field(0.1, gt=0.0, le=1.0)
    eps: float = Field(1e-5, gt=0.0, le=1.0)


def _bn_shape(p: BatchNormParams, shapes: list[Shape]) -> Shape:
    if len(shapes[0]) not in (1, 3):
        raise ShapeError(f"normalises features (B, F) or channels (B, C, H, W) but gets {fmt_shape(shapes[0])}: "
                         "use layer norm for sequences")
    return shapes[0]


def _bn_build(p: BatchNormParams, s: list[Shape], ctx: BuildContext) -> nn.Module:
    norm = nn.BatchNorm1d if len(s[0]) == 1 else nn.BatchNorm2d
    return norm(s[0][0], eps=p.eps, momentum=p.momentum)


register(Op(
    name="batch_norm", family="core", modal=True,
    doc="Normalises each feature (or each image channel) over the batch, then scales and shifts.",
    params=BatchNormParams, inputs=(1, 1), shape=_bn_shape, build=_bn_build,
    count=lambda p, s: 2 * s[0][0],
))


class LayerNormParams(Params):
    eps: float = Field(1e-5, gt=0.0, le=1.0)
    affine: bool = True


register(Op(
    name="layer_norm", family="core", doc="Normalises each sample over its last dimension, then scales and shifts.",
    params=LayerNormParams, inputs=(1, 1), shape=lambda p, s: one(s),
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
            raise ShapeError(f"needs equal shapes but gets {fmt_all(shapes)}: make the branches the same size")
    return shapes[0]


register(Op(
    name="add", family="core", doc="Element-wise sum of its inputs (a residual connection).",
    params=NoParams, inputs=(2, None), shape=_add_shape, build=lambda p, s, ctx: Add(),
))


class ConcatParams(Params):
    axis: int = Field(-1, ge=-4, le=3, description="per-sample axis to join: -1 the last, 0 image channels")


class Concat(nn.Module):
    def __init__(self, axis: int) -> None:
        super().__init__()
        self.dim = axis if axis < 0 else axis + 1  # skip the batch dimension

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=self.dim)


def _concat_shape(p: ConcatParams, shapes: list[Shape]) -> Shape:
    rank = len(shapes[0])
    if not -rank <= p.axis < rank:
        raise ShapeError(f"joins axis {p.axis} but its inputs {fmt_shape(shapes[0])} have {rank} axes")
    axis = p.axis % rank
    rest = [s[:axis] + s[axis + 1:] for s in shapes]
    for s, r in zip(shapes, rest, strict=True):
        if len(s) != rank or r != rest[0]:
            which = "the last dimension" if axis == rank - 1 else f"axis {p.axis}"
            raise ShapeError(f"joins {which}, so the others must match, but gets {fmt_all(shapes)}")
    return (*shapes[0][:axis], sum(s[axis] for s in shapes), *shapes[0][axis + 1:])


register(Op(
    name="concat", family="core", key_params=("axis",), doc="Joins its inputs along one axis (the last, or the channels of images).",
    params=ConcatParams, inputs=(2, None), shape=_concat_shape, build=lambda p, s, ctx: Concat(p.axis),
))


# --- reshaping -----------------------------------------------------------------------------------

class Flatten(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, ...) -> (B, prod)
        return x.flatten(1)


register(Op(
    name="flatten", family="core", doc="Flattens everything but the batch into one feature vector.",
    params=NoParams, inputs=(1, 1), shape=lambda p, s: (total_size(s[0]),), build=lambda p, s, ctx: Flatten(),
    explain=lambda p, s: f"{' × '.join(str(d) for d in s[0])} = {total_size(s[0])} features",
))


class ReshapeParams(Params):
    shape: tuple[Annotated[int, Field(ge=-1, le=MAX_UNITS)], ...] = Field((-1,), min_length=1, max_length=4)


class Reshape(nn.Module):
    def __init__(self, shape: Shape) -> None:
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)


def _reshape_shape(p: ReshapeParams, shapes: list[Shape]) -> Shape:
    n = total_size(shapes[0])
    dims = list(p.shape)
    if 0 in dims or dims.count(-1) > 1:
        raise ShapeError("takes positive sizes and at most one -1 (the size that makes the total fit)")
    known = math.prod(d for d in dims if d != -1)
    if -1 in dims:
        if n % known:
            raise ShapeError(f"cannot fit {n} values into {_fmt_dims(dims)}: {n} is not a multiple of {known}")
        dims[dims.index(-1)] = n // known
    elif known != n:
        raise ShapeError(f"cannot reshape {fmt_shape(shapes[0])} ({n} values) into {_fmt_dims(dims)} ({known})")
    return tuple(dims)


def _fmt_dims(dims: list[int]) -> str:
    return "(" + ", ".join(str(d) for d in dims) + ")"


register(Op(
    name="reshape", family="core", key_params=("shape",), doc="Reinterprets each sample's values in a new shape (-1 = whatever fits).",
    params=ReshapeParams, inputs=(1, 1), shape=_reshape_shape,
    build=lambda p, s, ctx: Reshape(_reshape_shape(p, s)),
))


