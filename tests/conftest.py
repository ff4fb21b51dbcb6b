from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import torch

PRESETS = Path(__file__).resolve().parent.parent / "assets" / "presets"

torch.set_num_threads(1)


def preset_dict(name: str) -> dict[str, Any]:
    return json.loads((PRESETS / f"{name}.json").read_text())


def spec_dict(name: str = "tfp-circle", **sections: Any) -> dict[str, Any]:
    """A preset as a dict with top-level sections replaced or merged (dicts merge one level deep)."""
    data = copy.deepcopy(preset_dict(name))
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict) and "kind" not in value:
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return data


@pytest.fixture
def circle_dict() -> dict[str, Any]:
    return spec_dict("tfp-circle")


def build_op(op: str, params: dict[str, Any], shapes: list[tuple[int, ...]], ctx: Any = None) -> tuple[Any, Any, Any]:
    """Build one registered op: (torch module, validated params, the registry entry)."""
    from engine.ops import OPS, BuildContext

    spec = OPS[op]
    p = spec.params.model_validate(params)
    return spec.build(p, shapes, ctx or BuildContext()), p, spec


def n_params(module: torch.nn.Module) -> int:
    return sum(t.numel() for t in module.parameters())


def random_batch(info: Any, batch: int = 4) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Random data of the kind a graph takes: token ids for an embedding, symmetric adjacencies for graphs."""
    from engine.templates import VOCAB

    shape = info.nodes[info.input_id].shape
    g = torch.Generator().manual_seed(0)
    uses_tokens = any(n.op == "embedding" for n in info.nodes.values())
    x = (torch.randint(0, VOCAB, (batch, *shape), generator=g).float() if uses_tokens
         else torch.rand(batch, *shape, generator=g))
    extras = {}
    for n in info.nodes.values():
        if n.op == "adjacency":
            a = (torch.rand(batch, *n.shape, generator=g) < 0.3).float()
            extras["adjacency"] = ((a + a.transpose(1, 2)) > 0).float()
        elif n.op == "decoder_input":  # an encoder-decoder's answer so far
            extras["decoder_input"] = torch.randint(0, VOCAB, (batch, *n.shape), generator=g).float()
    return x, extras


def train_one_step(model: Any, input_shape: tuple[int, ...] | None = None) -> float:
    """Build a model graph, take one SGD step on random data of its kind and check that it learned from it:
    every parameter on the loss's path with a real gradient moved. Returns the loss."""
    import math

    import torch.nn.functional as F

    from engine.graph import GraphModule, analyse
    from engine.ops import BuildContext

    info = analyse(model, input_shape)
    torch.manual_seed(0)
    net = GraphModule(info, BuildContext(generator=torch.Generator().manual_seed(1)))
    x, extras = random_batch(info)
    z = net(x, extras or None)  # (B, *output shape)
    if info.nodes[info.output_id].params.activation == "softmax":  # a class per sample, or per token
        k = z.shape[-1]
        loss = F.cross_entropy(z.reshape(-1, k), torch.randint(0, k, (z.numel() // k,)))
    else:  # autoencoders reconstruct their input
        loss = F.mse_loss(torch.sigmoid(z), x.reshape(z.shape))
    aux = net.aux_loss()
    if aux is not None:
        loss = loss + aux
    params = list(net.parameters())
    before = [p.detach().clone() for p in params]
    loss.backward()
    torch.optim.SGD(params, lr=0.1).step()
    assert math.isfinite(loss.item())
    assert all(p.grad is not None for p in params), "every parameter is on the loss's path"
    # A key bias adds the same score to every key, which softmax ignores: its gradient is zero up to rounding,
    # and so is its step (0.1 × ~1e-8), which a plain equality would count as a move.
    moved = [bool((a - b).abs().max() > 5e-8) for a, b in zip(before, params, strict=True)]
    has_grad = [bool(p.grad.abs().max() > 1e-6) for p in params]
    assert moved == has_grad and sum(moved) >= 0.9 * len(params)
    return loss.item()
