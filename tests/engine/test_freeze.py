"""Frozen blocks and per-block learning-rate multipliers (fine-tuning), headless."""
from __future__ import annotations

import torch

from engine import Trainer
from engine.presets import load_preset
from engine.session import load_session, save_session


def with_nodes(spec, **changes):
    """The spec with node fields changed: changes maps node id → {field: value}."""
    nodes = tuple(n.model_copy(update=changes.get(n.id, {})) for n in spec.model.nodes)
    return spec.model_copy(update={"model": spec.model.model_copy(update={"nodes": nodes})})


def test_frozen_blocks_keep_their_weights_bit_for_bit_while_the_rest_learn(tmp_path):
    spec = with_nodes(load_preset("digits-cnn"), conv_1={"frozen": True}, conv_2={"frozen": True})
    tr = Trainer(spec, probes=False)
    before = {k: v.clone() for k, v in tr.model.state_dict().items()}
    for _ in tr.run(epochs=2):
        pass
    after = tr.model.state_dict()
    for k, v in before.items():
        same = torch.equal(v, after[k])
        assert same == k.startswith(("layers.conv_1.", "layers.conv_2.")), k
    assert tr.evaluate()["test_accuracy"] > 0.5  # the head alone still learns on fixed random features
    trained = sum(p.numel() for g in tr.optimizer.param_groups for p in g["params"])
    assert trained == tr.model.layers["dense_1"].weight.numel() + tr.model.layers["dense_1"].bias.numel()
    # a saved run reopens and goes on training with the same blocks frozen
    path = tmp_path / "frozen.dlp"
    save_session(path, tr.spec, tr.checkpoint())
    s = load_session(path)
    again = Trainer(s.spec, probes=False, checkpoint=s.checkpoint)
    for _ in again.run(steps=5):
        pass
    assert torch.equal(again.model.layers["conv_1"].weight, before["layers.conv_1.weight"])


def test_a_learning_rate_multiplier_scales_that_blocks_steps():
    spec = with_nodes(load_preset("digits-mlp"), dense_1={"lr_mult": 0.0}, dense_2={"lr_mult": 2.0})
    tr = Trainer(spec, probes=False)
    w0 = tr.model.layers["dense_1"].weight.detach().clone()
    for _ in tr.run(steps=20):
        pass
    assert torch.equal(tr.model.layers["dense_1"].weight, w0)  # ×0: it does not move
    lrs = sorted(g["lr"] for g in tr.optimizer.param_groups)
    assert lrs == [0.0, 2 * spec.optimizer.lr]
    plain = Trainer(load_preset("digits-mlp"), probes=False)
    assert len(plain.optimizer.param_groups) == 1  # one group when every block learns at the same rate
