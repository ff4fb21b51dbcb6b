"""The embedding probe (any block's activations with labels) and the PCA projection latent views draw with."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from engine import Trainer
from engine.presets import load_preset
from engine.probes import ProbeRequest, run_probe
from engine.probes.embedding import bottleneck
from engine.projection import pca
from engine.session import save_session
from engine.spec import SessionSpec


@pytest.mark.parametrize("width", [3, 16, 64, 200])
def test_pca_matches_scikit_learn_up_to_sign(width):
    rng = np.random.default_rng(width)
    x = rng.normal(size=(500, width)) @ rng.normal(size=(width, width)) + rng.normal(size=width)
    ours = pca(x)
    ref = PCA(n_components=2, svd_solver="full").fit(x)
    for i in range(2):
        a, b = ours.axes[:, i], ref.components_[i]
        sign = np.sign(a @ b)
        np.testing.assert_allclose(sign * a, b, atol=2e-3)
        np.testing.assert_allclose(sign * ours.points[:, i], ref.transform(x)[:, i], rtol=1e-3,
                                   atol=2e-3 * np.abs(ref.transform(x)[:, i]).max())
    np.testing.assert_allclose(ours.explained, ref.explained_variance_ratio_, rtol=1e-3)


def test_pca_keeps_each_axis_pointing_the_way_it_did():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 10)) * np.arange(10, 0, -1)
    first = pca(x)
    for seed in range(5):  # another sketch may find either sign; with the previous axes it keeps theirs
        again = pca(x, previous=first, seed=seed)
        assert (np.sum(again.axes * first.axes, axis=0) > 0).all()
        np.testing.assert_allclose(again.points, first.points, atol=1e-3)
    narrow = pca(rng.normal(size=(20, 1)))  # fewer features than axes: the rest are zero
    assert narrow.points.shape == (20, 2) and not narrow.axes[:, 1].any()
    with pytest.raises(ValueError, match="PCA takes points as"):
        pca(np.zeros((0, 3)))


def test_embedding_defaults_to_the_bottleneck_and_takes_any_block():
    tr = Trainer(load_preset("digits-cnn"), probes=False)
    info = tr.model.info
    # the narrowest block but the class scores (dense_1, which feeds the output): the penultimate layer, the
    # later of pool_2 and flatten (both 32×2×2)
    assert bottleneck(info) == "flatten"
    a = run_probe(tr.prober.ctx, "embedding", 0, ProbeRequest()).arrays
    n = len(tr.data.y_test)
    assert a["points"].shape == (n, 128) and a["layer"][0] == "flatten"
    np.testing.assert_array_equal(a["labels"], tr.data.y_test)
    with torch.no_grad(), tr.model.evaluating():
        direct = tr.model.forward_all(torch.from_numpy(tr.data.x_test[5:9]))["pool_2"].flatten(1).numpy()
    b = run_probe(tr.prober.ctx, "embedding", 0, ProbeRequest(layer="pool_2", samples=(5, 9))).arrays
    np.testing.assert_allclose(b["points"], direct, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(b["rows"], [5, 6, 7, 8])
    c = run_probe(tr.prober.ctx, "embedding", 0, ProbeRequest(split="train", samples=(0, 3))).arrays
    np.testing.assert_array_equal(c["labels"], tr.data.y_train[:3])
    for bad, match in (({"layer": "output"}, "not a block between input and output"),
                       ({"samples": (0, 10**6)}, "outside the test set"), ({"split": "val"}, "not offered")):
        with pytest.raises(KeyError, match=match):
            run_probe(tr.prober.ctx, "embedding", 0, ProbeRequest(**bad))


def test_a_vaes_embedding_is_its_means():
    """A classifier with a VAE's sampling block in the middle: the default embedding is that block, whose
    eval-mode output is μ (no noise), the same as the μ layer's output."""
    spec = load_preset("spiral3").model_dump(mode="json")
    nodes = [("input", "input", {}), ("hidden", "dense", {"units": 8, "activation": "tanh"}),
             ("mu", "dense", {"units": 2}), ("logvar", "dense", {"units": 2}), ("z", "reparam", {}),
             ("wide", "dense", {"units": 16, "activation": "tanh"}), ("scores", "dense", {"units": 3}),
             ("output", "output", {"activation": "softmax"})]
    edges = [["input", "hidden"], ["hidden", "mu"], ["hidden", "logvar"], ["mu", "z"], ["logvar", "z"],
             ["z", "wide"], ["wide", "scores"], ["scores", "output"]]
    spec["model"] = {"nodes": [{"id": i, "op": op, "params": p} for i, op, p in nodes], "edges": edges}
    tr = Trainer(SessionSpec.model_validate(spec), probes=False)
    for _ in tr.run(steps=20, snapshot_every=1e9):
        pass
    assert bottleneck(tr.model.info) == "z"
    a = run_probe(tr.prober.ctx, "embedding", 0, ProbeRequest()).arrays
    again = run_probe(tr.prober.ctx, "embedding", 1, ProbeRequest()).arrays
    mu = run_probe(tr.prober.ctx, "embedding", 2, ProbeRequest(layer="mu")).arrays
    np.testing.assert_array_equal(a["points"], again["points"])  # no sampling noise: the means
    np.testing.assert_array_equal(a["points"], mu["points"])


def test_the_cli_writes_the_embedding(tmp_path):
    tr = Trainer(load_preset("spiral"), probes=False)
    save_session(tmp_path / "s.dlp", tr.spec, tr.checkpoint())
    out = tmp_path / "e.npz"
    done = subprocess.run([sys.executable, "-m", "engine", "probe", str(tmp_path / "s.dlp"), "--probe", "embedding",
                           "--split", "test", "--out", str(out)], check=False, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    z = np.load(out)
    assert z["points"].shape[0] == z["labels"].shape[0] == len(tr.data.y_test) and z["points"].ndim == 2


def test_wide_layers_come_projected_with_axes_that_keep_their_signs():
    """The probe projects on the training thread (a view only draws); between rounds each axis keeps its sign."""
    tr = Trainer(load_preset("digits-vae-8d"), probes=False)
    ctx = tr.prober.ctx
    a = run_probe(ctx, "embedding", 0, ProbeRequest()).arrays
    fresh = pca(a["points"], 2)
    np.testing.assert_allclose(a["pca"], fresh.points, rtol=1e-4, atol=1e-5)
    for _ in tr.run(steps=40, snapshot_every=1e9):
        pass
    b = run_probe(ctx.fresh(), "embedding", tr.step, ProbeRequest()).arrays
    assert ((a["pca_axes"] * b["pca_axes"]).sum(axis=0) > 0).all()  # turned the way they pointed before
    assert b["pca"].shape == (len(tr.data.y_test), 2) and b["pca_explained"].sum() <= 1.0 + 1e-6
    narrow = run_probe(ctx, "embedding", tr.step, ProbeRequest(layer="mu", samples=(0, 5))).arrays
    assert "pca" in narrow  # 8 wide
    two = run_probe(Trainer(load_preset("digits-vae-2d"), probes=False).prober.ctx, "embedding", 0,
                    ProbeRequest()).arrays
    assert "pca" not in two  # a 2-D code is drawn as it is
