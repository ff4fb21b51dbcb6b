"""Probes of what a CNN's layers see: the feature maps one layer makes of the selected test image, and the first
convolution's kernels (its learned filters)."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..datasets import family_of
from ..graph import GraphInfo
from .images import _test, conv_layers
from .registry import Probe, ProbeContext, ProbeRequest, own, register


def first_conv(info: GraphInfo) -> str | None:
    """The first conv2d node in topological order, if any."""
    return next((n for n in info.order if info.nodes[n].op == "conv2d"), None)


def default_layer(info: GraphInfo) -> str | None:
    """The feature-map probe's usual layer: the first convolution (else the first layer with an image output)."""
    return first_conv(info) or next(iter(conv_layers(info)), None)


def _has_maps(info: GraphInfo, dataset_spec: Any) -> bool:
    return family_of(dataset_spec).kind == "images" and bool(conv_layers(info))


def _has_conv(info: GraphInfo, dataset_spec: Any) -> bool:
    return family_of(dataset_spec).kind == "images" and first_conv(info) is not None


def feature_maps(ctx: ProbeContext, request: ProbeRequest) -> dict[str, np.ndarray]:
    """For one test image (``sample``, default 0) and one layer with an image output (``layer``, default the
    first convolution), in eval mode: ``maps`` (C, H, W) the layer's output, ``input`` (C, H, W) the image as
    shown (before standardisation), ``layers`` the layers one may ask for, ``layer`` (1,) the one answered,
    ``sample`` and ``label`` (1,)."""
    info = ctx.model.info
    layers = conv_layers(info)
    name = request.layer or default_layer(info)
    if name is None or name not in layers:
        raise KeyError(f"layer {request.layer!r} has no image output (these have one: {', '.join(layers)})")
    x, _ = _test(ctx)
    row = 0 if request.sample is None else request.sample
    if not 0 <= row < len(x):
        raise KeyError(f"sample {row} is outside the test set (0 … {len(x) - 1})")
    # one image is cheap; keyed by row so several probes of one round share the pass
    values = ctx.forward_all(f"x_test[{row}]", lambda: x[row:row + 1])
    raw = np.asarray(ctx.data.meta["raw_test"])[row]
    return {"maps": own(values[name][0]), "input": np.ascontiguousarray(raw, dtype=np.float32),
            "layers": np.array(layers, dtype=str), "layer": np.array([name], dtype=str),
            "sample": np.array([row], dtype=np.int64), "label": ctx.data.y_test[row:row + 1].astype(np.int64)}


@torch.no_grad()
def kernels(ctx: ProbeContext, request: ProbeRequest) -> dict[str, np.ndarray]:
    """The first convolution's weights: ``weights`` (filters, inputs per group, kh, kw) and ``node`` (1,)."""
    node = first_conv(ctx.model.info)
    if node is None:
        raise KeyError("the model has no conv2d layer")
    return {"weights": own(ctx.model.layers[node].weight), "node": np.array([node], dtype=str)}


register(Probe("feature_maps", "one layer's feature maps of a test image (default: the first convolution)",
               _has_maps, feature_maps, takes=frozenset({"sample", "layer"})))
register(Probe("kernels", "the first convolution's learned filters", _has_conv, kernels))
