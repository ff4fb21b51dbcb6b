"""Graph-network and generative ops against plain torch formulas; graphs with several sources and a KL term."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from engine.check import diagnose
from engine.graph import GraphModule, analyse
from engine.ops import BuildContext, ShapeError
from engine.spec import ModelSpec
from engine.train.trainer import Trainer
from tests.conftest import build_op as build
from tests.conftest import n_params, spec_dict


def random_graph(b, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = (torch.rand(b, n, n, generator=g) < 0.3).float()
    return ((a + a.transpose(1, 2)) > 0).float() * (1 - torch.eye(n))  # symmetric, no self loops


def test_gcn_is_normalised_neighbour_averaging():
    torch.manual_seed(0)
    gcn, p, spec = build("gcn", {"units": 4, "activation": "linear"}, [(6, 3), (6, 6)])
    x, a = torch.randn(2, 6, 3), random_graph(2, 6)
    # Â = D^-½ (A + I) D^-½, computed node by node.
    expected = torch.zeros(2, 6, 4)
    xw = x @ gcn.linear.weight.T
    for b in range(2):
        a_hat = a[b] + torch.eye(6)
        deg = a_hat.sum(1)
        for i in range(6):
            for j in range(6):
                if a_hat[i, j]:
                    expected[b, i] += xw[b, j] / torch.sqrt(deg[i] * deg[j])
    torch.testing.assert_close(gcn(x, a), expected + gcn.linear.bias)
    assert spec.ports == ("features", "adjacency")
    assert spec.shape(p, [(6, 3), (6, 6)]) == (6, 4) and spec.count(p, [(6, 3), (6, 6)]) == n_params(gcn)
    with pytest.raises(ShapeError, match=r"adjacency \(B, 6, 6\)"):
        spec.shape(p, [(6, 3), (5, 5)])


@pytest.mark.parametrize("combine", ["concat", "mean"])
def test_gat_matches_the_papers_formula(combine):
    torch.manual_seed(0)
    gat, p, spec = build("gat", {"units": 3, "heads": 2, "combine": combine, "activation": "linear"},
                         [(5, 4), (5, 5)])
    with torch.no_grad():
        gat.bias.normal_()
    x, a = torch.randn(1, 5, 4), random_graph(1, 5, seed=2)
    h = (x[0] @ gat.linear.weight.T).view(5, 2, 3)
    heads = []
    for k in range(2):
        out = torch.zeros(5, 3)
        for i in range(5):
            nbrs = [j for j in range(5) if j == i or a[0, i, j]]
            e = torch.stack([F.leaky_relu(gat.att_dst[k] @ h[i, k] + gat.att_src[k] @ h[j, k], 0.2) for j in nbrs])
            alpha = torch.softmax(e, 0)
            out[i] = sum(alpha[m] * h[j, k] for m, j in enumerate(nbrs))
        heads.append(out)
    expected = torch.cat(heads, 1) if combine == "concat" else torch.stack(heads).mean(0)
    torch.testing.assert_close(gat(x, a)[0], expected + gat.bias, atol=1e-5, rtol=1e-4)
    assert spec.shape(p, [(5, 4), (5, 5)]) == ((5, 6) if combine == "concat" else (5, 3))
    assert spec.count(p, [(5, 4), (5, 5)]) == n_params(gat)
    gat.keep_weights = True
    gat(x, a)
    torch.testing.assert_close(gat.weights.sum(-1), torch.ones(1, 2, 5))


@pytest.mark.parametrize("reduce,fn", [("mean", lambda x: x.mean(1)), ("sum", lambda x: x.sum(1)),
                                        ("max", lambda x: x.max(1).values)])
def test_readouts(reduce, fn):
    r, p, spec = build("readout", {"reduce": reduce}, [(6, 3)])
    x = torch.randn(2, 6, 3)
    torch.testing.assert_close(r(x), fn(x))
    assert spec.shape(p, [(6, 3)]) == (3,)


def test_adjacency_source_feeds_graph_layers():
    m = ModelSpec.model_validate({
        "nodes": [{"id": "x", "op": "input", "params": {"shape": [6, 3]}},
                  {"id": "a", "op": "adjacency", "params": {"nodes": 6}},
                  {"id": "g", "op": "gcn", "params": {"units": 4}},
                  {"id": "r", "op": "readout"}, {"id": "d", "op": "dense", "params": {"units": 2}},
                  {"id": "output", "op": "output", "params": {"activation": "softmax"}}],
        "edges": [["x", "g"], ["a", "g"], ["g", "r"], ["r", "d"], ["d", "output"]]})
    info = analyse(m)
    assert info.nodes["g"].inputs == ("x", "a") and info.nodes["output"].shape == (2,)
    net = GraphModule(info, BuildContext())
    x, a = torch.randn(3, 6, 3), random_graph(3, 6)
    assert net(x, {"adjacency": a}).shape == (3, 2)
    with pytest.raises(ValueError, match="needs its adjacency"):
        net(x)


def test_reparam_samples_with_the_given_generator_and_reports_kl():
    g = torch.Generator().manual_seed(3)
    rep, p, spec = build("reparam", {}, [(4,), (4,)], BuildContext(generator=g))
    mu, logvar = torch.randn(8, 4), torch.randn(8, 4)
    z = rep(mu, logvar)
    eps = torch.empty(8, 4).normal_(generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(z, mu + torch.exp(0.5 * logvar) * eps)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    kl = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).sum(1).mean()
    torch.testing.assert_close(rep.aux, kl)  # unweighted: the trainer weighs it by regularization.beta
    torch.testing.assert_close(rep.aux_rows.mean(), kl)
    rep.eval()
    assert torch.equal(rep(mu, logvar), mu)
    assert spec.ports == ("mu", "logvar") and spec.shape(p, [(4,), (4,)]) == (4,)
    with pytest.raises(ShapeError, match="one shape"):
        spec.shape(p, [(4,), (3,)])


def vae_spec(beta):
    from engine.check import parse_spec

    nodes = [{"id": "input", "op": "input"}, {"id": "mu", "op": "dense", "params": {"units": 2}},
             {"id": "lv", "op": "dense", "params": {"units": 2}},
             {"id": "z", "op": "reparam", "params": {}},
             {"id": "dec", "op": "dense", "params": {"units": 1}}, {"id": "output", "op": "output"}]
    edges = [["input", "mu"], ["input", "lv"], ["mu", "z"], ["lv", "z"], ["z", "dec"], ["dec", "output"]]
    return parse_spec(spec_dict(model={"nodes": nodes, "edges": edges}, regularization={"beta": beta}))


def test_kl_joins_the_training_loss():
    plain, with_kl = Trainer(vae_spec(0.0), probes=False), Trainer(vae_spec(2.0), probes=False)
    # The first batch's KL under the initial weights (both runs start from the same weights and noise).
    probe = Trainer(vae_spec(1.0), probes=False)
    idx = torch.randperm(probe.n_train, generator=torch.Generator().manual_seed(0))[:10]
    probe.model(probe.x_train[idx])
    kl = probe.model.aux_loss().item()
    plain.train_step()
    with_kl.train_step()
    assert kl > 0
    assert with_kl.history["step_loss"][0] - plain.history["step_loss"][0] == pytest.approx(2.0 * kl, rel=1e-5)
    list(with_kl.run(steps=30))
    assert all(math.isfinite(v) for v in with_kl.history["step_loss"])


def test_diagnose_reports_every_shape_and_each_blocks_error():
    m = ModelSpec.model_validate({
        "nodes": [{"id": "input", "op": "input"}, {"id": "a", "op": "dense", "params": {"units": 3}},
                  {"id": "b", "op": "dense", "params": {"units": 4}}, {"id": "cat", "op": "add"},
                  {"id": "c", "op": "dense", "params": {"units": 0}},
                  {"id": "output", "op": "output"}],
        "edges": [["input", "a"], ["input", "b"], ["a", "cat"], ["b", "cat"], ["cat", "c"], ["c", "output"]]})
    d = diagnose(m, input_shape=(2,))
    assert d.shapes["a"] == (3,) and d.shapes["b"] == (4,) and "cat" not in d.shapes
    assert "needs equal shapes" in d.errors["cat"] and d.errors["c"].startswith("units:")
    assert not d.valid and d.problem
