"""Probes for attention: the softmax weights of every attention layer for ONE example (one extra forward pass
of that example per round, never a pass over the data), sorted into the encoder's self-attention, the
decoder's (causal) self-attention and the decoder's cross-attention over the encoder; and the positional
encoding's table (the fixed sinusoids or the learned vectors as they are now).

A vision transformer's image is cut into patches by a ``patch_embedding`` block: its arrays also give the
patch grid, whether step 0 is the class token, and the raw picture, so a view can lay a head's attention from
the class token over the image."""
from __future__ import annotations

from typing import Any

import networkx as nx
import numpy as np
import torch

from ..datasets import family_of
from ..decoding import DECODER
from ..graph import GraphInfo
from .registry import Probe, ProbeContext, ProbeRequest, own, register

SELF_OPS = ("self_attention", "transformer_block")  # self-attention over one sequence
CROSS_OPS = ("cross_attention",)  # queries from one sequence, keys and values from another
ATTENTION_OPS = SELF_OPS + CROSS_OPS  # graph attention (gat) is another story, drawn on the graph
DATA_KINDS = ("sequences", "images")
SPLITS = ("test", "train", "long")


def attention_nodes(info: GraphInfo) -> dict[str, list[str]]:
    """The attention blocks in graph order, by role: ``encoder`` (self-attention that does not read the
    decoder's input), ``decoder`` (self-attention that does) and ``cross`` (cross-attention)."""
    decoders = [n for n in info.order if info.nodes[n].op == DECODER]
    behind: set[str] = set()
    for d in decoders:
        behind |= nx.descendants(info.graph, d)
    roles: dict[str, list[str]] = {"encoder": [], "decoder": [], "cross": []}
    for n in info.order:
        op = info.nodes[n].op
        if op in CROSS_OPS:
            roles["cross"].append(n)
        elif op in SELF_OPS:
            roles["decoder" if n in behind else "encoder"].append(n)
    return roles


def patch_node(info: GraphInfo) -> str | None:
    """The first patch_embedding block (a vision transformer's), or None."""
    return next((n for n in info.order if info.nodes[n].op == "patch_embedding"), None)


def _has_attention(info: GraphInfo, dataset_spec: Any) -> bool:
    return (family_of(dataset_spec).kind in DATA_KINDS
            and any(info.nodes[n].op in ATTENTION_OPS for n in info.order))


def stack_heads(maps: list[torch.Tensor], queries: int, keys: int) -> np.ndarray:
    """Layers' (1, heads, T, S) weights as one (layers, most heads, T, S) float32 array; a layer with fewer
    heads than the most is padded with NaN."""
    heads = max((m.shape[1] for m in maps), default=0)
    out = np.full((len(maps), heads, queries, keys), np.nan, dtype=np.float32)
    for k, m in enumerate(maps):
        w = own(m[0])
        out[k, : w.shape[0], : w.shape[1], : w.shape[2]] = w
    return out


def _row(ctx: ProbeContext, request: ProbeRequest) -> tuple[str, int, torch.Tensor]:
    split = request.split or "test"
    if split not in SPLITS:
        raise KeyError(f"split {split!r} is not one of {', '.join(SPLITS)}")
    x = ctx.inputs(split)  # KeyError naming the splits there are
    i = 0 if request.sample is None else request.sample
    if not 0 <= i < len(x):
        raise KeyError(f"sample {i} is outside the {split} set (0 … {len(x) - 1})")
    return split, i, x


def _picture(ctx: ProbeContext, split: str, i: int, x: torch.Tensor) -> np.ndarray:
    """The example's picture (H, W) in [0, 1] as the data looks: the raw test picture, or a training one with
    its standardisation undone; channels averaged."""
    meta = ctx.data.meta
    if split == "test" and "raw_test" in meta:
        raw = np.asarray(meta["raw_test"][i], dtype=np.float32)
    else:
        mean = np.asarray(meta.get("mean", 0.0), dtype=np.float32).reshape(-1, 1, 1)
        std = np.asarray(meta.get("std", 1.0), dtype=np.float32).reshape(-1, 1, 1)
        raw = own(x[i]) * std + mean
    return np.clip(raw.reshape(-1, *raw.shape[-2:]).mean(axis=0), 0.0, 1.0).astype(np.float32)


