"""Sequence ops on (T, C) tensors: embedding, positional encoding, recurrent cells, attention, transformer block."""
from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from .registry import (
    MAX_UNITS,
    Family,
    Identity,
    NoParams,
    Op,
    Params,
    Shape,
    ShapeError,
    fmt_shape,
    register,
    register_family,
)

SEQUENCE = register_family(Family("sequence", "Sequence", "#fdf1e0"))


def _sequence(shape: Shape) -> Shape:
    if len(shape) != 2:
        raise ShapeError(f"expects a sequence (B, T, C) but gets {fmt_shape(shape)}: "
                         "an embedding or a reshape makes one")
    return shape


# --- embedding and position ----------------------------------------------------------------------

class EmbeddingParams(Params):
    vocab: int = Field(32, ge=2, le=MAX_UNITS)
    dim: int = Field(16, ge=1, le=4096)


class Embedding(nn.Embedding):
    """A lookup table of token vectors; token ids arrive as numbers and are used as integers."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T) ids -> (B, T, dim)
        return super().forward(x.long())


def _embedding_shape(p: EmbeddingParams, shapes: list[Shape]) -> Shape:
    if len(shapes[0]) != 1:
        raise ShapeError(f"expects token ids (B, T) but gets {fmt_shape(shapes[0])}")
    return (shapes[0][0], p.dim)


register(Op(
    name="embedding", family="sequence", key_params=("vocab", "dim"), doc="Maps each token id (0 … vocab−1) to a learned vector.",
    params=EmbeddingParams, inputs=(1, 1), shape=_embedding_shape,
    build=lambda p, s, ctx: Embedding(p.vocab, p.dim), count=lambda p, s: p.vocab * p.dim,
))


class PositionalParams(Params):
    kind: Literal["sinusoidal", "learned", "none"] = "sinusoidal"
    max_len: int = Field(512, ge=1, le=MAX_UNITS)


def sinusoids(length: int, dim: int) -> torch.Tensor:
    """Vaswani et al.'s table: PE[t, 2i] = sin(t/10000^(2i/d)), PE[t, 2i+1] = cos(t/10000^(2i/d))."""
    t = torch.arange(length, dtype=torch.float32)[:, None]  # (T, 1)
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))  # (⌈d/2⌉,)
    pe = torch.zeros(length, dim)
    pe[:, 0::2] = torch.sin(t * freq)
    pe[:, 1::2] = torch.cos(t * freq[: dim // 2])
    return pe  # (T, d)


class PositionalEncoding(nn.Module):
    """Adds a position signal to each step: a fixed sinusoid table, a learned one, or nothing."""

    def __init__(self, p: PositionalParams, dim: int) -> None:
        super().__init__()
        self.kind = p.kind
        if p.kind == "learned":
            self.table = nn.Parameter(torch.randn(p.max_len, dim) * 0.02)
        elif p.kind == "sinusoidal":
            self.register_buffer("table", sinusoids(p.max_len, dim), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, C)
        if self.kind == "none":
            return x
        return x + self.table[: x.shape[1]]


def _positional_shape(p: PositionalParams, shapes: list[Shape]) -> Shape:
    t, _ = _sequence(shapes[0])
    if t > p.max_len and p.kind != "none":
        raise ShapeError(f"covers {p.max_len} positions but the sequence has {t}: raise max_len")
    return shapes[0]


register(Op(
    name="positional", family="sequence", key_params=("kind",),
    doc="Positional encoding: tells attention where each step is (sinusoidal, learned or none).",
    params=PositionalParams, inputs=(1, 1), shape=_positional_shape,
    build=lambda p, s, ctx: PositionalEncoding(p, s[0][1]),
    count=lambda p, s: p.max_len * s[0][1] if p.kind == "learned" else 0,
))


register(Op(
    name="decoder_input", family="sequence", inputs=(0, 0), params=NoParams,
    doc="A decoder's input in a sequence-to-sequence network: the target shifted one step behind a start token "
        "▶, so that step t sees the answer up to t−1 (teacher forcing while training; its own answers when "
        "generating). Token ids (T,), like the input.",
    shape=lambda p, s: (),  # filled in by the graph: the target's length, which is the input's
    build=lambda p, s, ctx: Identity(),
))


# --- recurrent cells -----------------------------------------------------------------------------

class RecurrentParams(Params):
    hidden: int = Field(16, ge=1, le=4096)
    layers: int = Field(1, ge=1, le=8)
    bidirectional: bool = False
    output: Literal["all", "last"] = "last"


class Recurrent(nn.Module):
    """An RNN, LSTM or GRU over the sequence; returns every step's output or the final hidden state."""

    def __init__(self, kind: str, features: int, p: RecurrentParams) -> None:
        super().__init__()
        cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind]
        self.cell = cls(features, p.hidden, p.layers, batch_first=True, bidirectional=p.bidirectional)
        self.last = p.output == "last"
        self.directions = 2 if p.bidirectional else 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, F)
        out, h = self.cell(x)  # out (B, T, D·H); h (L·D, B, H), a pair (h, c) for an LSTM
        if not self.last:
            return out
        if isinstance(h, tuple):
            h = h[0]
        top = h[-self.directions:]  # the last layer's final state in each direction: (D, B, H)
        return top.transpose(0, 1).reshape(x.shape[0], -1)  # (B, D·H)


