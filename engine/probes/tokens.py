"""The tokens probe: an embedding block's learned table, one vector per token of the vocabulary, on its principal
plane and with each token's nearest others by cosine similarity (the "processing words" lesson on a vocabulary
small enough to read). No data pass: it reads the weights only."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..graph import GraphInfo
from .embedding import stable_pca
from .registry import Probe, ProbeContext, ProbeRequest, own, register

NEAREST = 5  # neighbours listed per token (fewer in a smaller vocabulary)
BLOCK = 1024  # rows of the cosine matrix made at once (a large vocabulary never builds V × V in one go)


def embedding_layers(info: GraphInfo) -> list[str]:
    """The embedding blocks, in graph order (the first is the probe's default)."""
    return [n for n in info.order if info.nodes[n].op == "embedding"]


def _has_embedding(info: GraphInfo, dataset_spec: Any) -> bool:
    return bool(embedding_layers(info))


def token_names(meta: Mapping[str, Any], n: int) -> np.ndarray:
    """The display names of token ids 0 … n−1: the data's ``tokens`` where it names them, else the ids as text."""
    named = [str(t) for t in meta.get("tokens", ())][:n]
    return np.array(named + [str(i) for i in range(len(named), n)], dtype=str)


def nearest(table: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``table`` (V, D): the indices (V, k) of the k other rows most similar by cosine, most
    similar first (ties: the lower index first), and those cosines (V, k). A zero row is similar to nothing (0)."""
    v = len(table)
    norms = np.linalg.norm(table, axis=1, keepdims=True)
    unit = np.divide(table, norms, out=np.zeros_like(table), where=norms > 0)
    index = np.zeros((v, k), dtype=np.int64)
    cosine = np.zeros((v, k), dtype=np.float32)
    for start in range(0, v, BLOCK):
        sims = unit[start:start + BLOCK] @ unit.T
        rows = np.arange(len(sims))
        sims[rows, start + rows] = -np.inf  # never its own neighbour
        order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        index[start:start + BLOCK] = order
        cosine[start:start + BLOCK] = np.take_along_axis(sims, order, axis=1)
    return index, cosine


def tokens(ctx: ProbeContext, request: ProbeRequest) -> dict[str, np.ndarray]:
    """An ``embedding`` block's table (``layer``, default the first): ``table`` (V, D) its weights now, ``pca``
    (V, 2) the tokens on the table's two principal axes (each keeping the sign it had the round before; NaN for a
    row that is not finite), ``pca_explained`` (2,), ``names`` (V,) the tokens' display names, ``nearest`` (V, k)
    each token's k most similar other tokens by cosine similarity and ``similarity`` (V, k) those cosines,
    ``node`` (1,) the block answered and ``layers`` the embedding blocks one may ask for."""
    info = ctx.model.info
    layers = embedding_layers(info)
    name = request.layer or (layers[0] if layers else None)
    if name is None or name not in layers:
        raise KeyError(f"layer {request.layer!r} is not an embedding block (these are: {', '.join(layers)})")
    table = own(ctx.model.layers[name].weight)
    v = len(table)
    finite = np.isfinite(table).all(axis=1)
    plane = np.full((v, 2), np.nan, dtype=np.float32)
    explained = np.zeros(2, dtype=np.float32)
    if finite.any():
        proj = stable_pca(ctx, f"tokens {name}", table[finite])
        plane[finite] = proj.points
        explained = proj.explained.astype(np.float32)
    index, cosine = nearest(np.where(finite[:, None], table, 0.0), min(NEAREST, v - 1))
    return {"table": table, "pca": plane, "pca_explained": explained, "names": token_names(ctx.data.meta, v),
            "nearest": index, "similarity": cosine, "node": np.array([name], dtype=str),
            "layers": np.array(layers, dtype=str)}


register(Probe("tokens", "an embedding block's token table on its principal plane, with each token's nearest "
               "tokens by cosine similarity (default: the first embedding)", _has_embedding, tokens,
               takes=frozenset({"layer"})))
