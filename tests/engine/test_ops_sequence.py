"""Sequence ops against torch's reference modules (weights copied across)."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from engine.ops import OPS, BuildContext, ShapeError
from tests.conftest import build_op as build
from tests.conftest import n_params


def test_embedding_looks_up_rows():
    emb, p, spec = build("embedding", {"vocab": 10, "dim": 4}, [(6,)])
    ids = torch.tensor([[0, 3, 9, 3, 1, 2]], dtype=torch.float32)  # ids arrive as numbers
    assert torch.equal(emb(ids), nn.functional.embedding(ids.long(), emb.weight))
    assert spec.shape(p, [(6,)]) == (6, 4) and spec.count(p, [(6,)]) == n_params(emb) == 40
    with pytest.raises(ShapeError, match="token ids"):
        spec.shape(p, [(6, 2)])


def test_positional_encodings():
    x = torch.randn(2, 7, 6)
    pe, p, spec = build("positional", {"kind": "sinusoidal"}, [(7, 6)])
    table = torch.tensor([[math.sin(t / 10000 ** (i / 6)) if i % 2 == 0 else math.cos(t / 10000 ** ((i - 1) / 6))
                           for i in range(6)] for t in range(7)])
    torch.testing.assert_close(pe(x) - x, table.expand(2, 7, 6), atol=1e-6, rtol=1e-5)
    assert spec.count(p, [(7, 6)]) == n_params(pe) == 0
    pe, p, spec = build("positional", {"kind": "learned", "max_len": 9}, [(7, 6)])
    torch.testing.assert_close(pe(x), x + pe.table[:7])
    assert spec.count(p, [(7, 6)]) == n_params(pe) == 54
    pe, p, spec = build("positional", {"kind": "none"}, [(7, 6)])
    assert torch.equal(pe(x), x)
    with pytest.raises(ShapeError, match="raise max_len"):
        OPS["positional"].shape(OPS["positional"].params(max_len=5), [(7, 6)])


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("layers", [1, 2])
def test_recurrent_cells_match_torch(kind, bidirectional, layers):
    torch.manual_seed(0)
    params = {"hidden": 5, "layers": layers, "bidirectional": bidirectional}
    last, p_last, spec = build(kind, {**params, "output": "last"}, [(7, 3)])
    x = torch.randn(4, 7, 3)
    ref = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind](3, 5, layers, batch_first=True,
                                                                bidirectional=bidirectional)
    ref.load_state_dict(last.cell.state_dict())
    out, _ = ref(x)  # (B, T, D·H)
    # The last state is the forward direction's final step and, if bidirectional, the backward's first.
    expected = torch.cat([out[:, -1, :5], out[:, 0, 5:]], 1) if bidirectional else out[:, -1]
    torch.testing.assert_close(last(x), expected)
    d = 2 if bidirectional else 1
    assert spec.shape(p_last, [(7, 3)]) == (5 * d,)
    assert spec.count(p_last, [(7, 3)]) == n_params(last) == n_params(ref)
    every, p_all, _ = build(kind, {**params, "output": "all"}, [(7, 3)])
    every.load_state_dict(last.state_dict())
    torch.testing.assert_close(every(x), out)
    assert spec.shape(p_all, [(7, 3)]) == (7, 5 * d)


def copy_mha(ours, ref):
    """Copy torch MultiheadAttention weights into our Attention (separate q/k/v projections)."""
    with torch.no_grad():
        if ref._qkv_same_embed_dim:
            wq, wk, wv = ref.in_proj_weight.chunk(3)
        else:
            wq, wk, wv = ref.q_proj_weight, ref.k_proj_weight, ref.v_proj_weight
        bq, bk, bv = ref.in_proj_bias.chunk(3)
        for lin, w, b in ((ours.q, wq, bq), (ours.k, wk, bk), (ours.v, wv, bv)):
            lin.weight.copy_(w)
            lin.bias.copy_(b)
        ours.out.weight.copy_(ref.out_proj.weight)
        ours.out.bias.copy_(ref.out_proj.bias)


@pytest.mark.parametrize("causal", [False, True])
def test_self_attention_matches_torch_and_returns_its_weights(causal):
    torch.manual_seed(0)
    att, p, spec = build("self_attention", {"heads": 2, "causal": causal}, [(5, 8)])
    ref = nn.MultiheadAttention(8, 2, batch_first=True)
    copy_mha(att, ref)
    x = torch.randn(3, 5, 8)
    mask = torch.ones(5, 5, dtype=torch.bool).triu(1) if causal else None
    y_ref, w_ref = ref(x, x, x, attn_mask=mask, need_weights=True, average_attn_weights=False)
    torch.testing.assert_close(att(x), y_ref, atol=1e-5, rtol=1e-4)  # the fused kernel
    assert att.weights is None
    att.keep_weights = True
    torch.testing.assert_close(att(x), y_ref, atol=1e-5, rtol=1e-4)  # the explicit softmax path
    torch.testing.assert_close(att.weights, w_ref, atol=1e-6, rtol=1e-5)
    assert att.weights.shape == (3, 2, 5, 5)
    if causal:
        assert torch.all(att.weights.triu(1) == 0)
    assert spec.shape(p, [(5, 8)]) == (5, 8) and spec.count(p, [(5, 8)]) == n_params(att) == n_params(ref)
    with pytest.raises(ShapeError, match="into 3 heads"):
        spec.shape(spec.params(heads=3), [(5, 8)])


def test_cross_attention_matches_torch():
    torch.manual_seed(0)
    att, p, spec = build("cross_attention", {"heads": 4}, [(5, 8), (9, 6)])
    ref = nn.MultiheadAttention(8, 4, kdim=6, vdim=6, batch_first=True)
    copy_mha(att, ref)
    q, ctx = torch.randn(2, 5, 8), torch.randn(2, 9, 6)
    y_ref, w_ref = ref(q, ctx, ctx, need_weights=True, average_attn_weights=False)
    torch.testing.assert_close(att(q, ctx), y_ref, atol=1e-5, rtol=1e-4)
    att.keep_weights = True
    att(q, ctx)
    torch.testing.assert_close(att.weights, w_ref, atol=1e-6, rtol=1e-5)
    assert spec.ports == ("query", "context")
    assert spec.shape(p, [(5, 8), (9, 6)]) == (5, 8)
    assert spec.count(p, [(5, 8), (9, 6)]) == n_params(att) == n_params(ref)


@pytest.mark.parametrize("norm", ["pre", "post"])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_transformer_block_matches_torch(norm, activation):
    torch.manual_seed(0)
    block, p, spec = build("transformer_block", {"heads": 2, "ff": 16, "norm": norm, "activation": activation},
                           [(6, 8)])
    ref = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, activation=activation, batch_first=True,
                                     norm_first=norm == "pre")
    copy_mha(block.attention, ref.self_attn)
    with torch.no_grad():
        for a, b in ((block.linear1, ref.linear1), (block.linear2, ref.linear2), (block.norm1, ref.norm1),
                     (block.norm2, ref.norm2)):
            a.weight.copy_(b.weight)
            a.bias.copy_(b.bias)
    ref.eval()  # the reference's fast path needs eval; ours has no modal parts
    x = torch.randn(3, 6, 8)
    torch.testing.assert_close(block(x), ref(x), atol=1e-5, rtol=1e-4)
    assert spec.shape(p, [(6, 8)]) == (6, 8)
    assert spec.count(p, [(6, 8)]) == n_params(block) == n_params(ref)
    block.attention.keep_weights = True
    block(x)
    assert block.attention.weights.shape == (3, 2, 6, 6)


def test_sequence_ops_refuse_flat_input():
    for op in ("rnn", "self_attention", "transformer_block"):
        with pytest.raises(ShapeError, match=r"expects a sequence \(B, T, C\) but gets \(B, 8\)"):
            OPS[op].shape(OPS[op].params(), [(8,)])


def test_a_graph_reports_every_attention_map_and_returns_to_the_fast_path():
    from engine.graph import GraphModule, analyse
    from engine.head import Head
    from engine.templates import TEMPLATES

    info = analyse(TEMPLATES["transformer"].model(Head("softmax", 2)))
    net = GraphModule(info, BuildContext())
    ids = torch.randint(0, 32, (3, 16)).float()
    maps = net.attention_maps(ids)
    assert set(maps) == {"block_1", "block_2"}
    for w in maps.values():
        assert w.shape == (3, 4, 16, 16)
        torch.testing.assert_close(w.sum(-1), torch.ones(3, 4, 16))
    assert not net.layers["block_1"].attention.keep_weights and net.layers["block_1"].attention.weights is None
    gcn = analyse(TEMPLATES["gcn"].model(Head("softmax", 2)))
    assert GraphModule(gcn, BuildContext()).attention_maps(torch.rand(2, 8, 4),
                                                           {"adjacency": torch.zeros(2, 8, 8)}) == {}
