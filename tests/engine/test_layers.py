"""Every op against torch as the reference."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from engine.ops import OPS, BuildContext, ShapeError
from engine.ops.activations import ACTIVATIONS
from engine.ops.core import Dense, init_weights
from tests.conftest import build_op as build

REFERENCE = {
    "relu": torch.relu, "leaky_relu": lambda x: F.leaky_relu(x, 0.01), "sigmoid": torch.sigmoid,
    "tanh": torch.tanh, "silu": F.silu, "softplus": F.softplus, "gelu": F.gelu, "linear": lambda x: x,
    "prelu": lambda x: torch.where(x >= 0, x, 0.25 * x),
    "elu": lambda x: torch.where(x > 0, x, torch.exp(x) - 1),
    "selu": lambda x: 1.0507009873554805 * torch.where(x > 0, x, 1.6732632423543772 * (torch.exp(x) - 1)),
}
PIECEWISE = {"maxout"}  # not element-wise: tested on their own below


def test_every_activation_has_a_reference():
    assert set(ACTIVATIONS) == set(REFERENCE) | PIECEWISE


def test_dense_maxout_keeps_the_largest_of_k_pieces_per_unit():
    torch.manual_seed(2)
    layer, p, spec = build("dense", {"units": 5, "activation": "maxout", "pieces": 3}, [(4,)])
    x = torch.randn(7, 4)
    pieces = [[x @ layer.weight[u * 3 + j] + layer.bias[u * 3 + j] for j in range(3)] for u in range(5)]
    expected = torch.stack([torch.stack(ps, dim=1).max(dim=1).values for ps in pieces], dim=1)  # (7, 5)
    torch.testing.assert_close(layer(x), expected, rtol=0, atol=1e-6)
    assert layer.weight.shape == (15, 4)
    assert spec.shape(p, [(4,)]) == (5,)
    assert spec.count(p, [(4,)]) == sum(t.numel() for t in layer.parameters()) == 15 * 4 + 15


def test_maxout_activation_op_groups_features_and_checks_the_width():
    module, p, spec = build("activation", {"fn": "maxout", "pieces": 2}, [(6,)])
    x = torch.tensor([[1.0, -2.0, 0.5, 3.0, -1.0, -4.0]])
    torch.testing.assert_close(module(x), torch.tensor([[1.0, 3.0, -1.0]]))
    assert spec.shape(p, [(6,)]) == (3,)
    with pytest.raises(ShapeError, match="multiple of 2"):
        spec.shape(p, [(5,)])


def test_maxout_is_offered_only_where_a_layer_can_make_pieces():
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        OPS["conv2d"].params.model_validate({"activation": "maxout"})
    assert OPS["dense"].params.model_validate({"activation": "elu"}).activation == "elu"


@pytest.mark.parametrize("act", sorted(REFERENCE))
def test_dense_matches_linear_plus_activation(act):
    torch.manual_seed(1)
    layer, p, spec = build("dense", {"units": 5, "activation": act}, [(3,)])
    x = torch.randn(7, 3)
    expected = REFERENCE[act](F.linear(x, layer.weight, layer.bias))
    torch.testing.assert_close(layer(x), expected, rtol=0, atol=1e-6)
    assert spec.shape(p, [(3,)]) == (5,)
    assert spec.count(p, [(3,)]) == sum(t.numel() for t in layer.parameters())


@pytest.mark.parametrize("act", sorted(REFERENCE))
def test_activation_op_matches_torch(act):
    module, p, spec = build("activation", {"fn": act}, [(4,)])
    x = torch.linspace(-3, 3, 24).reshape(6, 4)
    torch.testing.assert_close(module(x), REFERENCE[act](x), rtol=0, atol=1e-6)
    assert spec.count(p, [(4,)]) == sum(t.numel() for t in module.parameters())


def test_dense_without_bias():
    layer, p, spec = build("dense", {"units": 2, "bias": False}, [(3,)])
    assert layer.bias is None and spec.count(p, [(3,)]) == 6


def test_default_init_is_torchs():
    torch.manual_seed(3)
    ours = Dense(6, OPS["dense"].params(units=4))
    torch.manual_seed(3)
    ref = nn.Linear(6, 4)
    torch.testing.assert_close(ours.weight, ref.weight, rtol=0, atol=0)
    torch.testing.assert_close(ours.bias, ref.bias, rtol=0, atol=0)


def test_init_schemes():
    torch.manual_seed(0)
    layer = nn.Linear(200, 100)
    init_weights(layer, "uniform")
    assert layer.weight.abs().max() <= 0.5 and layer.weight.abs().max() > 0.45
    assert torch.all(layer.bias == 0.1)
    init_weights(layer, "zeros")
    assert torch.all(layer.weight == 0) and torch.all(layer.bias == 0)
    init_weights(layer, "xavier")
    bound = (6 / (200 + 100)) ** 0.5
    assert layer.weight.abs().max() <= bound and layer.weight.std() > bound / 3
    init_weights(layer, "kaiming")
    assert layer.weight.abs().max() <= (6 / 200) ** 0.5


def test_dropout_is_identity_in_eval_and_scaled_bernoulli_in_training():
    g = torch.Generator().manual_seed(0)
    module, _, _ = build("dropout", {"p": 0.25}, [(1000,)], BuildContext(generator=g))
    x = torch.ones(50, 1000)
    module.eval()
    assert torch.equal(module(x), x)
    module.train()
    y = module(x)
    kept = y != 0
    assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / 0.75))
    assert abs(kept.float().mean().item() - 0.75) < 0.01
    # The mask comes from the given generator: the same state gives the same mask.
    g.manual_seed(5)
    a = module(x)
    g.manual_seed(5)
    assert torch.equal(module(x), a)
    # Gradients flow only through kept units, scaled like torch's dropout.
    x.requires_grad_(True)
    g.manual_seed(5)
    y = module(x)
    y.sum().backward()
    assert torch.equal(x.grad, (y != 0).float() * torch.tensor(1 / 0.75))


def test_batch_norm_matches_torch_in_train_and_eval():
    torch.manual_seed(0)
    module, p, spec = build("batch_norm", {"momentum": 0.2, "eps": 1e-3}, [(4,)])
    ref = nn.BatchNorm1d(4, eps=1e-3, momentum=0.2)
    x = torch.randn(16, 4) * 3 + 1
    torch.testing.assert_close(module(x), ref(x))
    torch.testing.assert_close(module.running_mean, ref.running_mean)
    module.eval()
    ref.eval()
    torch.testing.assert_close(module(x), ref(x))
    assert spec.count(p, [(4,)]) == sum(t.numel() for t in module.parameters())


def test_layer_norm_matches_torch():
    module, p, spec = build("layer_norm", {}, [(6,)])
    x = torch.randn(5, 6)
    torch.testing.assert_close(module(x), F.layer_norm(x, (6,), module.weight, module.bias))
    assert spec.count(p, [(6,)]) == 12
    module, p, spec = build("layer_norm", {"affine": False}, [(6,)])
    assert spec.count(p, [(6,)]) == 0 and not list(module.parameters())


def test_add_and_concat():
    add, p, spec = build("add", {}, [(3,), (3,), (3,)])
    a, b, c = torch.randn(3, 2, 3)
    torch.testing.assert_close(add(a, b, c), a + b + c)
    assert spec.shape(p, [(3,), (3,), (3,)]) == (3,)
    cat, p, spec = build("concat", {}, [(2,), (5,)])
    x, y = torch.randn(4, 2), torch.randn(4, 5)
    assert torch.equal(cat(x, y), torch.cat([x, y], 1))
    assert spec.shape(p, [(2,), (5,)]) == (7,)


def test_batch_norm_2d_matches_torch_and_refuses_sequences():
    module, p, spec = build("batch_norm", {}, [(3, 5, 5)])
    ref = nn.BatchNorm2d(3)
    x = torch.randn(4, 3, 5, 5)
    torch.testing.assert_close(module(x), ref(x))
    assert spec.shape(p, [(3, 5, 5)]) == (3, 5, 5) and spec.count(p, [(3, 5, 5)]) == 6
    with pytest.raises(ShapeError, match="use layer norm for sequences"):
        spec.shape(p, [(7, 4)])


def test_flatten_and_reshape():
    flat, p, spec = build("flatten", {}, [(2, 3, 4)])
    x = torch.randn(5, 2, 3, 4)
    assert torch.equal(flat(x), x.reshape(5, 24))
    assert spec.shape(p, [(2, 3, 4)]) == (24,)
    assert spec.explain(p, [(2, 3, 4)]) == "2 × 3 × 4 = 24 features"
    resh, p, spec = build("reshape", {"shape": [1, -1, 4]}, [(24,)])
    assert spec.shape(p, [(24,)]) == (1, 6, 4)
    assert torch.equal(resh(flat(x)), x.reshape(5, 1, 6, 4))
    with pytest.raises(ShapeError, match="not a multiple of 5"):
        spec.shape(spec.params(shape=(-1, 5)), [(24,)])
    with pytest.raises(ShapeError, match=r"into \(2, 3\)"):
        spec.shape(spec.params(shape=(2, 3)), [(24,)])


def test_every_registered_op_is_tested():
    # Each op has a test against torch here or in test_ops_{image,sequence,graph}.py (decoder_input:
    # test_sequence_core.py, patch_embedding: test_vit.py); a new op adds its name.
    assert set(OPS) == {
        "input", "output", "dense", "activation", "dropout", "batch_norm", "layer_norm", "add", "concat",
        "flatten", "reshape",
        "conv2d", "max_pool", "avg_pool", "global_avg_pool", "conv_transpose2d", "upsample",
        "embedding", "positional", "rnn", "lstm", "gru", "self_attention", "cross_attention", "transformer_block",
        "adjacency", "gcn", "gat", "readout", "reparam", "decoder_input", "patch_embedding",
    }


def test_concat_on_image_channels():
    cat, p, spec = build("concat", {"axis": 0}, [(2, 4, 4), (3, 4, 4)])
    x, y = torch.randn(5, 2, 4, 4), torch.randn(5, 3, 4, 4)
    assert torch.equal(cat(x, y), torch.cat([x, y], 1))
    assert spec.shape(p, [(2, 4, 4), (3, 4, 4)]) == (5, 4, 4)
    with pytest.raises(ShapeError, match="joins axis 0, so the others must match"):
        spec.shape(p, [(2, 4, 4), (3, 4, 5)])
