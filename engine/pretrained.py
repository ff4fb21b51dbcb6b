"""Trained weights shipped with the app (``assets/weights/NAME.safetensors``), for blocks that start from them.

A block whose spec node says ``pretrained: NAME`` starts each run (and each reset) from the block of the same
id in that trained network instead of from its random initialisation; the transfer-learning preset starts its
convolutions from ``shapes-cnn`` this way. The files are made by training a preset headless
(``python -m engine pretrain shapes-cnn``, in cli.py), and are read with safetensors: plain tensors, never
pickles.
Nothing is downloaded.
"""
from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable

import torch
from safetensors.torch import load as st_load
from torch import nn

from .errors import SpecError

WEIGHTS_DIR: Traversable = files("assets") / "weights"
SUFFIX = ".safetensors"
PREFIX = "layers."  # GraphModule keeps each block under layers.<node id>


def pretrained_names() -> tuple[str, ...]:
    """The names of the shipped trained networks, sorted."""
    if not WEIGHTS_DIR.is_dir():
        return ()
    return tuple(sorted(p.name.removesuffix(SUFFIX) for p in WEIGHTS_DIR.iterdir() if p.name.endswith(SUFFIX)))


@cache
def _load(name: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    data = (WEIGHTS_DIR / f"{name}{SUFFIX}").read_bytes()
    header_len = int.from_bytes(data[:8], "little")
    meta = json.loads(data[8:8 + header_len]).get("__metadata__", {})
    return st_load(data), meta


def describe(name: str) -> dict[str, str]:
    """What the file says of itself: the preset it was trained from, its epochs and test accuracy."""
    return dict(_load(name)[1])


def block_state(name: str, node_id: str) -> dict[str, torch.Tensor]:
    """Block ``node_id``'s tensors (weights and buffers) in trained network ``name``, keyed as in the block."""
    tensors, _ = _load(name)
    prefix = f"{PREFIX}{node_id}."
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def apply_pretrained(model: nn.Module, nodes: tuple) -> list[str]:
    """Copy each ``pretrained`` node's block from its trained network into ``model`` (a GraphModule); the ids
    of the blocks filled. A block the trained network lacks, or one whose tensors differ in shape, is the
    spec's error, naming the node's field."""
    filled = []
    layers = model.layers  # type: ignore[attr-defined]
    for i, node in enumerate(nodes):
        if node.pretrained is None:
            continue
        field = f"model.nodes[{i}].pretrained"
        source = block_state(node.pretrained, node.id)
        own = layers[node.id].state_dict()
        if not source:
            raise SpecError(field, f"{node.pretrained} has no trained block {node.id!r}: a block starts from the "
                                   "block of the same id")
        if not own:
            raise SpecError(field, f"{node.id} has no weights to start from {node.pretrained}")
        for key, tensor in own.items():
            got = source.get(key)
            if got is None or tuple(got.shape) != tuple(tensor.shape):
                theirs = "nothing" if got is None else "×".join(map(str, got.shape))
                raise SpecError(field, f"{node.id}.{key} is {'×'.join(map(str, tensor.shape))} here and {theirs} in "
                                       f"{node.pretrained}: give the block {node.pretrained}'s settings, or stop "
                                       "starting it from trained weights")
        with torch.no_grad():
            for key, tensor in own.items():
                tensor.copy_(source[key])
        filled.append(node.id)
    return filled
