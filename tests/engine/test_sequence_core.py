"""The per-token task, the decoder's input, decoding and their scores: a sequence set trains end to end."""
from __future__ import annotations

import itertools
import math

import pytest
import torch

from engine.check import parse_spec
from engine.decoding import decode, feed, has_decoder
from engine.errors import GraphError
from engine.ops import OPS
from engine.ops.registry import ShapeError
from engine.session import load_session, save_session
from engine.train.trainer import Trainer


def node(i: str, op: str, **params) -> dict:
    return {"id": i, "op": op, "params": params}


def chain(*nodes: dict) -> dict:
    return {"nodes": list(nodes), "edges": [[a["id"], b["id"]] for a, b in itertools.pairwise(nodes)]}


def encoder(vocab: int = 10, positional: str = "sinusoidal") -> dict:
    return chain(node("input", "input"), node("embedding", "embedding", vocab=vocab, dim=32),
                 node("positional", "positional", kind=positional, max_len=64),
                 node("block_1", "transformer_block", heads=4, ff=64), node("norm", "layer_norm"),
                 node("dense", "dense", units=vocab), node("output", "output", activation="softmax"))


def seq2seq(vocab: int = 10) -> dict:
    nodes = [node("input", "input"), node("embedding", "embedding", vocab=vocab, dim=32),
             node("encoder", "gru", hidden=32, output="all"), node("decoder_input", "decoder_input"),
             node("dec_embedding", "embedding", vocab=vocab, dim=32), node("decoder", "gru", hidden=32, output="all"),
             node("attend", "cross_attention", heads=1), node("join", "concat"), node("dense", "dense", units=vocab),
             node("output", "output", activation="softmax")]
    edges = [["input", "embedding"], ["embedding", "encoder"], ["decoder_input", "dec_embedding"],
             ["dec_embedding", "decoder"], ["decoder", "attend"], ["encoder", "attend"], ["decoder", "join"],
             ["attend", "join"], ["join", "dense"], ["dense", "output"]]
    return {"nodes": nodes, "edges": edges}


def session(model: dict, name: str = "reverse", **training) -> dict:
    return {"dataset": {"kind": "sequences", "name": name, "samples": 1000, "long_samples": 100},
            "model": model, "loss": "cross_entropy", "optimizer": {"kind": "adam", "lr": 0.003},
            "training": {"batch_size": 32, **training}}


def test_dense_acts_on_every_step_alike():
    op = OPS["dense"]
    p = op.params(units=3)
    assert op.shape(p, [(5, 4)]) == (5, 3) and op.count(p, [(5, 4)]) == 15
    layer = op.build(p, [(5, 4)], None)
    x = torch.randn(2, 5, 4)
    torch.testing.assert_close(layer(x)[:, 2], layer(x[:, 2]))
    with pytest.raises(ShapeError, match="maxout takes a flat"):
        op.shape(op.params(units=3, activation="maxout"), [(5, 4)])
    with pytest.raises(ShapeError, match="insert a Flatten"):
        op.shape(p, [(1, 5, 4)])


def test_per_token_head_checks_the_output_shape():
    bad = encoder()
    bad["nodes"][4] = node("norm", "readout", reduce="mean")  # pools the steps away: one answer, not eight
    with pytest.raises(GraphError, match=r"expects \(B, 8, 10\) but gets \(B, 10\)") as info:
        parse_spec(session(bad))
    assert info.value.what == "model.nodes[6]"


def test_decoder_input_takes_the_input_shape_and_needs_a_sequence_task():
    spec = parse_spec(session(seq2seq()))
    from engine.check import check_spec
    assert check_spec(spec).nodes["decoder_input"].shape == (8,)
    toy = {"dataset": {"kind": "toy2d"}, "model": chain(node("input", "input"), node("d", "dense", units=1),
                                                        node("output", "output"))}
    toy["model"]["nodes"].append(node("decoder_input", "decoder_input"))
    toy["model"]["edges"].append(["decoder_input", "d"])
    with pytest.raises(GraphError):
        parse_spec(toy)


