"""Probes over the input plane, for datasets that have one (the 2-D toys): the head's output on a grid (the
decision boundary or regression surface) and every hidden node's output on a coarser grid (the neurons)."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..datasets import family_of
from ..graph import GraphInfo
from .registry import Probe, ProbeContext, ProbeRequest, own, register


def grid_points(resolution: int, domain: float) -> np.ndarray:
    """(resolution², 2) raw points covering [-domain, domain]² row by row, x1 fastest; row 0 is x2 = −domain."""
    axis = np.linspace(-domain, domain, resolution, dtype=np.float32)
    x1, x2 = np.meshgrid(axis, axis)
    return np.stack([x1.ravel(), x2.ravel()], axis=1)


def _has_plane(info: GraphInfo, dataset_spec: Any) -> bool:
    return family_of(dataset_spec).plane is not None


def _grid(ctx: ProbeContext, resolution: int) -> tuple[torch.Tensor, float]:
    """The model's inputs on the grid, made once a run: making them cost a fifth of a tfp-circle round."""
    plane = family_of(ctx.dataset_spec).plane
    assert plane is not None

    def make() -> torch.Tensor:
        points = grid_points(resolution, plane.domain)
        return torch.from_numpy(plane.inputs(ctx.dataset_spec, points)).to(ctx.x_train.device)

    return ctx.constant(f"grid{resolution}", make), plane.domain


def boundary(ctx: ProbeContext, request: ProbeRequest) -> dict[str, np.ndarray]:
    """``output``: (C, G, G) head output on the grid (row 0 is x2 = lo); ``extent``: [lo, hi] of both axes."""
    g = ctx.settings.probe_grid
    x, domain = _grid(ctx, g)
    values = ctx.forward_all(f"grid{g}", x)
    out = ctx.head.output(values[ctx.model.info.output_id])  # (G², C)
    return {"output": own(out.T.reshape(-1, g, g)), "extent": np.array([-domain, domain], dtype=np.float32)}


def neurons(ctx: ProbeContext, request: ProbeRequest) -> dict[str, np.ndarray]:
    """Per feature-vector node (or only ``layer``): (units, g, g), its output over the coarse grid."""
    info = ctx.model.info
    g = ctx.settings.neuron_grid
    x, _ = _grid(ctx, g)
    values = ctx.forward_all(f"grid{g}", x)
    nodes = [n for n in info.order if len(info.nodes[n].shape) == 1 and n != info.output_id]
    if request.layer is not None:
        if request.layer not in nodes:
            raise KeyError(f"{request.layer} is not a feature-vector layer of this network "
                           f"(layers: {', '.join(nodes)})")
        nodes = [request.layer]
    return {n: own(values[n].T.reshape(-1, g, g)) for n in nodes}


register(Probe("boundary", "The network's output over the input plane: the decision boundary or surface.",
               _has_plane, boundary))
register(Probe("neurons", "Each hidden unit's output over the input plane (the network view's heatmaps).",
               _has_plane, neurons, takes=frozenset({"layer"})))
