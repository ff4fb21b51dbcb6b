"""The embedding probe: any block's activations for a set of samples, with their labels, for latent and
embedding views (a VAE's means, an autoencoder's bottleneck, a classifier's penultimate layer)."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..graph import GraphInfo
from ..projection import Projection, pca
from .registry import Probe, ProbeContext, ProbeRequest, own, register

MAX_POINTS = 10_000  # samples embedded at most (the first ones of the split)


def hidden_layers(info: GraphInfo) -> list[str]:
    """The blocks between input and output, in graph order: any of them can be embedded."""
    return [n for n in info.order if info.nodes[n].op not in ("input", "output")]


def bottleneck(info: GraphInfo) -> str | None:
    """The default layer to embed: a VAE's sampling block (its means, in eval mode), else the narrowest hidden
    block, the last of equally narrow ones (an autoencoder's code; a classifier's penultimate layer: the block
    that feeds the output, its scores, is left out where there are others)."""
    hidden = hidden_layers(info)
    reparam = [n for n in hidden if info.nodes[n].op == "reparam"]
    if reparam:
        return reparam[0]
    inner = [n for n in hidden if n not in info.nodes[info.output_id].inputs] or hidden
    if not inner:
        return None
    rank = {n: i for i, n in enumerate(inner)}
    return min(inner, key=lambda n: (math.prod(info.nodes[n].shape), -rank[n]))


def stable_pca(ctx: ProbeContext, key: str, points: np.ndarray) -> Projection:
    """The two principal axes of ``points``, each turned the way it pointed at the last round under ``key`` (the
    Latent view's plane and the manifold's are one plane, and neither flips between rounds)."""
    previous = ctx.memory.get(key)
    if previous is not None and previous.axes.shape[0] != points.shape[1]:
        previous = None
    proj = ctx.memory[key] = pca(points, 2, previous=previous)
    return proj


def _any_hidden(info: GraphInfo, dataset_spec: Any) -> bool:
    return bool(hidden_layers(info))


def embedding(ctx: ProbeContext, request: ProbeRequest) -> dict[str, np.ndarray]:
    """In eval mode, for the ``split``'s samples (``samples`` START:STOP, default the first MAX_POINTS):
    ``points`` (N, D) the ``layer``'s output flattened (default: the bottleneck), ``labels`` (N,) their labels
    (class indices, regression targets, or a per-token task's first answer token), ``rows`` (N,) their indices
    in the split, ``layer`` (1,) the block answered and ``layers`` the blocks one may ask for. A layer wider than 2 also comes projected on its two
    principal axes, here on the training thread (a 3,136-wide layer's PCA takes ~0.1 s): ``pca`` (N, 2) (NaN for
    points that are not finite), ``pca_axes`` (D, 2), ``pca_mean`` (D,), ``pca_explained`` (2,); each axis keeps
    the sign it had the round before, so points do not flip sides as the network trains."""
    info = ctx.model.info
    layers = hidden_layers(info)
    name = request.layer or bottleneck(info)
    if name is None or name not in layers:
        raise KeyError(f"layer {request.layer!r} is not a block between input and output (these are: "
                       f"{', '.join(layers)})")
    if request.split not in ("test", "train"):
        raise KeyError(f"split {request.split!r} is not offered (test or train)")
    y = ctx.data.y_test if request.split == "test" else ctx.data.y_train
    start, stop = request.samples or (0, min(len(y), MAX_POINTS))
    if not 0 <= start < stop <= len(y) or stop - start > MAX_POINTS:
        raise KeyError(f"samples {start}:{stop} are outside the {request.split} set (0:{len(y)}, at most "
                       f"{MAX_POINTS:,} at once)")
    values = ctx.forward_rows(request.split, start, stop)
    rows = np.arange(start, stop)
    points = own(values[name].flatten(1))
    labels = np.asarray(y[start:stop])
    if labels.ndim == 2:  # a per-token task: each point is coloured by the first token of its answer
        labels = labels[:, 0]
    out = {"points": points, "labels": labels.copy(), "rows": rows,
           "layer": np.array([name], dtype=str), "layers": np.array(layers, dtype=str)}
    finite = np.isfinite(points).all(axis=1)
    if points.shape[1] > 2 and finite.any():
        proj = stable_pca(ctx, f"pca {name} {request.split}", points[finite])
        plane = np.full((len(points), 2), np.nan, dtype=np.float32)
        plane[finite] = proj.points
        out |= {"pca": plane, "pca_axes": proj.axes.astype(np.float32), "pca_mean": proj.mean.astype(np.float32),
                "pca_explained": proj.explained.astype(np.float32)}
    return out


register(Probe("embedding", "a block's activations for many samples with their labels (default: the bottleneck)",
               _any_hidden, embedding, takes=frozenset({"layer", "samples", "split"})))