def attention(ctx: ProbeContext, request: ProbeRequest) -> dict[str, np.ndarray]:
    """For one example (``sample`` of ``split``, default test example 0), in eval mode, one forward pass:
    ``sample`` and ``split`` say which example it is (the request's, or the default when the request does not
    fit this run); ``weights`` (layers, heads, query, key) the encoder's self-attention layers in graph order (rows sum to 1;
    a layer with fewer heads is padded with NaN) and ``layers`` their ids; ``tokens`` (T,) the example's
    input ids (sequence data), ``target`` its target ((T,) tokens or a class); ``token_names`` (V,) where the
    data names its tokens. An encoder–decoder (run with its target so far behind ▶: teacher forcing) adds
    ``decoder_weights``/``decoder_layers`` (its causal self-attention), ``cross_weights`` (layers, heads,
    T_dec, T_enc)/``cross_layers`` and ``decoder_tokens`` (what the decoder reads). A vision transformer adds
    ``patch_grid`` (rows, columns of patches), ``class_token`` (1 when step 0 is the class token, else 0) and
    ``image`` (H, W) the picture in [0, 1]."""
    model, info = ctx.model, ctx.model.info
    split, i, x = _row(ctx, request)
    extras = ctx.feed(split, i, i + 1)
    maps = model.attention_maps(x[i:i + 1], extras)  # the one extra forward pass
    roles = attention_nodes(info)
    y = getattr(ctx.data, f"y_{split}")
    out: dict[str, np.ndarray] = {"target": np.asarray(y[i]).astype(np.int64).copy(),
                                  "sample": np.array(i, dtype=np.int64), "split": np.array(split)}
    names = ctx.data.meta.get("tokens")
    if names is not None:
        out["token_names"] = np.array([str(t) for t in names], dtype=str)
    if x.dim() == 2:  # token ids
        out["tokens"] = own(x[i])
    enc = [n for n in roles["encoder"] if n in maps]
    steps = lambda layers, axis, fallback: maps[layers[0]].shape[axis] if layers else fallback
    length = steps(enc, 2, x.shape[1] if x.dim() == 2 else 0)
    out["weights"] = stack_heads([maps[n] for n in enc], length, length)
    out["layers"] = np.array(enc, dtype=str)
    if extras is not None:
        dec = [n for n in roles["decoder"] if n in maps]
        cross = [n for n in roles["cross"] if n in maps]
        t_dec = extras[DECODER].shape[1]
        out["decoder_weights"] = stack_heads([maps[n] for n in dec], t_dec, t_dec)
        out["decoder_layers"] = np.array(dec, dtype=str)
        out["decoder_tokens"] = own(extras[DECODER][0])
    else:
        cross = [n for n in roles["cross"] if n in maps]
    if cross:
        out["cross_weights"] = stack_heads([maps[n] for n in cross], steps(cross, 2, 0), steps(cross, 3, 0))
        out["cross_layers"] = np.array(cross, dtype=str)
    elif extras is not None:
        out["cross_weights"] = np.zeros((0, 0, t_dec, x.shape[1]), dtype=np.float32)
        out["cross_layers"] = np.array([], dtype=str)
    patch = patch_node(info)
    if patch is not None and x.dim() == 4:
        p = info.nodes[patch].params
        h, w = x.shape[-2:]
        out["patch_grid"] = np.array([h // p.patch, w // p.patch], dtype=np.int64)
        out["class_token"] = np.array(int(p.class_token), dtype=np.int64)
        out["image"] = _picture(ctx, split, i, x)
    return out


register(Probe("attention", "the attention weights of every attention layer (per head) for one example "
                            "(--sample of --split): encoder self-attention, and a decoder's self- and "
                            "cross-attention", _has_attention, attention, takes=frozenset({"sample", "split"})))


# --- the positional encoding ---------------------------------------------------------------------

def positional_nodes(info: GraphInfo) -> list[str]:
    return [n for n in info.order if info.nodes[n].op == "positional"]


def _has_positional(info: GraphInfo, dataset_spec: Any) -> bool:
    return bool(positional_nodes(info))


def _longest(ctx: ProbeContext, node: str) -> int:
    """The most positions the node sees: its sequence's length, or the longer held-out set's."""
    t = ctx.model.info.nodes[node].shape[0]
    long = ctx.data.x_long
    if long is not None and long.ndim == 2 and t == ctx.data.x_test.shape[1]:
        t = max(t, long.shape[1])
    return t


def positional(ctx: ProbeContext, request: ProbeRequest) -> dict[str, np.ndarray]:
    """For every positional block in graph order: ``table_K`` (positions, dim) what it adds to step t (row t)
    over the longest sequence the data has (the held-out longer one, where there is one, up to ``max_len``):
    the fixed sinusoids, or the learned vectors as they are now; (0, dim) for kind none. ``nodes`` and
    ``kinds`` (K,) name them; ``table``, ``kind`` and ``node`` are the first one's."""
    info = ctx.model.info
    out: dict[str, np.ndarray] = {}
    ids = positional_nodes(info)
    kinds = []
    for k, n in enumerate(ids):
        p, layer = info.nodes[n].params, ctx.model.layers[n]
        dim = info.nodes[n].shape[-1]
        if p.kind == "none":
            table = np.zeros((0, dim), dtype=np.float32)
        else:
            table = own(layer.table[: min(_longest(ctx, n), p.max_len)])
        out[f"table_{k}"] = table
        kinds.append(p.kind)
    out["nodes"], out["kinds"] = np.array(ids, dtype=str), np.array(kinds, dtype=str)
    out["table"], out["kind"], out["node"] = out["table_0"], np.array(kinds[0]), np.array(ids[0])
    return out


register(Probe("positional", "every positional block's table (position × dimension): the fixed sinusoids or the "
                             "learned vectors as they are now", _has_positional, positional))