@pytest.fixture(scope="module")
def trained_encoder():
    torch.manual_seed(0)
    tr = Trainer(parse_spec(session(encoder())), probes=False)
    for _ in tr.run(steps=400):
        pass
    return tr


def test_a_transformer_learns_to_reverse_and_is_scored_per_token(trained_encoder):
    tr = trained_encoder
    h = tr.history
    assert h["epoch_train_loss"][-1] < 0.5 * h["epoch_train_loss"][0]
    m = tr.evaluate()
    assert m["test_accuracy"] > 0.9  # tokens right
    assert 0 <= m["test_sequence_accuracy"] <= m["test_accuracy"]  # whole sequences right: never more
    assert "long_accuracy" in m and "long_sequence_accuracy" in m  # the longer held-out sequences, scored apart
    assert len(h["epoch_long_accuracy"]) == tr.epoch and not math.isnan(h["epoch_long_accuracy"][-1])
    # the running train accuracy counts tokens: at most one per token of the epoch
    assert 0.0 <= h["epoch_train_accuracy"][-1] <= 1.0


def test_encoder_only_decoding_is_each_positions_best(trained_encoder):
    tr = trained_encoder
    x = tr.x_test[:50]
    with torch.no_grad(), tr.model.evaluating():
        z = tr.model(x)
        greedy, beam = decode(tr.model, x, tr.bos), decode(tr.model, x, tr.bos, "beam", width=3)
    assert torch.equal(greedy.tokens, z.argmax(-1)) and torch.equal(beam.tokens, greedy.tokens)


def test_a_sequence_run_saved_mid_epoch_reopens_bit_for_bit(trained_encoder, tmp_path):
    tr = trained_encoder
    for _ in tr.run(steps=7):  # mid-epoch: the running token count is saved
        pass
    assert tr.batch_index and int(tr._epoch_correct) > tr.batch_index * tr.spec.training.batch_size
    path = tmp_path / "rev.dlp"
    save_session(path, tr.spec, tr.checkpoint())
    again = Trainer(tr.spec, probes=False, checkpoint=load_session(path).checkpoint)
    assert int(again._epoch_correct) == int(tr._epoch_correct)
    for run in (tr, again):
        for _ in run.run(steps=30):  # across the epoch's end: its running accuracy includes the restored count
            pass
    assert tr.history["epoch_train_accuracy"] == again.history["epoch_train_accuracy"]


@pytest.fixture(scope="module")
def trained_seq2seq():
    tr = Trainer(parse_spec(session(seq2seq())), probes=False)
    assert tr.decoder and has_decoder(tr.model.info.nodes.values())
    for _ in tr.run(steps=300):
        pass
    return tr


def test_an_encoder_decoder_is_scored_on_what_it_writes(trained_seq2seq):
    tr = trained_seq2seq
    x, y = tr.x_test[:64], tr.y_test[:64]
    with torch.no_grad(), tr.model.evaluating():
        forced = tr.model(x, feed(y, tr.bos)).argmax(-1)
        written = decode(tr.model, x, tr.bos).tokens
    m = tr.evaluate()
    assert m["test_accuracy"] > 0.5
    # written token by token: step t reads its own earlier answers, so it can differ from the teacher-forced pass
    assert (written == y).float().mean() <= (forced == y).float().mean() + 1e-6 or not torch.equal(written, forced)


@pytest.mark.parametrize("trained", [False, True])
def test_beam_search_is_never_less_likely_than_greedy(trained, trained_seq2seq):
    tr = trained_seq2seq if trained else Trainer(parse_spec(session(seq2seq())), probes=False)
    x = tr.x_test[:200]
    with torch.no_grad(), tr.model.evaluating():
        greedy = decode(tr.model, x, tr.bos)
        for width in (1, 2, 4):
            beam = decode(tr.model, x, tr.bos, "beam", width=width)
            assert (beam.logprob >= greedy.logprob - 1e-4).all(), width
            if width == 1:
                assert torch.equal(beam.tokens, greedy.tokens)
        hot = decode(tr.model, x, tr.bos, "beam", width=4, temperature=2.0)
        assert (hot.logprob >= decode(tr.model, x, tr.bos, temperature=2.0).logprob - 1e-4).all()


