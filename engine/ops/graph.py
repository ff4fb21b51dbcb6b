"""Graph-network ops on node features (N, F) with a dense adjacency (N, N): GCN, GAT, readouts."""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from .activations import Activated, PointwiseName
from .registry import (
    MAX_UNITS,
    Family,
    Identity,
    Op,
    Params,
    Shape,
    ShapeError,
    fmt_shape,
    register,
    register_family,
)

GRAPH = register_family(Family("graph", "Graph networks", "#f1e8f7"))


class AdjacencyParams(Params):
    nodes: int = Field(8, ge=1, le=4096)


register(Op(
    name="adjacency", family="graph", key_params=("nodes",),
    doc="The graph's adjacency matrix A (N, N), supplied with each sample by a graph dataset.",
    params=AdjacencyParams, inputs=(0, 0), shape=lambda p, s: (p.nodes, p.nodes),
    build=lambda p, s, ctx: Identity(),
))


def _graph_inputs(shapes: list[Shape]) -> tuple[int, int]:
    x, a = shapes
    if len(x) != 2:
        raise ShapeError(f"expects node features (B, N, F) but gets {fmt_shape(x)}")
    if a != (x[0], x[0]):
        raise ShapeError(f"needs an adjacency (B, {x[0]}, {x[0]}) for its {x[0]} nodes but gets {fmt_shape(a)}")
    return x


def normalized_adjacency(a: torch.Tensor) -> torch.Tensor:
    """Â = D^-½ (A + I) D^-½, with D the degrees of A + I."""
    a_hat = a + torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)  # (B, N, N)
    d = a_hat.sum(-1).rsqrt()  # (B, N)
    return d.unsqueeze(-1) * a_hat * d.unsqueeze(-2)


class GCNParams(Params):
    units: int = Field(16, ge=1, le=MAX_UNITS)
    activation: PointwiseName = "relu"


class GCN(Activated, nn.Module):
    """Kipf & Welling's graph convolution: H' = act(Â H W + b)."""

    def __init__(self, features: int, p: GCNParams) -> None:
        super().__init__()
        self.linear = nn.Linear(features, p.units)
        self.set_activation(p.activation)

    def forward(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:  # (B, N, F), (B, N, N) -> (B, N, units)
        return self.activate(normalized_adjacency(a) @ F.linear(x, self.linear.weight) + self.linear.bias)


def _gcn_shape(p: GCNParams, shapes: list[Shape]) -> Shape:
    n, _ = _graph_inputs(shapes)
    return (n, p.units)


register(Op(
    name="gcn", family="graph", key_params=("units",), doc="Graph convolution: each node averages its neighbours' (and its own) features.",
    params=GCNParams, inputs=(2, 2), ports=("features", "adjacency"), shape=_gcn_shape,
    build=lambda p, s, ctx: GCN(s[0][1], p),
    count=lambda p, s: s[0][1] * p.units + p.units + (p.activation == "prelu"),
    explain=lambda p, s: "Â = D^-½(A+I)D^-½;  H' = act(Â·H·W + b)",
))


class GATParams(Params):
    units: int = Field(8, ge=1, le=MAX_UNITS, description="output features per head")
    heads: int = Field(2, ge=1, le=16)
    combine: Literal["concat", "mean"] = "concat"
    activation: PointwiseName = "relu"


class GAT(Activated, nn.Module):
    """Veličković et al.'s graph attention: each node weighs its neighbours by learned attention scores."""

    def __init__(self, features: int, p: GATParams) -> None:
        super().__init__()
        self.heads, self.units, self.concat = p.heads, p.units, p.combine == "concat"
        self.linear = nn.Linear(features, p.heads * p.units, bias=False)
        self.att_src = nn.Parameter(torch.empty(p.heads, p.units))
        self.att_dst = nn.Parameter(torch.empty(p.heads, p.units))
        self.bias = nn.Parameter(torch.zeros(p.heads * p.units if self.concat else p.units))
        nn.init.xavier_uniform_(self.att_src)
        nn.init.xavier_uniform_(self.att_dst)
        self.set_activation(p.activation)
        self.keep_weights = False
        self.weights: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:  # (B, N, F), (B, N, N)
        b, n, _ = x.shape
        h = self.linear(x).view(b, n, self.heads, self.units)  # (B, N, H, U)
        src = (h * self.att_src).sum(-1)  # (B, N, H): the score's term for a neighbour j
        dst = (h * self.att_dst).sum(-1)  # (B, N, H): the term for the node i itself
        e = F.leaky_relu(dst.unsqueeze(2) + src.unsqueeze(1), 0.2)  # (B, N_i, N_j, H)
        edges = (a + torch.eye(n, dtype=a.dtype, device=a.device)) > 0  # self loops included
        e = e.masked_fill(~edges.unsqueeze(-1), float("-inf"))
        alpha = torch.softmax(e, dim=2)  # over neighbours j
        if self.keep_weights:
            self.weights = alpha.detach().permute(0, 3, 1, 2)  # (B, H, N, N)
        out = torch.einsum("bijh,bjhu->bihu", alpha, h)  # (B, N, H, U)
        out = out.reshape(b, n, -1) if self.concat else out.mean(2)
        return self.activate(out + self.bias)


def _gat_shape(p: GATParams, shapes: list[Shape]) -> Shape:
    n, _ = _graph_inputs(shapes)
    return (n, p.units * p.heads if p.combine == "concat" else p.units)


register(Op(
    name="gat", family="graph", key_params=("units", "heads"), attention=True,
    doc="Graph attention: neighbours are weighted by a learned, softmax-normalised score per head.",
    params=GATParams, inputs=(2, 2), ports=("features", "adjacency"), shape=_gat_shape,
    build=lambda p, s, ctx: GAT(s[0][1], p),
    count=lambda p, s: (s[0][1] * p.heads * p.units + 2 * p.heads * p.units
                        + (p.heads * p.units if p.combine == "concat" else p.units) + (p.activation == "prelu")),
    penalized=("linear.weight",),
))


class ReadoutParams(Params):
    reduce: Literal["mean", "sum", "max", "first"] = "mean"


class Readout(nn.Module):
    def __init__(self, reduce: str) -> None:
        super().__init__()
        self.reduce = reduce

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, N, F) -> (B, F)
        if self.reduce == "max":
            return x.amax(1)
        if self.reduce == "first":  # step/node 0: a transformer's class token
            return x[:, 0]
        return x.sum(1) if self.reduce == "sum" else x.mean(1)


def _readout_shape(p: ReadoutParams, shapes: list[Shape]) -> Shape:
    if len(shapes[0]) != 2:
        raise ShapeError(f"pools node features or steps (B, N, F) but gets {fmt_shape(shapes[0])}")
    return (shapes[0][1],)


register(Op(
    name="readout", family="graph", key_params=("reduce",),
    doc="Global pooling over the nodes of a graph or the steps of a sequence (mean, sum or max), or the first "
        "step alone (first: a vision transformer's class token): (N, F) → (F,).",
    params=ReadoutParams, inputs=(1, 1), shape=_readout_shape, build=lambda p, s, ctx: Readout(p.reduce),
))