def _recurrent_shape(p: RecurrentParams, shapes: list[Shape]) -> Shape:
    t, _ = _sequence(shapes[0])
    width = p.hidden * (2 if p.bidirectional else 1)
    return (width,) if p.output == "last" else (t, width)


def _recurrent_count(gates: int, p: RecurrentParams, s: list[Shape]) -> int:
    d = 2 if p.bidirectional else 1
    total, width = 0, s[0][1]
    for _ in range(p.layers):
        total += d * gates * p.hidden * (width + p.hidden + 2)
        width = p.hidden * d
    return total


for _name, _gates, _doc in (
    ("rnn", 1, "Elman RNN: h_t = tanh(W x_t + U h_{t−1} + b)."),
    ("lstm", 4, "LSTM: gated cell state that carries information across long sequences."),
    ("gru", 3, "GRU: a lighter gated cell with update and reset gates."),
):
    register(Op(
        name=_name, family="sequence", key_params=("hidden", "output"), doc=_doc + " Outputs every step or the last state.",
        params=RecurrentParams, inputs=(1, 1), shape=_recurrent_shape,
        build=lambda p, s, ctx, kind=_name: Recurrent(kind, s[0][1], p),
        count=lambda p, s, g=_gates: _recurrent_count(g, p, s),
        penalized=(),
    ))


# --- attention -----------------------------------------------------------------------------------

