"""Probes for autoencoders: their reconstructions of test pictures (optionally through added noise), pictures
decoded from chosen latent points, and a mosaic decoded from a regular grid over the latent plane."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..datasets.images import preprocess
from ..graph import GraphInfo, downstream
from .embedding import bottleneck, hidden_layers, stable_pca
from .registry import Probe, ProbeContext, ProbeRequest, own, register

RECONSTRUCTIONS = 16  # test pictures shown by default
MANIFOLD_SIDE = 12  # the mosaic's pictures per side by default
MAX_SIDE = 32
MAX_POINTS = 4096  # points decoded at once
NOISE_SEED = 20_240  # the noise added to the shown pictures stays the same from round to round


def _reconstructs(info: GraphInfo, dataset_spec: Any) -> bool:
    return getattr(dataset_spec, "task", "") == "reconstruction" and bottleneck(info) is not None


def decodable(info: GraphInfo, layer: str) -> bool:
    """Whether the output follows from ``layer`` alone (no skip connection passes it), as `forward_from` needs."""
    return info.output_id in downstream(info, layer)


def _decodes(info: GraphInfo, dataset_spec: Any) -> bool:
    """An autoencoder whose bottleneck can be decoded on its own."""
    return _reconstructs(info, dataset_spec) and decodable(info, bottleneck(info))


def _pictures(ctx: ProbeContext, z: torch.Tensor) -> np.ndarray:
    """The head's output for pre-activations ``z`` as pictures (N, C, H, W) in the input's shape."""
    return own(ctx.head.output(z).reshape(len(z), *ctx.head.shape))


def _test_clean(ctx: ProbeContext) -> np.ndarray:
    """The test pictures in [0, 1], (M, C, H, W): the reconstruction targets."""
    return ctx.data.target_test.reshape(len(ctx.data.target_test), *ctx.head.shape)


def reconstruction(ctx: ProbeContext, request: ProbeRequest) -> dict[str, np.ndarray]:
    """For test pictures ``samples`` START:STOP (default the first 16), in eval mode: ``inputs`` the clean
    pictures, ``noisy`` what goes in (the clean ones plus Gaussian noise of standard deviation ``eps``, a share
    of full brightness; the same noise every round), ``outputs`` the network's pictures, all (N, C, H, W) in
    [0, 1]; ``error`` and ``noisy_error`` (N,) each output's and noisy input's mean squared distance to the clean
    picture; ``labels`` and ``rows``."""
    clean_all = _test_clean(ctx)
    start, stop = request.samples or (0, min(RECONSTRUCTIONS, len(clean_all)))
    if not 0 <= start < stop <= len(clean_all) or stop - start > MAX_POINTS:
        raise KeyError(f"samples {start}:{stop} are outside the test set (0:{len(clean_all)}, at most "
                       f"{MAX_POINTS:,} at once)")
    eps = request.eps or 0.0
    if not 0.0 <= eps <= 1.0:
        raise KeyError(f"eps {eps} is not a noise level from 0 to 1 (a share of full brightness)")
    clean = clean_all[start:stop]
    noise = np.random.default_rng(NOISE_SEED + start).standard_normal(clean.shape).astype(np.float32)
    noisy = (clean + eps * noise).astype(np.float32) if eps else clean
    meta = ctx.data.meta
    x = torch.from_numpy(preprocess(noisy, meta["mean"], meta["std"])).to(ctx.x_train.device)
    with torch.no_grad(), ctx.model.evaluating():
        outputs = _pictures(ctx, ctx.model(x))
    shown = np.clip(noisy, 0.0, 1.0)
    return {"inputs": np.ascontiguousarray(clean).copy(), "noisy": np.ascontiguousarray(shown),
            "outputs": outputs, "error": ((outputs - clean) ** 2).reshape(len(clean), -1).mean(1),
            "noisy_error": ((noisy - clean) ** 2).reshape(len(clean), -1).mean(1),
            "labels": np.asarray(ctx.data.y_test[start:stop]).copy(), "rows": np.arange(start, stop)}


def _code_layer(ctx: ProbeContext, request: ProbeRequest) -> tuple[str, int]:
    """The layer decoded from (default the bottleneck) and its width."""
    info = ctx.model.info
    name = request.layer or bottleneck(info)
    if name not in hidden_layers(info):
        raise KeyError(f"layer {request.layer!r} is not a block between input and output")
    return name, math.prod(info.nodes[name].shape)


def _decode(ctx: ProbeContext, layer: str, z: torch.Tensor) -> np.ndarray:
    shape = ctx.model.info.nodes[layer].shape
    with torch.no_grad(), ctx.model.evaluating():
        try:
            out = ctx.model.forward_from(layer, z.reshape(len(z), *shape))
        except ValueError as exc:
            raise KeyError(f"layer {layer}: {exc}") from None
    return _pictures(ctx, out)


def decode(ctx: ProbeContext, request: ProbeRequest) -> dict[str, np.ndarray]:
    """The pictures the decoder makes from latent ``points`` (D values each, row by row; D the ``layer``'s width,
    default the bottleneck's): ``images`` (N, C, H, W) in [0, 1] and ``points`` (N, D). Without points, the
    origin."""
    layer, width = _code_layer(ctx, request)
    flat = request.points if request.points is not None else (0.0,) * width
    if not flat or len(flat) % width or len(flat) // width > MAX_POINTS:
        raise KeyError(f"give {width} values per point for {layer} (at most {MAX_POINTS:,} points), "
                       f"not {len(flat)} values")
    if not all(math.isfinite(v) for v in flat):
        raise KeyError("points must be finite numbers")
    z = torch.tensor(flat, dtype=torch.float32, device=ctx.x_train.device).reshape(-1, width)
    return {"images": _decode(ctx, layer, z), "points": own(z), "layer": np.array([layer], dtype=str)}


def manifold(ctx: ProbeContext, request: ProbeRequest) -> dict[str, np.ndarray]:
    """A ``size``×``size`` grid over the latent plane (default 12), each point decoded: ``mosaic`` (size·H,
    size·W) in [0, 1] (first channel), ``grid`` (size, size, D) the latent points, top row first.

    The plane is the code itself when it is 2-D, else the plane of the test codes' two principal axes through
    their mean (``axes`` (2, D), ``origin`` (D,)). A VAE's grid runs through the Gaussian's quantiles (5 % to
    95 %) of its prior N(0, I), as in Kingma and Welling's figures; a plain autoencoder's spans its test codes
    (their 2nd to 98th percentile along each axis), its code having no prior to sample."""
    layer, width = _code_layer(ctx, request)
    n = request.size or MANIFOLD_SIDE
    if not 2 <= n <= MAX_SIDE:
        raise KeyError(f"size {n} is not a grid side from 2 to {MAX_SIDE}")
    variational = ctx.model.info.nodes[layer].op == "reparam"
    codes = own(ctx.forward_rows("test")[layer].flatten(1))  # the test codes (a VAE's means)
    codes = codes[np.isfinite(codes).all(axis=1)]  # a diverged network's codes can be NaN
    if not len(codes):
        raise ValueError(f"the codes of {layer} are not finite (the network has diverged)")
    if width == 2:
        origin, axes = np.zeros(2, np.float32), np.eye(2, dtype=np.float32)
    else:
        proj = stable_pca(ctx, f"pca {layer} test", codes)  # the Latent view's plane, signs kept
        origin = np.zeros(width, np.float32) if variational else proj.mean.astype(np.float32)
        axes = np.ascontiguousarray(proj.axes.T, dtype=np.float32)
    if variational:
        ticks = [torch.special.ndtri(torch.linspace(0.05, 0.95, n)).numpy()] * 2  # the prior's quantiles
    else:
        coords = (codes - origin) @ axes.T
        lo, hi = np.percentile(coords, 2, axis=0), np.percentile(coords, 98, axis=0)
        ticks = [np.linspace(lo[i], hi[i], n) for i in range(2)]
    a, b = np.meshgrid(ticks[0], ticks[1][::-1])  # top row: the plane's largest second coordinate
    plane = np.stack([a, b], axis=-1).astype(np.float32)  # (n, n, 2)
    grid = origin + plane.reshape(-1, 2) @ axes  # (n², D)
    images = _decode(ctx, layer, torch.from_numpy(grid.astype(np.float32)).to(ctx.x_train.device))
    h, w = images.shape[-2:]
    mosaic = images[:, 0].reshape(n, n, h, w).transpose(0, 2, 1, 3).reshape(n * h, n * w)
    return {"mosaic": np.ascontiguousarray(mosaic), "grid": grid.reshape(n, n, width).astype(np.float32),
            "plane": plane, "axes": axes, "origin": origin, "layer": np.array([layer], dtype=str)}


register(Probe("reconstruction", "an autoencoder's outputs for test pictures, optionally through added noise "
                                 "(--eps, a share of full brightness)", _reconstructs, reconstruction,
               takes=frozenset({"samples", "eps"})))
register(Probe("decode", "the pictures an autoencoder's decoder makes from given latent points (--points)",
               _decodes, decode, takes=frozenset({"layer", "points"})))
register(Probe("manifold", "a regular grid over the latent plane decoded into one mosaic (--size, per side)",
               _decodes, manifold, takes=frozenset({"layer", "size"})))
