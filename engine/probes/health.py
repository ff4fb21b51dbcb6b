"""Training-health probes for any network: weights, per-layer gradient norms and the share of dead ReLUs."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..graph import GraphInfo
from ..ops import OPS
from ..ops.activations import ACTIVATIONS
from .registry import Probe, ProbeContext, ProbeRequest, own, register


def _weighted(info: GraphInfo) -> list[str]:
    return [n for n in info.order if "weight" in OPS[info.nodes[n].op].penalized]


def _relu_nodes(info: GraphInfo) -> list[str]:
    """Nodes ending in a ReLU-like activation: their units can die (output 0 for every input)."""
    out = []
    for n in info.order:
        params = info.nodes[n].params
        fn = getattr(params, "activation", None) or getattr(params, "fn", None)
        if isinstance(fn, str) and fn in ACTIVATIONS and ACTIVATIONS[fn].relu_like:
            out.append(n)
    return out


def weights(ctx: ProbeContext, request: ProbeRequest) -> dict[str, np.ndarray]:
    """``NODE``: the weight of every weighted layer ((out, in) for dense); ``NODE.bias``: its bias."""
    out = {}
    for n in _weighted(ctx.model.info):
        layer = ctx.model.layers[n]
        out[n] = own(layer.weight)
        if getattr(layer, "bias", None) is not None:
            out[f"{n}.bias"] = own(layer.bias)
    return out


def grad_norms(ctx: ProbeContext, request: ProbeRequest) -> dict[str, np.ndarray]:
    """``NODE``: the L2 norm of the node's parameters' last gradients (from the full training set when no step
    has left gradients yet, as for a reopened file)."""
    model = ctx.model
    params = [p for p in model.parameters() if p.requires_grad]
    if params and all(p.grad is None for p in params):
        with model.evaluating():  # no dropout or sampling: the trainer's generators stay untouched
            loss = ctx.head.loss(model(ctx.x_train, ctx.feed("train")), ctx.t_train)
        grads = dict(zip(map(id, params), torch.autograd.grad(loss, params, allow_unused=True), strict=True))
    else:
        grads = {id(p): p.grad for p in params}
    out = {}
    for n in model.info.order:
        gs = [grads[id(p)] for p in model.layers[n].parameters() if grads.get(id(p)) is not None]
        if gs:
            norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in gs]))
            out[n] = np.array(float(norm), dtype=np.float64)
    return out


DEAD_SAMPLES = 512  # dead units are judged on the first training samples: every one of a 2-D toy set's; an
# image set's full pass cost 37 ms a probe round (digits) where this costs a third of it


def dead_units(ctx: ProbeContext, request: ProbeRequest) -> dict[str, np.ndarray]:
    """``NODE``: the share of the node's units that output 0 (or less) for every one of the first DEAD_SAMPLES
    training samples (all of them in a small set)."""
    nodes = _relu_nodes(ctx.model.info)
    values = ctx.forward_all(f"train[:{DEAD_SAMPLES}]", ctx.x_train[:DEAD_SAMPLES], ctx.feed("train", 0, DEAD_SAMPLES))
    return {n: np.array(float((values[n] <= 0).all(dim=0).float().mean()), dtype=np.float64) for n in nodes}


def _any(info: GraphInfo, dataset_spec: Any) -> bool:
    return True


register(Probe("weights", "Every weighted layer's weights and biases (links and histograms).",
               lambda info, ds: bool(_weighted(info)), weights))
register(Probe("grad_norms", "Per layer, the L2 norm of its parameters' gradients.", _any, grad_norms))
register(Probe("dead_units", "Per ReLU layer, the share of units that are 0 for every training sample (the "
               f"first {DEAD_SAMPLES} of a larger set).",
               lambda info, ds: bool(_relu_nodes(info)), dead_units))
