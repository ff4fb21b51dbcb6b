"""Recurrent internals: an RNN, LSTM or GRU block re-run step by step from its own weights, so that what torch's
fused kernel keeps to itself can be drawn: the hidden state at every step (and its path on a plane), the gates'
activations, an LSTM's cell state, and how strongly the loss depends on each step's hidden state (vanishing
gradients: a plain RNN's dependence on early steps fades fast, a gated cell's far less)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import networkx as nx
import numpy as np
import torch
from torch import nn

from ..graph import GraphInfo, GraphModule
from .embedding import stable_pca
from .registry import Probe, ProbeContext, ProbeRequest, own, register

CELLS = ("rnn", "lstm", "gru")
# torch's order of the gates in weight_ih / weight_hh (LSTM i, f, g, o; GRU r, z, n), named for students
GATE_NAMES = {"lstm": ("input", "forget", "cell", "output"), "gru": ("reset", "update", "new")}
GRAD_SAMPLES = 64  # examples whose gradient norms are averaged: the first of the split, the same every round


def recurrent_nodes(info: GraphInfo) -> list[str]:
    """The RNN, LSTM and GRU blocks, in graph order."""
    return [n for n in info.order if info.nodes[n].op in CELLS]


def _applies(info: GraphInfo, dataset_spec: Any) -> bool:
    return bool(recurrent_nodes(info))


# --- the cell's maths, step by step ----------------------------------------------------------------

def _weights(cell: nn.RNNBase, layer: int, reverse: bool) -> tuple[torch.Tensor, ...]:
    """(W_ih, W_hh, b_ih, b_hh) of one layer and direction (zero biases where the cell has none)."""
    suffix = f"_l{layer}" + ("_reverse" if reverse else "")
    w_ih, w_hh = getattr(cell, "weight_ih" + suffix), getattr(cell, "weight_hh" + suffix)
    b_ih = getattr(cell, "bias_ih" + suffix, None)
    b_hh = getattr(cell, "bias_hh" + suffix, None)
    zero = w_ih.new_zeros(w_ih.shape[0])
    return w_ih, w_hh, zero if b_ih is None else b_ih, zero if b_hh is None else b_hh


def unroll_direction(kind: str, cell: nn.RNNBase, x: torch.Tensor, layer: int = 0, reverse: bool = False,
                     keep_gates: bool = False) -> dict[str, list[torch.Tensor]]:
    """One layer and direction of ``cell`` (an nn.RNN, nn.LSTM or nn.GRU) over ``x`` (B, T, F) from zero
    states, as torch computes it: ``hidden`` the states h_t (B, H) in time order, ``cell`` an LSTM's c_t, and
    with ``keep_gates`` each gate's activations per step, ``gates`` [step][gate] (B, H)."""
    w_ih, w_hh, b_ih, b_hh = _weights(cell, layer, reverse)
    b, t = x.shape[:2]
    h = x.new_zeros(b, w_hh.shape[1])
    c = h
    # every step's input projection at once, (B, T, G·H); the recurrent bias joins it except for a GRU's new
    # state, whose recurrent part is reset as a whole
    xi = x @ w_ih.T + (b_ih if kind == "gru" else b_ih + b_hh)
    u = w_hh.T  # (H, G·H)
    steps = range(t - 1, -1, -1) if reverse else range(t)
    out: dict[str, list[torch.Tensor]] = {"hidden": [], "cell": [], "gates": []}
    act = torch.relu if getattr(cell, "nonlinearity", "tanh") == "relu" else torch.tanh
    for s in steps:
        if kind == "rnn":
            h = act(torch.addmm(xi[:, s], h, u))
            gates: tuple[torch.Tensor, ...] = ()
        elif kind == "lstm":
            i, f, g, o = torch.addmm(xi[:, s], h, u).chunk(4, dim=1)
            i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
            c = f * c + i * g
            h = o * torch.tanh(c)
            out["cell"].append(c)
            gates = (i, f, g, o)
        else:  # gru
            xr, xz, xn = xi[:, s].chunk(3, dim=1)
            hr, hz, hn = torch.addmm(b_hh, h, u).chunk(3, dim=1)
            r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
            n = torch.tanh(xn + r * hn)
            h = n + z * (h - n)  # (1 − z)·n + z·h
            gates = (r, z, n)
        out["hidden"].append(h)
        if keep_gates:
            out["gates"].append(gates)
    if reverse:
        for values in out.values():
            values.reverse()
    return out