class Attention(nn.Module):
    """Multi-head attention. Uses torch's fused kernel unless ``keep_weights`` is set, in which case it
    computes the softmax matrix explicitly and keeps it in ``weights`` (B, heads, T, S) for the views."""

    def __init__(self, dim: int, heads: int, context_dim: int | None = None, causal: bool = False) -> None:
        super().__init__()
        kd = dim if context_dim is None else context_dim
        self.heads, self.causal = heads, causal
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(kd, dim)
        self.v = nn.Linear(kd, dim)
        self.out = nn.Linear(dim, dim)
        self.keep_weights = False
        self.weights: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        ctx = x if context is None else context
        b, t, d = x.shape
        s, h = ctx.shape[1], self.heads
        q = self.q(x).view(b, t, h, d // h).transpose(1, 2)  # (B, h, T, d/h)
        k = self.k(ctx).view(b, s, h, d // h).transpose(1, 2)  # (B, h, S, d/h)
        v = self.v(ctx).view(b, s, h, d // h).transpose(1, 2)
        if self.keep_weights:
            scores = q @ k.transpose(-2, -1) / math.sqrt(d // h)  # (B, h, T, S)
            if self.causal:
                mask = torch.ones(t, s, dtype=torch.bool, device=x.device).triu(1)
                scores = scores.masked_fill(mask, float("-inf"))
            w = torch.softmax(scores, dim=-1)
            self.weights = w.detach()
            y = w @ v
        else:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        return self.out(y.transpose(1, 2).reshape(b, t, d))  # (B, T, d)


class SelfAttentionParams(Params):
    heads: int = Field(2, ge=1, le=64)
    causal: bool = False


def _heads_fit(dim: int, heads: int) -> None:
    if dim % heads:
        raise ShapeError(f"splits its {dim} channels into {heads} heads, which must divide them")


def _self_attention_shape(p: SelfAttentionParams, shapes: list[Shape]) -> Shape:
    _, d = _sequence(shapes[0])
    _heads_fit(d, p.heads)
    return shapes[0]


def _attention_count(d: int, kd: int) -> int:
    return 2 * (d * d + d) + 2 * (kd * d + d)


register(Op(
    name="self_attention", family="sequence", key_params=("heads", "causal"), attention=True,
    doc="Multi-head self-attention: every step attends to every step (or only earlier ones, if causal).",
    params=SelfAttentionParams, inputs=(1, 1), shape=_self_attention_shape,
    build=lambda p, s, ctx: Attention(s[0][1], p.heads, causal=p.causal),
    count=lambda p, s: _attention_count(s[0][1], s[0][1]), penalized=(),
))


class CrossAttentionParams(Params):
    heads: int = Field(2, ge=1, le=64)


def _cross_shape(p: CrossAttentionParams, shapes: list[Shape]) -> Shape:
    _, d = _sequence(shapes[0])
    _sequence(shapes[1])
    _heads_fit(d, p.heads)
    return shapes[0]


register(Op(
    name="cross_attention", family="sequence", key_params=("heads",), attention=True,
    doc="Multi-head cross-attention: each query step attends to every step of the context sequence.",
    params=CrossAttentionParams, inputs=(2, 2), ports=("query", "context"), shape=_cross_shape,
    build=lambda p, s, ctx: Attention(s[0][1], p.heads, context_dim=s[1][1]),
    count=lambda p, s: _attention_count(s[0][1], s[1][1]),
))


class TransformerParams(Params):
    heads: int = Field(2, ge=1, le=64)
    ff: int = Field(64, ge=1, le=16384, description="hidden units of the MLP")
    norm: Literal["pre", "post"] = "pre"
    activation: Literal["relu", "gelu"] = "gelu"
    causal: bool = False


class TransformerBlock(nn.Module):
    """Self-attention and an MLP, each with a residual connection and a layer norm (before or after)."""

    def __init__(self, dim: int, p: TransformerParams) -> None:
        super().__init__()
        self.attention = Attention(dim, p.heads, causal=p.causal)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.linear1, self.linear2 = nn.Linear(dim, p.ff), nn.Linear(p.ff, dim)
        self.pre = p.norm == "pre"
        self.act = F.gelu if p.activation == "gelu" else F.relu

    def _mlp(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(self.act(self.linear1(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, d)
        if self.pre:
            x = x + self.attention(self.norm1(x))
            return x + self._mlp(self.norm2(x))
        x = self.norm1(x + self.attention(x))
        return self.norm2(x + self._mlp(x))


register(Op(
    name="transformer_block", family="sequence", key_params=("heads", "ff", "norm"), attention=True,
    doc="Transformer encoder block: attention + MLP, each with a residual and a layer norm (pre or post).",
    params=TransformerParams, inputs=(1, 1), shape=_self_attention_shape,
    build=lambda p, s, ctx: TransformerBlock(s[0][1], p),
    count=lambda p, s: _attention_count(s[0][1], s[0][1]) + 4 * s[0][1] + 2 * s[0][1] * p.ff + p.ff + s[0][1],
))
