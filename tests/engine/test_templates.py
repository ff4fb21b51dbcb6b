"""Every template is a valid graph that builds and trains one step on random data of the kind it expects."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from engine.graph import GraphModule, analyse
from engine.layers import BuildContext
from engine.spec import parse_spec
from engine.templates import TEMPLATES, VOCAB, Head, auto_layout
from engine.trainer import Trainer
from tests.conftest import spec_dict


def random_batch(info, batch=4):
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
    return x, extras


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_template_builds_and_trains_one_step(name):
    template = TEMPLATES[name]
    model = template.model(Head(units=2, activation="softmax"))
    info = analyse(model, (2,) if template.data == "session" else None)
    torch.manual_seed(0)
    net = GraphModule(info, BuildContext(generator=torch.Generator().manual_seed(1)))
    x, extras = random_batch(info)
    out_node = info.nodes[info.output_id]
    activation = out_node.params.activation
    z = net(x, extras or None)  # (B, *output shape)
    if activation == "softmax":
        loss = F.cross_entropy(z, torch.randint(0, z.shape[1], (z.shape[0],)))
    else:
        target = x.flatten(1) if z.dim() == 2 else x  # autoencoders reconstruct their input
        loss = F.mse_loss(torch.sigmoid(z), target.reshape(z.shape))
    aux = net.aux_loss()
    if aux is not None:
        loss = loss + aux
    before = [p.detach().clone() for p in net.parameters()]
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    loss.backward()
    opt.step()
    assert math.isfinite(loss.item())
    params = list(net.parameters())
    assert all(p.grad is not None for p in params), "every parameter is on the loss's path"
    moved = [not torch.equal(a, b) for a, b in zip(before, params, strict=True)]
    # A key bias adds the same score to every key, which softmax ignores: its gradient is zero up to rounding.
    has_grad = [bool(p.grad.abs().max() > 1e-6) for p in params]
    assert moved == has_grad and sum(moved) >= 0.9 * len(params)
    # Positions from the auto-layout: one column per generation, no two blocks on one spot.
    spots = [n.position for n in model.nodes]
    assert all(p is not None for p in spots) and len(set(spots)) == len(spots)


@pytest.mark.parametrize("name", ["mlp", "residual_mlp"])
def test_session_templates_fit_the_session_and_train(name):
    spec = parse_spec(spec_dict(model=TEMPLATES[name].model(Head(1, "tanh")).model_dump(mode="json")))
    trainer = Trainer(spec, probes=False)
    list(trainer.run(epochs=20))
    assert trainer.history["epoch_train_loss"][-1] < trainer.history["epoch_train_loss"][0]


def test_auto_layout_is_layered_by_generation():
    m = auto_layout({"nodes": [{"id": i} for i in ("a", "b", "c", "d")],
                     "edges": [["a", "b"], ["a", "c"], ["b", "d"], ["c", "d"]]})
    pos = {n["id"]: n["position"] for n in m["nodes"]}
    assert pos["a"][0] < pos["b"][0] == pos["c"][0] < pos["d"][0]
    assert pos["b"][1] != pos["c"][1] and pos["a"][1] == pos["d"][1] == 0
