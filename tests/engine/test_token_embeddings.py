"""The tokens probe: an embedding block's table, its principal plane and each token's nearest tokens by cosine
similarity, checked against the layer's weights, scikit-learn's PCA and a plain cosine matrix."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from engine.check import parse_spec
from engine.presets import load_preset
from engine.probes import ProbeRequest, applicable, run_probe
from engine.probes.tokens import nearest, token_names
from engine.projection import Projection
from engine.train.trainer import Trainer


def node(i: str, op: str, **params) -> dict:
    return {"id": i, "op": op, "params": params}


def reverse_spec(two_tables: bool = False) -> dict:
    """The reverse task on a one-block transformer encoder (with ``two_tables``, a second embedding of the same
    ids added to the first)."""
    nodes = [node("input", "input"), node("embedding", "embedding", vocab=10, dim=32),
             node("positional", "positional", kind="sinusoidal", max_len=64),
             node("block_1", "transformer_block", heads=4, ff=64), node("norm", "layer_norm"),
             node("dense", "dense", units=10), node("output", "output", activation="softmax")]
    edges = [["input", "embedding"], ["embedding", "positional"], ["positional", "block_1"], ["block_1", "norm"],
             ["norm", "dense"], ["dense", "output"]]
    if two_tables:
        nodes += [node("second", "embedding", vocab=12, dim=8), node("widen", "dense", units=32),
                  node("join", "add")]
        edges = [e for e in edges if e != ["embedding", "positional"]]
        edges += [["input", "second"], ["second", "widen"], ["embedding", "join"], ["widen", "join"],
                  ["join", "positional"]]
    return {"dataset": {"kind": "sequences", "name": "reverse", "samples": 1000, "long_samples": 100},
            "model": {"nodes": nodes, "edges": edges}, "loss": "cross_entropy",
            "optimizer": {"kind": "adam", "lr": 0.003}, "training": {"batch_size": 32}}


@pytest.fixture(scope="module")
def trained() -> Trainer:
    torch.set_num_threads(1)
    tr = Trainer(parse_spec(reverse_spec()), probes=False)
    for _ in tr.run(steps=150, snapshot_every=1e9):
        pass
    return tr


def cosines(table: np.ndarray) -> np.ndarray:
    unit = table / np.linalg.norm(table, axis=1, keepdims=True)
    return unit @ unit.T


def test_the_table_is_the_layers_weight_and_names_its_tokens(trained):
    a = run_probe(trained.prober.ctx, "tokens", trained.step).arrays
    weight = trained.model.layers["embedding"].weight.detach().numpy()
    np.testing.assert_array_equal(a["table"], weight)
    assert a["table"].shape == (10, 32) and a["node"].tolist() == ["embedding"]
    assert a["names"].tolist() == ["·", "a", "b", "c", "d", "e", "f", "g", "h", "▶"]
    assert a["names"].dtype.kind == "U" and a["layers"].tolist() == ["embedding"]
    assert token_names({"tokens": ("x", "y")}, 4).tolist() == ["x", "y", "2", "3"]  # ids where names run out
    assert token_names({}, 3).tolist() == ["0", "1", "2"]


def test_the_plane_is_scikit_learns_pca_up_to_sign(trained):
    a = run_probe(trained.prober.ctx, "tokens", trained.step).arrays
    ref = PCA(n_components=2, svd_solver="full").fit(a["table"].astype(np.float64))
    expected = ref.transform(a["table"].astype(np.float64))
    for i in range(2):
        sign = np.sign(a["pca"][:, i] @ expected[:, i])
        np.testing.assert_allclose(sign * a["pca"][:, i], expected[:, i], atol=1e-4 * np.abs(expected).max())
    np.testing.assert_allclose(a["pca_explained"], ref.explained_variance_ratio_, rtol=1e-3)
    assert a["pca"].shape == (10, 2) and a["pca_explained"].shape == (2,)


def test_the_plane_keeps_the_signs_of_the_last_round(trained):
    ctx = trained.prober.ctx
    first = run_probe(ctx, "tokens", trained.step).arrays
    kept: Projection = ctx.memory["tokens embedding"]
    ctx.memory["tokens embedding"] = Projection(-kept.points, -kept.axes, kept.mean, kept.explained)
    turned = run_probe(ctx, "tokens", trained.step).arrays  # the last round's axes pointed the other way
    np.testing.assert_allclose(turned["pca"], -first["pca"], atol=1e-5)
    again = run_probe(ctx, "tokens", trained.step).arrays
    np.testing.assert_array_equal(again["pca"], turned["pca"])


def test_nearest_tokens_are_the_cosine_matrixs_order_without_the_token_itself(trained):
    a = run_probe(trained.prober.ctx, "tokens", trained.step).arrays
    sims = cosines(a["table"].astype(np.float64))
    assert a["nearest"].shape == a["similarity"].shape == (10, 5)
    for t in range(10):
        others = [j for j in np.argsort(-sims[t], kind="stable") if j != t]
        assert a["nearest"][t].tolist() == others[:5]
        np.testing.assert_allclose(a["similarity"][t], sims[t, others[:5]], atol=1e-5)
        assert t not in a["nearest"][t] and (np.diff(a["similarity"][t]) <= 1e-7).all()
    small = nearest(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]], dtype=np.float32), 3)
    assert small[0].tolist() == [[2, 1, 3], [2, 0, 3], [0, 1, 3], [0, 1, 2]]  # a zero row: cosine 0 with all
    np.testing.assert_allclose(small[1][2], [np.sqrt(0.5), np.sqrt(0.5), 0.0], atol=1e-6)


def test_any_embedding_block_can_be_asked_and_others_are_refused():
    torch.manual_seed(0)
    tr = Trainer(parse_spec(reverse_spec(two_tables=True)), probes=False)
    ctx = tr.prober.ctx
    a = run_probe(ctx, "tokens", 0, ProbeRequest(layer="second")).arrays
    np.testing.assert_array_equal(a["table"], tr.model.layers["second"].weight.detach().numpy())
    assert a["node"].tolist() == ["second"] and a["layers"].tolist() == ["embedding", "second"]
    assert a["names"].tolist()[-3:] == ["▶", "10", "11"] and a["nearest"].shape == (12, 5)
    assert run_probe(ctx, "tokens", 0).arrays["node"].tolist() == ["embedding"]  # the first by default
    with pytest.raises(KeyError, match="'dense' is not an embedding block"):
        run_probe(ctx, "tokens", 0, ProbeRequest(layer="dense"))
    moons = Trainer(load_preset("moons"), probes=False)
    assert "tokens" not in applicable(moons.model.info, moons.spec.dataset)
    assert "tokens" in applicable(tr.model.info, tr.spec.dataset)


def test_the_cli_writes_the_token_table(tmp_path):
    path = tmp_path / "reverse.json"
    path.write_text(json.dumps(reverse_spec()), encoding="utf-8")
    out = tmp_path / "tokens.npz"
    done = subprocess.run([sys.executable, "-m", "engine", "probe", str(path), "--probe", "tokens", "--out",
                           str(out)], check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    z = np.load(out)
    fresh = Trainer(parse_spec(reverse_spec()), probes=False)  # the same seeded start as the CLI's
    np.testing.assert_array_equal(z["table"], fresh.model.layers["embedding"].weight.detach().numpy())
    assert z["names"].tolist()[1] == "a" and z["pca"].shape == (10, 2) and z["nearest"].shape == (10, 5)
    np.testing.assert_array_equal(z["nearest"], nearest(z["table"], 5)[0])
