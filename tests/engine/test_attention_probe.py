"""The attention and positional probes: one example's softmax weights per layer and head (checked against a
softmax recomputed by hand), sorted into encoder, decoder and cross-attention, a vision transformer's patch
grid and picture, and the positional table; headless through the CLI too."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from engine.check import parse_spec
from engine.ops import OPS
from engine.ops.sequence import sinusoids
from engine.probes import ProbeRequest, run_probe
from engine.train.trainer import Trainer
from tests.engine.test_cli import run
from tests.engine.test_sequence_core import chain, encoder, node, seq2seq, session


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def trained(model: dict, steps: int = 30, **dataset) -> Trainer:
    spec = session(model)
    spec["dataset"].update(dataset)
    tr = Trainer(parse_spec(spec), probes=False)
    for _ in tr.run(steps=steps):
        pass
    return tr


def probe(tr: Trainer, name: str = "attention", **request) -> dict[str, np.ndarray]:
    return run_probe(tr.prober.ctx, name, tr.step, ProbeRequest(**request)).arrays


def two_layer_encoder() -> dict:
    """Two blocks with different head counts (4 then 2), and a causal self-attention on top."""
    return chain(node("input", "input"), node("embedding", "embedding", vocab=10, dim=32),
                 node("positional", "positional", kind="learned", max_len=64),
                 node("block_1", "transformer_block", heads=4, ff=64),
                 node("block_2", "transformer_block", heads=2, ff=64),
                 node("masked", "self_attention", heads=1, causal=True),
                 node("dense", "dense", units=10), node("output", "output", activation="softmax"))


def transformer_seq2seq() -> dict:
    """A transformer encoder, and a decoder with causal self-attention and cross-attention over the encoder."""
    nodes = [node("input", "input"), node("embedding", "embedding", vocab=10, dim=32),
             node("positional", "positional", kind="sinusoidal", max_len=64),
             node("enc_block", "transformer_block", heads=2, ff=64),
             node("decoder_input", "decoder_input"), node("dec_embedding", "embedding", vocab=10, dim=32),
             node("dec_positional", "positional", kind="learned", max_len=64),
             node("dec_self", "self_attention", heads=2, causal=True),
             node("attend", "cross_attention", heads=4), node("dense", "dense", units=10),
             node("output", "output", activation="softmax")]
    edges = [["input", "embedding"], ["embedding", "positional"], ["positional", "enc_block"],
             ["decoder_input", "dec_embedding"], ["dec_embedding", "dec_positional"], ["dec_positional", "dec_self"],
             ["dec_self", "attend"], ["enc_block", "attend"], ["attend", "dense"], ["dense", "output"]]
    return {"nodes": nodes, "edges": edges}


def test_encoder_maps_are_softmax_rows_per_layer_and_head_padded_with_nan():
    tr = trained(two_layer_encoder())
    a = probe(tr, sample=5)
    assert a["weights"].dtype == np.float32 and a["weights"].shape == (3, 4, 8, 8)
    assert list(a["layers"]) == ["block_1", "block_2", "masked"]
    w = a["weights"]
    np.testing.assert_allclose(w[0].sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(w[1, :2].sum(-1), 1.0, atol=1e-5)
    assert np.isnan(w[1, 2:]).all() and np.isnan(w[2, 1:]).all()  # 2 and 1 heads, padded to 4
    assert (w[0] >= 0).all()
    causal = w[2, 0]
    assert np.all(causal[np.triu_indices(8, 1)] == 0.0) and causal[0, 0] == pytest.approx(1.0)
    assert (causal[np.tril_indices(8)] > 0).all()
    np.testing.assert_array_equal(a["tokens"], tr.data.x_test[5])
    np.testing.assert_array_equal(a["target"], tr.data.y_test[5])
    assert list(a["token_names"]) == list(tr.data.meta["tokens"]) and a["token_names"][0] == "·"
    assert not np.allclose(w[0, 0], 1 / 8)  # trained a little: not uniform


def test_weights_equal_softmax_of_scaled_query_key_products_recomputed_by_hand():
    tr = trained(encoder(), steps=40)
    a = probe(tr, sample=2)
    model = tr.model
    block = model.layers["block_1"]
    x = torch.from_numpy(tr.data.x_test[2:3])
    with torch.no_grad(), model.evaluating():
        h = block.norm1(model.forward_all(x)["positional"])  # a pre-norm block attends over its normed input
        att = block.attention
        d = h.shape[-1] // att.heads
        for head in (0, 3):
            cols = slice(head * d, (head + 1) * d)
            q, k = att.q(h)[0, :, cols], att.k(h)[0, :, cols]
            expected = torch.softmax(q @ k.T / math.sqrt(d), dim=-1).numpy()
            np.testing.assert_allclose(a["weights"][0, head], expected, rtol=1e-5, atol=1e-6)
    assert block.attention.keep_weights is False  # back on the fused path after the probe


def test_the_probe_runs_one_forward_pass_of_one_example():
    tr = trained(encoder(), steps=5)
    batches: list[int] = []
    handle = tr.model.layers["block_1"].register_forward_hook(lambda m, i, o: batches.append(i[0].shape[0]))
    try:
        probe(tr, sample=7)
        probe(tr, sample=1, split="long")
    finally:
        handle.remove()
    assert batches == [1, 1]


def test_bad_requests_name_the_sample_or_split():
    tr = trained(encoder(), steps=1)
    with pytest.raises(KeyError, match=r"sample 999 is outside the test set \(0 … 99\)"):
        probe(tr, sample=999)
    with pytest.raises(KeyError, match="split 'val'"):
        probe(tr, split="val")
    assert probe(tr, sample=99, split="long")["weights"].shape == (1, 4, 12, 12)  # 100 longer sequences


def test_an_encoder_decoder_gives_encoder_decoder_and_cross_maps():
    tr = trained(transformer_seq2seq())
    a = probe(tr, sample=4)
    assert list(a["layers"]) == ["enc_block"] and a["weights"].shape == (1, 2, 8, 8)
    assert list(a["decoder_layers"]) == ["dec_self"] and a["decoder_weights"].shape == (1, 2, 8, 8)
    assert list(a["cross_layers"]) == ["attend"] and a["cross_weights"].shape == (1, 4, 8, 8)
    for key in ("weights", "decoder_weights", "cross_weights"):
        np.testing.assert_allclose(a[key].sum(-1), 1.0, atol=1e-5)
    dec = a["decoder_weights"][0]
    assert np.all(dec[:, np.triu_indices(8, 1)[0], np.triu_indices(8, 1)[1]] == 0.0)  # causal
    bos = tr.data.meta["bos"]
    y = tr.data.y_test[4]
    np.testing.assert_array_equal(a["decoder_tokens"], np.concatenate([[bos], y[:-1]]))  # ▶ + target so far
    long = probe(tr, sample=0, split="long")
    assert long["cross_weights"].shape == (1, 4, 12, 12) and long["decoder_tokens"].shape == (12,)


def test_a_recurrent_encoder_decoder_has_cross_attention_only():
    tr = trained(seq2seq(), steps=5)
    a = probe(tr, sample=0)
    assert a["weights"].shape == (0, 0, 8, 8) and a["decoder_weights"].shape == (0, 0, 8, 8)
    assert a["cross_weights"].shape == (1, 1, 8, 8) and list(a["cross_layers"]) == ["attend"]


def vit() -> dict:
    return chain(node("input", "input"), node("patches", "patch_embedding", patch=7, dim=32, class_token=True),
                 node("positional", "positional", kind="learned", max_len=64),
                 node("block_1", "transformer_block", heads=4, ff=64),
                 node("block_2", "transformer_block", heads=2, ff=64),
                 node("cls", "readout", reduce="first"), node("dense", "dense", units=4),
                 node("output", "output", activation="softmax"))


@pytest.mark.skipif("patch_embedding" not in OPS, reason="the patch_embedding op (engine/ops/vision.py) is not there yet")
def test_a_vision_transformer_gives_its_patch_grid_class_token_and_picture():
    spec = parse_spec({"dataset": {"kind": "images", "name": "shapes", "samples": 400}, "model": vit(),
                       "loss": "cross_entropy", "optimizer": {"kind": "adam", "lr": 0.003},
                       "training": {"batch_size": 32}})
    tr = Trainer(spec, probes=False)
    for _ in tr.run(steps=10):
        pass
    a = probe(tr, sample=3)
    assert a["weights"].shape == (2, 4, 17, 17) and list(a["layers"]) == ["block_1", "block_2"]
    np.testing.assert_allclose(a["weights"][0].sum(-1), 1.0, atol=1e-5)
    assert a["patch_grid"].tolist() == [4, 4] and int(a["class_token"]) == 1
    np.testing.assert_allclose(a["image"], tr.data.meta["raw_test"][3, 0], atol=1e-6)
    assert a["image"].shape == (28, 28) and int(a["target"]) == tr.data.y_test[3]
    assert "tokens" not in a
    train = probe(tr, sample=0, split="train")  # no raw training pictures: the standardisation is undone
    assert train["image"].min() >= 0 and train["image"].max() <= 1 and train["image"].std() > 0.05
    pos = probe(tr, "positional")
    table = tr.model.layers["positional"].table.detach().numpy()[:17]
    np.testing.assert_array_equal(pos["table"], table)  # the learned table as it is now
    assert str(pos["kind"]) == "learned"


def test_the_positional_table_is_the_sinusoids_over_the_longest_sequences():
    tr = trained(transformer_seq2seq(), steps=3)
    a = probe(tr, "positional")
    assert list(a["nodes"]) == ["positional", "dec_positional"] and list(a["kinds"]) == ["sinusoidal", "learned"]
    assert a["table"].shape == (12, 32)  # the held-out longer sequences' 12 positions
    np.testing.assert_array_equal(a["table"], sinusoids(12, 32).numpy())
    assert str(a["kind"]) == "sinusoidal" and str(a["node"]) == "positional"
    np.testing.assert_array_equal(a["table_1"], tr.model.layers["dec_positional"].table.detach().numpy()[:12])
    none = trained(encoder(positional="none"), steps=1)
    b = probe(none, "positional")
    assert str(b["kind"]) == "none" and b["table"].shape == (0, 32)
    assert "positional" not in trained(seq2seq(), steps=1).applicable_probes


def test_the_cli_writes_one_examples_maps(tmp_path):
    spec = tmp_path / "reverse.json"
    spec.write_text(json.dumps(session(encoder())))
    out = tmp_path / "att.npz"
    run("probe", spec, "--probe", "attention", "--split", "test", "--sample", 3, "--out", out, check_rc=0)
    with np.load(out) as f:
        assert f["weights"].shape == (1, 4, 8, 8) and f["tokens"].shape == (8,)
        np.testing.assert_allclose(f["weights"].sum(-1), 1.0, atol=1e-5)
        data = Trainer(parse_spec(session(encoder())), probes=False).data
        np.testing.assert_array_equal(f["tokens"], data.x_test[3])
    bad = run("probe", spec, "--probe", "attention", "--sample", 5000, "--out", out)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "--sample" in bad.stderr
