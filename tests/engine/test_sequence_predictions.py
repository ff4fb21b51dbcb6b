"""The ``predictions`` probe on sequence sets: the examples' inputs, targets and the network's answer with each
token's confidence, decoded (greedy, beam, sampled) for an encoder–decoder, one class per example for a classifier
of sequences; checked against the model itself, headless and through the CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engine.check import parse_spec
from engine.cli import main
from engine.decoding import decode, feed
from engine.probes import PROBES, ProbeRequest, run_probe
from engine.session import save_session
from engine.train.trainer import Trainer
from tests.engine.test_cli import assert_one_line_error, run, run_inprocess
from tests.engine.test_sequence_core import chain, encoder, node, seq2seq, session


def probe(tr: Trainer, **request) -> dict[str, np.ndarray]:
    return run_probe(tr.prober.ctx.fresh(), "predictions", tr.step, ProbeRequest(**request)).arrays


@pytest.fixture(scope="module")
def reverse():
    torch.manual_seed(0)
    tr = Trainer(parse_spec(session(encoder())), probes=False)
    for _ in tr.run(steps=400):
        pass
    return tr


@pytest.fixture(scope="module")
def written():
    torch.manual_seed(0)
    tr = Trainer(parse_spec(session(seq2seq())), probes=False)
    for _ in tr.run(steps=300):
        pass
    return tr


def test_an_encoder_answers_each_positions_likeliest_token_with_its_probability(reverse):
    tr = reverse
    a = probe(tr)
    assert "predictions" in tr.applicable_probes
    n = 32  # the test set's first, by default
    np.testing.assert_array_equal(a["rows"], np.arange(n))
    np.testing.assert_array_equal(a["inputs"], tr.data.x_test[:n].astype(np.int64))
    np.testing.assert_array_equal(a["targets"], tr.data.y_test[:n])
    with torch.no_grad(), tr.model.evaluating():
        p = torch.softmax(tr.model(torch.from_numpy(tr.data.x_test[:n])), dim=-1)
    best, token = p.max(-1)
    np.testing.assert_array_equal(a["outputs"], token.numpy())
    np.testing.assert_allclose(a["confidence"], best.numpy(), rtol=1e-5)
    np.testing.assert_allclose(a["logprob"], np.log(best.numpy()).sum(1), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(a["correct"], a["outputs"] == a["targets"])
    assert a["outputs"].shape == a["confidence"].shape == (n, 8) and a["logprob"].shape == (n,)
    assert float(a["token_accuracy"]) == pytest.approx(a["correct"].mean()) and a["token_accuracy"] > 0.9
    assert float(a["sequence_accuracy"]) == pytest.approx(a["correct"].all(1).mean())
    assert a["sequence_accuracy"] <= a["token_accuracy"]
    assert list(a["token_names"]) == list(tr.data.meta["tokens"]) and a["token_names"].dtype.kind == "U"
    assert "class_names" not in a


def test_the_longer_held_out_sequences_are_answered_at_their_own_length(reverse):
    tr = reverse
    a = probe(tr, split="long", samples=(10, 20))
    np.testing.assert_array_equal(a["rows"], np.arange(10, 20))
    np.testing.assert_array_equal(a["inputs"], tr.data.x_long[10:20].astype(np.int64))
    np.testing.assert_array_equal(a["targets"], tr.data.y_long[10:20])
    assert a["outputs"].shape == (10, 12)
    assert 0 <= a["sequence_accuracy"] <= a["token_accuracy"] <= 1
    train = probe(tr, split="train", samples=(0, 5))
    np.testing.assert_array_equal(train["targets"], tr.data.y_train[:5])


def test_an_encoder_decoder_writes_its_answer_greedy_beam_or_sampled(written):
    tr = written
    x = torch.from_numpy(tr.data.x_test[:16])
    greedy = probe(tr, samples=(0, 16))
    beam = probe(tr, samples=(0, 16), method="beam", width=3)
    with torch.no_grad(), tr.model.evaluating():
        g, b = decode(tr.model, x, tr.bos), decode(tr.model, x, tr.bos, "beam", width=3)
        p = torch.softmax(tr.model(x, feed(g.tokens, tr.bos)), dim=-1)  # each step given its own answer before it
    np.testing.assert_array_equal(greedy["outputs"], g.tokens.numpy())
    np.testing.assert_array_equal(beam["outputs"], b.tokens.numpy())
    np.testing.assert_allclose(beam["logprob"], b.logprob.numpy(), rtol=1e-5)
    np.testing.assert_allclose(greedy["confidence"], p.max(-1).values.numpy(), rtol=1e-5)  # greedy: the likeliest
    assert beam["logprob"].sum() >= greedy["logprob"].sum() - 1e-4
    hot = {"samples": (0, 16), "method": "sample", "temperature": 3.0}
    first, again = probe(tr, **hot), probe(tr, **hot)
    np.testing.assert_array_equal(first["outputs"], again["outputs"])  # seeded: the same answer every time
    assert (first["outputs"] != greedy["outputs"]).any()  # at temperature 3 the draws stray from the likeliest
    assert first["token_accuracy"] < greedy["token_accuracy"]


@pytest.mark.parametrize(("request_", "message"), [
    ({"method": "bogus"}, "unknown decoding method 'bogus'"), ({"method": "beam", "width": 0}, "beam width"),
    ({"method": "beam", "width": 17}, "beam width"), ({"temperature": 0.0}, "temperature"),
    ({"temperature": float("nan")}, "temperature"), ({"samples": (0, 300)}, "samples 0:300"),
    ({"samples": (0, 65)}, "at most 64"), ({"split": "validation"}, "split 'validation'")])
def test_bad_options_are_refused_naming_them(reverse, request_, message):
    with pytest.raises(KeyError, match=message):
        probe(reverse, **request_)


def classifier(name: str, units: int, activation: str, loss: str) -> dict:
    model = chain(node("input", "input"), node("embedding", "embedding", vocab=10, dim=16),
                  node("rnn", "gru", hidden=32, output="last"), node("dense", "dense", units=units),
                  node("output", "output", activation=activation))
    return {**session(model, name), "loss": loss}


@pytest.mark.parametrize(("name", "units", "activation", "loss"), [
    ("count_zeros", 13, "softmax", "cross_entropy"), ("parity", 1, "sigmoid", "bce")])
def test_a_classifier_of_sequences_answers_one_class_per_example(name, units, activation, loss):
    torch.manual_seed(0)
    tr = Trainer(parse_spec(classifier(name, units, activation, loss)), probes=False)
    for _ in tr.run(steps=60):
        pass
    a = probe(tr, split="long", samples=(0, 20))
    np.testing.assert_array_equal(a["inputs"], tr.data.x_long[:20].astype(np.int64))
    np.testing.assert_array_equal(a["targets"], tr.data.y_long[:20])
    assert a["outputs"].shape == a["correct"].shape == a["confidence"].shape == (20,)
    with torch.no_grad(), tr.model.evaluating():
        z = tr.model(torch.from_numpy(tr.data.x_long[:20]))
    if units > 1:
        p = torch.softmax(z, -1)
        np.testing.assert_array_equal(a["outputs"], p.argmax(-1).numpy())
        np.testing.assert_allclose(a["confidence"], p.max(-1).values.numpy(), rtol=1e-5)
    else:
        one = torch.sigmoid(z[:, 0]).numpy()
        np.testing.assert_array_equal(a["outputs"], (one > 0.5).astype(np.int64))
        np.testing.assert_allclose(a["confidence"], np.maximum(one, 1 - one), rtol=1e-5)
    np.testing.assert_array_equal(a["correct"], a["outputs"] == a["targets"])
    assert float(a["token_accuracy"]) == float(a["sequence_accuracy"]) == pytest.approx(a["correct"].mean())
    assert list(a["class_names"]) == [str(c) for c in tr.data.meta["classes"]] and "logprob" not in a
    with pytest.raises(KeyError, match="method 'beam'"):
        probe(tr, method="beam")


def test_the_cli_writes_a_long_split_and_a_beam_search(written, tmp_path, capsys):
    path = tmp_path / "seq2seq.dlp"
    save_session(path, written.spec, written.checkpoint())
    out = tmp_path / "long.npz"
    p = run("probe", path, "--probe", "predictions", "--split", "long", "--samples", "0:10", "--out", out,
            check_rc=0)
    assert "outputs" in p.stdout and "(10, 12)" in p.stdout
    with np.load(out) as a:  # no pickles: plain and unicode arrays
        assert a["inputs"].shape == a["outputs"].shape == (10, 12)
        np.testing.assert_array_equal(a["targets"], written.data.y_long[:10])
    beam = tmp_path / "beam.npz"
    assert main(["probe", str(path), "--probe", "predictions", "--method", "beam", "--width", "3", "--samples",
                 "0:8", "--out", str(beam), "--quiet"]) == 0
    x = torch.from_numpy(written.data.x_test[:8])
    with np.load(beam) as a, torch.no_grad(), written.model.evaluating():
        want = decode(written.model, x, written.bos, "beam", width=3)
        np.testing.assert_array_equal(a["outputs"], want.tokens.numpy())
    capsys.readouterr()
    for args, option in ((("--method", "bogus"), "--method"), (("--method", "beam", "--width", "0"), "--width"),
                         (("--temperature", "-1"), "--temperature"), (("--samples", "0:999"), "--samples")):
        r = run_inprocess(capsys, "probe", path, "--probe", "predictions", *args, "--out", tmp_path / "x.npz")
        assert_one_line_error(r)
        assert option in r.stderr, r.stderr


def test_image_predictions_keep_their_whole_test_set_and_refuse_sequence_options(tmp_path, capsys):
    assert PROBES["predictions"].takes >= {"samples", "split", "method", "width", "temperature"}
    out = tmp_path / "p.npz"
    r = run_inprocess(capsys, "probe", "digits-mlp", "--probe", "predictions", "--out", out, "--quiet")
    assert r.returncode == 0, r.stderr
    with np.load(out) as a:
        assert {"label", "prediction", "confusion", "f1"} <= set(a.files) and a["confusion"].shape == (10, 10)
    for args, option in ((("--method", "beam"), "--method"), (("--samples", "0:5"), "--samples"),
                         (("--split", "train"), "--split")):
        r = run_inprocess(capsys, "probe", "digits-mlp", "--probe", "predictions", *args, "--out", out)
        assert_one_line_error(r)
        assert option in r.stderr, r.stderr


def fixed_length() -> dict:
    """A network that reads one length only: a learned position table of 8 rows, then a flatten."""
    model = chain(node("input", "input"), node("embedding", "embedding", vocab=10, dim=16),
                  node("positional", "positional", kind="learned", max_len=8), node("flat", "flatten"),
                  node("dense", "dense", units=2), node("output", "output", activation="softmax"))
    return {**session(model, "parity"), "loss": "cross_entropy"}


def test_a_network_of_one_length_refuses_the_longer_set_naming_the_split(tmp_path, capsys):
    tr = Trainer(parse_spec(fixed_length()), probes=False)
    with pytest.raises(KeyError, match="split 'long': this network is built for its training length"):
        probe(tr, split="long")
    assert probe(tr)["inputs"].shape == (32, 8)  # its own length is answered
    path = tmp_path / "fixed.json"
    path.write_text(json.dumps(fixed_length()))
    r = run_inprocess(capsys, "probe", path, "--probe", "predictions", "--split", "long", "--out", tmp_path / "x.npz")
    assert_one_line_error(r)
    assert "--split" in r.stderr
