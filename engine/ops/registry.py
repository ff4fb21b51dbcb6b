"""The op registry: each layer type is one small entry (param schema, shape rule, torch factory) that also
says everything an editor or a view needs to know about it (family, colour, key parameters, modal, aux loss,
attention). Shapes never include the batch dimension: a dense layer's output is ``(units,)``.

Adding an op is one ``register(Op(...))`` call in its family's module and one test against torch.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

Shape = tuple[int, ...]

MAX_UNITS = 65_536
Dim = Annotated[int, Field(ge=1, le=MAX_UNITS)]


class ShapeError(ValueError):
    """A shape rule failed; the message reads on after the node id ("dense_2 expects ...")."""


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class NoParams(Params):
    pass


@dataclass
class BuildContext:
    """What factories may need beyond params and shapes: the trainer-owned dropout generator."""

    generator: torch.Generator | None = None


@dataclass(frozen=True)
class Family:
    """A group of ops as the palette shows it: a title and the colour of its blocks."""

    name: str
    title: str
    colour: str  # block fill in the graph editor


FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    """Add a family; the palette lists families in registration order."""
    FAMILIES[family.name] = family
    return family


@dataclass(frozen=True)
class Op:
    """One layer type: its parameter schema, shape rule, parameter count, torch factory and what views and
    editors need to know about it."""

    name: str
    family: str
    doc: str
    params: type[Params]
    inputs: tuple[int, int | None]  # (min, max); max None = any number
    shape: Callable[[Params, list[Shape]], Shape]
    build: Callable[[Params, list[Shape], BuildContext], nn.Module]
    count: Callable[[Params, list[Shape]], int] = lambda p, s: 0
    penalized: tuple[str, ...] = ()  # parameter names that L1/L2 and weight decay act on
    ports: tuple[str, ...] = ()  # names of the inputs, in edge order, for ops whose inputs differ in role
    explain: Callable[[Params, list[Shape]], str] | None = None  # the shape arithmetic, for the inspector
    key_params: tuple[str, ...] = ()  # the parameters worth reading on the block itself
    modal: bool = False  # behaves differently in eval mode (dropout, batch norm, sampling)
    aux_loss: bool = False  # its module leaves a loss term in ``.aux`` after each forward pass (a VAE's KL)
    attention: bool = False  # can keep its attention weights for the views (``keep_weights``/``weights``)

    @property
    def colour(self) -> str:
        """The fill of this op's blocks: its family's colour."""
        return FAMILIES[self.family].colour

    def port_names(self) -> tuple[str, ...]:
        """The input ports an editor draws: one per role, or a single port taking any number."""
        if self.ports:
            return self.ports
        return () if self.inputs[1] == 0 else ("in",)


OPS: dict[str, Op] = {}


def register(op: Op) -> Op:
    """Add an op to the registry under its lowercase name."""
    if op.family not in FAMILIES:
        raise ValueError(f"op {op.name}: register the family {op.family!r} first")
    if op.name in OPS:
        raise ValueError(f"op {op.name} is registered twice")
    OPS[op.name] = op
    return op


# --- shape helpers shared by the families ---------------------------------------------------------

def one(shapes: list[Shape]) -> Shape:
    """The shape of an op's single input (element-wise ops keep it)."""
    return shapes[0]


def fmt_shape(shape: Shape) -> str:
    """Format a per-sample shape with the batch dimension: ``(B, 8, 4)``."""
    return "(" + ", ".join(["B", *(str(d) for d in shape)]) + ")"


def fmt_all(shapes: list[Shape]) -> str:
    return ", ".join(fmt_shape(s) for s in shapes)


def total_size(shape: Shape) -> int:
    return math.prod(shape) if shape else 1


def features(shape: Shape) -> int:
    """The feature count of a (B, F) input, or the error that asks for a Flatten."""
    if len(shape) != 1:
        dims = ", ".join(str(d) for d in shape)
        raise ShapeError(f"expects (B, F) but gets (B, {dims}): insert a Flatten")
    return shape[0]


class Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x
