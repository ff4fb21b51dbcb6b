"""Probes: what the views draw, computed under no_grad from the live model (2-D datasets)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .datasets import DOMAIN, features, grid_points
from .graph import GraphModule
from .head import Head
from .layers import RELU_LIKE


@dataclass(frozen=True)
class ProbeResult:
    """Owned numpy copies; never mutated after creation, so snapshots may share one."""

    step: int
    extent: tuple[float, float]  # the grids cover [lo, hi]² in raw (x1, x2)
    output: np.ndarray  # (C, G, G) head output on the grid; row 0 is x2 = lo, column 0 is x1 = lo
    neurons: dict[str, np.ndarray]  # node id -> (units, g, g) node output on the coarse grid
    weights: dict[str, np.ndarray]  # dense node id -> (out, in)
    biases: dict[str, np.ndarray]  # dense node id -> (out,)
    grad_norms: dict[str, float]  # node id -> L2 norm of its parameters' last gradients
    dead_fraction: dict[str, float]  # relu node id -> share of units that output 0 for every training point


def _is_relu(model: GraphModule, node: str) -> bool:
    info = model.info.nodes[node]
    fn = getattr(info.params, "activation", None) if info.op == "dense" else getattr(info.params, "fn", None)
    return info.op in ("dense", "activation") and fn in RELU_LIKE


class Prober:
    """Holds the fixed probe inputs (grid + coarse grid + training set) as one batch."""

    def __init__(self, model: GraphModule, head: Head, feature_names: tuple[str, ...], x_train: torch.Tensor,
                 grid: int, neuron_grid: int) -> None:
        self.model, self.head = model, head
        self.g, self.ng = grid, neuron_grid
        pts = np.concatenate([grid_points(grid), grid_points(neuron_grid)])
        probe_x = torch.from_numpy(features(pts, feature_names)).to(x_train.device)
        self.batch = torch.cat([probe_x, x_train])  # one forward pass serves every probe
        self.relu_nodes = [n for n in model.info.order if _is_relu(model, n)]
        self.dense_nodes = [n for n in model.info.order if model.info.nodes[n].op == "dense"]

    @torch.no_grad()
    def run(self, step: int) -> ProbeResult:
        model, info = self.model, self.model.info
        with model.evaluating():
            values = model.forward_all(self.batch)
        g2, n2 = self.g * self.g, self.ng * self.ng
        out = self.head.output(values[info.output_id][:g2])  # (G², C)
        output = _own(out.T.reshape(-1, self.g, self.g))
        neurons = {}
        for n in info.order:
            if len(info.nodes[n].shape) == 1 and n != info.output_id:
                v = values[n][g2:g2 + n2]  # (g², units)
                neurons[n] = _own(v.T.reshape(-1, self.ng, self.ng))
        dead = {n: float((values[n][g2 + n2:] <= 0).all(dim=0).float().mean()) for n in self.relu_nodes}
        weights, biases = {}, {}
        for n in self.dense_nodes:
            layer = model.layers[n]
            weights[n] = _own(layer.weight)
            if layer.bias is not None:
                biases[n] = _own(layer.bias)
        grads = {}
        for n in info.order:
            gs = [p.grad for p in model.layers[n].parameters() if p.grad is not None]
            if gs:
                grads[n] = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in gs])))
        return ProbeResult(step, (-DOMAIN, DOMAIN), output, neurons, weights, biases, grads, dead)


def _own(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().to("cpu", torch.float32).numpy()).copy()