def unroll(kind: str, module: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """A ``Recurrent`` block's output for ``x`` (B, T, F), computed step by step as torch's kernel does (eval
    mode: no dropout between layers), and layer 0's forward states h_t (B, H) in time order: the tensors to
    differentiate the loss by."""
    cell = module.cell
    first: list[torch.Tensor] = []
    seq, finals = x, []
    for layer in range(cell.num_layers):
        outs = []
        for reverse in ([False, True] if cell.bidirectional else [False]):
            hs = unroll_direction(kind, cell, seq, layer, reverse)["hidden"]
            if layer == 0 and not reverse:
                first = hs
            outs.append(torch.stack(hs, dim=1))  # (B, T, H)
            finals.append(hs[0] if reverse else hs[-1])  # a reverse pass ends at the first step
        seq = torch.cat(outs, dim=2)
    if not module.last:
        return seq, first
    return torch.cat(finals[-module.directions:], dim=1), first  # the top layer's final states: (B, D·H)


def _forward_with(model: GraphModule, x: torch.Tensor, extras: dict[str, torch.Tensor] | None,
                  replace: dict[str, Callable[..., torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Every node's output, as ``GraphModule.forward_all`` computes it, except that the nodes in ``replace``
    are computed by the function given (from the same inputs)."""
    info = model.info
    values = {info.input_id: x}
    for n in info.order:
        if n != info.input_id and not info.nodes[n].inputs:  # a decoder's input
            op = info.nodes[n].op
            if extras is None or op not in extras:
                raise ValueError(f"{n} ({op}) needs its {op} supplied with the batch")
            values[n] = extras[op]
    for n in info.order:
        if n not in values:
            args = [values[p] for p in info.nodes[n].inputs]
            values[n] = replace[n](*args) if n in replace else model.layers[n](*args)
    return values


# --- probes ----------------------------------------------------------------------------------------

def _node(ctx: ProbeContext, request: ProbeRequest) -> str:
    nodes = recurrent_nodes(ctx.model.info)
    name = request.layer or (nodes[0] if nodes else None)
    if name not in nodes:
        raise KeyError(f"layer {request.layer!r} is not a recurrent block (these are: {', '.join(nodes)})")
    return name


def _tokens(ctx: ProbeContext, node: str, split: str, row: int, steps: int) -> np.ndarray:
    """The names of the tokens the block reads at each step: the input's, or for a decoder's block the
    target so far behind the start token; "t=k" where the data names no tokens or the lengths differ."""
    info = ctx.model.info
    names = ctx.data.meta.get("tokens")
    above = nx.ancestors(info.graph, node)
    ids: torch.Tensor | None = None
    if info.input_id in above:
        ids = ctx.inputs(split)[row]
    else:
        fed = ctx.feed(split, row, row + 1)
        if fed:
            ids = next(iter(fed.values()))[0]
    if names is None or ids is None or ids.dim() != 1 or len(ids) != steps:
        return np.array([f"t={k}" for k in range(steps)], dtype=str)
    return np.array([names[int(k)] if 0 <= int(k) < len(names) else str(int(k)) for k in ids.tolist()], dtype=str)


def gates(ctx: ProbeContext, request: ProbeRequest) -> dict[str, np.ndarray]:
    """For example ``sample`` (default 0) of ``split`` and the recurrent block ``layer`` (default the first), its
    first layer re-run step by step from its own weights (a bidirectional block: its forward direction), in eval
    mode: ``hidden`` (T, H) the state h_t after each step; ``hidden_pca`` (T, 2) those states on their two
    principal axes (each axis keeps the sign it had the round before) and ``hidden_explained`` (2,) the share of
    variance along each; ``gates`` (G, T, H) each gate's activations (LSTM: input, forget, cell candidate,
    output; GRU: reset, update, new; a plain RNN has none: (0, T, H)) named by ``gate_names`` (G,); ``cell``
    (T, H) an LSTM's cell state (absent otherwise); ``tokens`` (T,) the token read at each step; ``target`` and
    ``predicted`` the example's answer and the network's, as class ids ((1,) for a classification, (T,) per
    token; softmax heads only); ``node`` (1,) the block, ``kind`` (1,) rnn, lstm or gru, ``nodes`` every
    recurrent block and ``sample`` (1,) the example."""
    node = _node(ctx, request)
    kind = ctx.model.info.nodes[node].op
    split = request.split
    n = len(ctx.inputs(split))
    row = 0 if request.sample is None else request.sample
    if not 0 <= row < n:
        raise KeyError(f"sample {row} is outside the {split} set (0 to {n - 1})")
    values = ctx.forward_rows(split, row, row + 1)
    x = values[ctx.model.info.nodes[node].inputs[0]]  # (1, T, F)
    module = ctx.model.layers[node]
    with torch.no_grad():
        run = unroll_direction(kind, module.cell, x, keep_gates=True)
    hidden = own(torch.cat(run["hidden"]))  # (T, H)
    steps, width = hidden.shape
    names = GATE_NAMES.get(kind, ())
    out = {"hidden": hidden, "node": np.array([node], dtype=str), "kind": np.array([kind], dtype=str),
           "nodes": np.array(recurrent_nodes(ctx.model.info), dtype=str), "sample": np.array([row]),
           "tokens": _tokens(ctx, node, split, row, steps), "gate_names": np.array(names, dtype=str),
           "gates": (own(torch.stack([torch.cat(g) for g in zip(*run["gates"], strict=True)]))
                     if names else np.zeros((0, steps, width), np.float32))}
    if kind == "lstm":
        out["cell"] = own(torch.cat(run["cell"]))
    if ctx.head.activation == "softmax" and ctx.head.task in ("classification", "sequence"):
        y = getattr(ctx.data, f"y_{split}")
        out["target"] = np.atleast_1d(np.asarray(y[row], dtype=np.int64)).copy()
        answer = values[ctx.model.info.output_id][0].argmax(-1)
        out["predicted"] = np.atleast_1d(answer.cpu().numpy()).astype(np.int64)
    finite = np.isfinite(hidden).all()
    if finite and steps >= 2:
        proj = stable_pca(ctx, f"recurrent pca {node}", hidden)
        out |= {"hidden_pca": proj.points.astype(np.float32), "hidden_explained": proj.explained.astype(np.float32)}
    else:  # one step, or a diverged network: nothing to project
        out |= {"hidden_pca": np.zeros((steps, 2), np.float32), "hidden_explained": np.zeros(2, np.float32)}
    return out


def _targets(ctx: ProbeContext, split: str, rows: slice) -> torch.Tensor:
    """What the loss compares a split's rows with, as the trainer's loss expects them."""
    target = getattr(ctx.data, f"target_{split}", None)
    dev = ctx.x_train.device
    if target is not None:
        return torch.from_numpy(np.ascontiguousarray(target[rows])).to(dev)
    return ctx.head.targets(getattr(ctx.data, f"y_{split}")[rows], dev)


def step_grad_norms(ctx: ProbeContext, request: ProbeRequest) -> dict[str, np.ndarray]:
    """How much the loss depends on each step's hidden state: for the first GRAD_SAMPLES examples of ``split``
    and the recurrent block ``layer`` (default the first), the block is re-run step by step (layer 0, forward
    direction; the rest of the block and of the network as usual, in eval mode) and each example's own loss is
    differentiated by every h_t. ``norms`` (T,) the mean over the examples of ‖∂loss/∂h_t‖, ``node`` (1,),
    ``kind`` (1,) and ``samples`` (1,) how many examples. Only the h_t are differentiated: no parameter's
    gradient is computed or left behind."""
    node = _node(ctx, request)
    kind = ctx.model.info.nodes[node].op
    split = request.split
    x = ctx.inputs(split)
    b = min(GRAD_SAMPLES, len(x))
    hs: list[torch.Tensor] = []

    def replaced(inp: torch.Tensor) -> torch.Tensor:
        # nothing before the block is asked about; a frozen block's states still depend on something to differentiate
        out, first = unroll(kind, ctx.model.layers[node], inp.detach().requires_grad_())
        hs.extend(first)
        return out

    with torch.enable_grad(), ctx.model.evaluating():
        values = _forward_with(ctx.model, x[:b], ctx.feed(split, 0, b), {node: replaced})
        loss = ctx.head.loss(values[ctx.model.info.output_id], _targets(ctx, split, slice(0, b))) * b
        if not torch.isfinite(loss):
            raise ValueError(f"the loss is {float(loss)}: the network has diverged")
        grads = torch.autograd.grad(loss, hs, allow_unused=True)
    norms = [torch.zeros(()) if g is None else torch.linalg.vector_norm(g, dim=1).mean() for g in grads]
    return {"norms": own(torch.stack(norms)).astype(np.float64), "node": np.array([node], dtype=str),
            "kind": np.array([kind], dtype=str), "samples": np.array([b])}


register(Probe("gates", "one example through an RNN, LSTM or GRU block step by step: hidden states, their path "
                        "on a plane, the gates' activations and an LSTM's cell state",
               _applies, gates, takes=frozenset({"sample", "layer", "split"})))
register(Probe("step_grad_norms", "per time step, the norm of the loss's gradient by the recurrent block's hidden "
                                  "state, averaged over 64 examples (vanishing gradients)",
               _applies, step_grad_norms, takes=frozenset({"layer", "split"})))