def test_sampling_is_seeded_and_temperature_must_be_positive(trained_seq2seq):
    tr = trained_seq2seq
    x = tr.x_test[:20]
    with torch.no_grad(), tr.model.evaluating():
        a = decode(tr.model, x, tr.bos, "sample", temperature=1.5, generator=torch.Generator().manual_seed(1))
        b = decode(tr.model, x, tr.bos, "sample", temperature=1.5, generator=torch.Generator().manual_seed(1))
        assert torch.equal(a.tokens, b.tokens)
        with pytest.raises(ValueError, match="temperature"):
            decode(tr.model, x, tr.bos, temperature=0.0)


def test_teacher_forcing_below_one_mixes_in_the_networks_own_answers():
    forced = Trainer(parse_spec(session(seq2seq())), probes=False)
    mixed = Trainer(parse_spec(session(seq2seq(), teacher_forcing=0.5)), probes=False)
    for tr in (forced, mixed):
        for _ in tr.run(steps=40):
            pass
    assert forced.history["step_loss"] != mixed.history["step_loss"]
    assert mixed.history["step_loss"][-1] < mixed.history["step_loss"][0]


def test_an_embedding_smaller_than_the_vocabulary_is_refused_naming_it():
    small = encoder()
    small["nodes"][1]["params"]["vocab"] = 6
    with pytest.raises(GraphError, match=r"embedding has 6 rows but the data's tokens run from 0 to 9: give it "
                                         r"vocab 10") as info:
        parse_spec(session(small))
    assert info.value.what == "model.nodes[1].params.vocab"


@pytest.mark.parametrize("change", ["bidirectional", "context"])
def test_a_decoder_that_could_read_its_own_answer_is_refused(change):
    model = seq2seq()
    if change == "bidirectional":
        model["nodes"][5]["params"]["bidirectional"] = True
    else:  # the decoder's steps as the context of cross-attention: each step attends to later ones
        model["edges"] = [e for e in model["edges"] if e not in (["decoder", "attend"], ["encoder", "attend"])]
        model["edges"][4:4] = [["encoder", "attend"], ["decoder", "attend"]]
    with pytest.raises(GraphError, match="lets each step see later ones") as info:
        parse_spec(session(model))
    assert info.value.what == f"model.nodes[{5 if change == 'bidirectional' else 6}]"


def test_steps_never_pooled_before_a_classifiers_head_are_explained():
    model = chain(node("input", "input"), node("embedding", "embedding", vocab=10, dim=8),
                  node("dense", "dense", units=2), node("output", "output", activation="softmax"))
    with pytest.raises(GraphError, match="dense answers at each of the 8 steps; insert a readout"):
        parse_spec({**session(model), "dataset": {"kind": "sequences", "name": "parity", "samples": 200}})


def test_an_encoder_decoders_training_accuracy_is_what_it_writes(trained_seq2seq):
    tr = trained_seq2seq
    for _ in tr.run(epochs=1):
        pass
    with torch.no_grad(), tr.model.evaluating():
        written = decode(tr.model, tr.x_train[:512], tr.bos).tokens
    expected = (written == tr.y_train[:512]).float().mean().item()
    assert tr.history["epoch_train_accuracy"][-1] == pytest.approx(expected, abs=1e-6)


def test_a_probe_asked_about_longer_sequences_a_network_cannot_read_names_the_split():
    from engine.probes import run_probe
    fixed = encoder(positional="learned")
    fixed["nodes"][2]["params"]["max_len"] = 8  # the training length: the longer sequences do not fit
    tr = Trainer(parse_spec(session(fixed)), probes=False)
    from engine.probes import ProbeRequest
    with pytest.raises(KeyError, match="split 'long': this network cannot read the longer sequences"):
        run_probe(tr.prober.ctx, "attention", 0, ProbeRequest(sample=0, split="long"))
    assert run_probe(tr.prober.ctx, "attention", 0, ProbeRequest(sample=0, split="test")).arrays["weights"].size
