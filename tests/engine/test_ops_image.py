"""Convolution-family ops against torch.nn.functional, and their shape formulas on a grid of sizes."""
from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from engine.ops import OPS, BuildContext, ShapeError
from engine.ops.image import conv_size, transpose_size
from tests.conftest import build_op as build
from tests.conftest import n_params


@pytest.mark.parametrize("kernel,stride,padding,dilation,groups", [
    (3, 1, 0, 1, 1), (3, 2, 1, 1, 1), (5, 1, 2, 2, 1), (1, 1, 0, 1, 2), (3, 3, 2, 1, 4),
])
def test_conv2d_matches_torch(kernel, stride, padding, dilation, groups):
    torch.manual_seed(0)
    params = {"filters": 8, "kernel": kernel, "stride": stride, "padding": padding, "dilation": dilation,
              "groups": groups, "activation": "relu"}
    conv, p, spec = build("conv2d", params, [(4, 11, 9)])
    x = torch.randn(2, 4, 11, 9)
    ref = torch.relu(F.conv2d(x, conv.weight, conv.bias, stride, padding, dilation, groups))
    out = conv(x)
    torch.testing.assert_close(out, ref)
    assert spec.shape(p, [(4, 11, 9)]) == tuple(out.shape[1:])
    assert spec.count(p, [(4, 11, 9)]) == n_params(conv)


def test_conv_shape_formula_on_a_grid_of_sizes():
    spec = OPS["conv2d"]
    for i, k, s, p, d in itertools.product((5, 8, 13), (1, 2, 3, 5), (1, 2, 3), (0, 1, 2), (1, 2)):
        params = spec.params(filters=2, kernel=k, stride=s, padding=p, dilation=d)
        expected = (i + 2 * p - d * (k - 1) - 1) // s + 1
        assert conv_size(i, k, s, p, d) == expected
        if expected < 1:
            with pytest.raises(ShapeError, match="does not fit"):
                spec.shape(params, [(1, i, i)])
            continue
        # d = 1 is the o = ⌊(i + 2p − k)/s⌋ + 1; the torch module agrees.
        if d == 1:
            assert expected == (i + 2 * p - k) // s + 1
        conv = spec.build(params, [(1, i, i)], BuildContext())
        assert spec.shape(params, [(1, i, i)]) == tuple(conv(torch.zeros(1, 1, i, i)).shape[1:])


def test_conv_explains_its_arithmetic():
    spec = OPS["conv2d"]
    text = spec.explain(spec.params(kernel=3, stride=2, padding=1), [(1, 28, 20)])
    assert text == "H: ⌊(28 + 2·1 − 3)/2⌋ + 1 = 14\nW: ⌊(20 + 2·1 − 3)/2⌋ + 1 = 10"


def test_conv_transpose_matches_torch_and_its_formula():
    torch.manual_seed(0)
    for i, k, s, p, op in itertools.product((3, 7), (2, 3, 4), (1, 2, 3), (0, 1), (0, 1)):
        if op >= s:
            continue
        params = {"filters": 3, "kernel": k, "stride": s, "padding": p, "output_padding": op}
        conv, pp, spec = build("conv_transpose2d", params, [(2, i, i)])
        x = torch.randn(2, 2, i, i)
        ref = F.conv_transpose2d(x, conv.weight, conv.bias, s, p, op)
        out = conv(x)
        torch.testing.assert_close(out, ref)
        assert out.shape[2] == s * (i - 1) + k - 2 * p + op == transpose_size(i, k, s, p, op)
        assert spec.shape(pp, [(2, i, i)]) == tuple(out.shape[1:])
        assert spec.count(pp, [(2, i, i)]) == n_params(conv)
    assert OPS["conv_transpose2d"].explain(pp, [(2, 7, 7)]).startswith("H: 3·(7 − 1) + 4 − 2·1 + 1 = ")
    with pytest.raises(ValueError, match="output_padding must be smaller"):
        OPS["conv_transpose2d"].params(stride=1, output_padding=1)


@pytest.mark.parametrize("op,fn", [("max_pool", F.max_pool2d), ("avg_pool", F.avg_pool2d)])
def test_pools_match_torch(op, fn):
    x = torch.randn(3, 2, 9, 8)
    for k, s, p in ((2, None, 0), (3, 2, 1), (3, 1, 0)):
        pool, pp, spec = build(op, {"kernel": k, "stride": s, "padding": p}, [(2, 9, 8)])
        out = pool(x)
        torch.testing.assert_close(out, fn(x, k, s or k, p))
        assert spec.shape(pp, [(2, 9, 8)]) == tuple(out.shape[1:])


def test_global_avg_pool_and_upsample():
    x = torch.randn(2, 3, 4, 5)
    gap, p, spec = build("global_avg_pool", {}, [(3, 4, 5)])
    torch.testing.assert_close(gap(x), F.adaptive_avg_pool2d(x, 1).flatten(1))
    assert spec.shape(p, [(3, 4, 5)]) == (3,)
    for mode in ("nearest", "bilinear"):
        up, p, spec = build("upsample", {"scale": 3, "mode": mode}, [(3, 4, 5)])
        ref = F.interpolate(x, scale_factor=3, mode=mode, **({"align_corners": False} if mode == "bilinear" else {}))
        torch.testing.assert_close(up(x), ref)
        assert spec.shape(p, [(3, 4, 5)]) == (3, 12, 15)


def test_image_ops_refuse_flat_input_with_a_hint():
    with pytest.raises(ShapeError, match=r"expects images \(B, C, H, W\) but gets \(B, 784\): reshape"):
        OPS["conv2d"].shape(OPS["conv2d"].params(), [(784,)])
    with pytest.raises(ShapeError, match="groups, which must divide"):
        OPS["conv2d"].shape(OPS["conv2d"].params(groups=2), [(3, 8, 8)])


def test_max_pool_without_gradients_gives_the_same_maxima_bit_for_bit():
    """Evaluation pools in channels-last order (faster on CPU): the values must be exactly torch's, NaN too."""
    x = torch.randn(16, 8, 12, 10).relu()  # ReLU outputs: many tied zeros
    x[3, 2, 5, 5] = float("nan")
    for k, s, p in ((2, None, 0), (3, 2, 1), (2, 1, 0)):
        pool, _, _ = build("max_pool", {"kernel": k, "stride": s, "padding": p}, [(8, 12, 10)])
        with torch.no_grad():
            fast = pool(x)
        ref = F.max_pool2d(x, k, s or k, p)
        assert fast.is_contiguous() and torch.equal(fast.nan_to_num(-1.0), ref.nan_to_num(-1.0))
        assert torch.equal(fast.isnan(), ref.isnan())
        g = x.clone().requires_grad_()
        pool(g).sum().backward()  # with gradients: torch's own path
        assert g.grad is not None
