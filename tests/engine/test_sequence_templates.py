"""The sequence templates train on the sequences data out of the box, and moving a spec between dataset families
and sequence tasks (``stack.fit_data``) leaves a network that checks and trains: vocabulary, positions, an answer
per token or per sequence, and a default network where the old one cannot read the new data."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.check import check_spec
from engine.datasets.images import Images
from engine.datasets.sequences import Sequences
from engine.decoding import decode
from engine.graph import analyse
from engine.head import Head
from engine.presets import load_preset
from engine.spec import SessionSpec
from engine.stack import fit_data, fit_head, fit_tokens, from_model, reads_tokens, template_for
from engine.templates import TEMPLATES
from engine.train.trainer import Trainer

torch.set_num_threads(1)


def on(dataset, model=None) -> SessionSpec:
    """The toy preset moved to `dataset` (its network replaced or fitted), with `model` instead when given."""
    spec = fit_head(load_preset("tfp-circle"), dataset)
    spec = spec.model_copy(update={"training": spec.training.model_copy(update={"batch_size": 32})})
    if model is not None:
        spec = spec.model_copy(update={"model": model})
    check_spec(spec)
    return spec


def train(spec: SessionSpec, steps: int) -> Trainer:
    tr = Trainer(spec, probes=False)
    for _ in tr.run(steps=steps):
        pass
    return tr


def loss_falls(spec: SessionSpec, steps: int) -> Trainer:
    """Train `steps` steps: the mean loss of the last ten is well below that of the first ten."""
    tr = train(spec, steps)
    losses = tr.history["step_loss"]
    assert len(losses) == steps and np.isfinite(losses).all()
    first, last = np.mean(losses[:10]), np.mean(losses[-10:])
    assert last < 0.8 * first, (first, last)
    return tr


def small(name: str, **fields) -> Sequences:
    return Sequences(name=name, samples=1000, long_samples=100, **fields)


def node(spec: SessionSpec, op: str):
    return next(n for n in spec.model.nodes if n.op == op)


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru", "transformer"])
def test_token_templates_answer_per_token_and_per_sequence_and_learn(name):
    per_token = on(small("copy", delay=2))
    model = template_for(name, per_token)
    info = analyse(model, (8,))
    assert info.nodes[info.output_id].shape == (8, per_token.dataset.vocab)  # a token at every step
    assert node(per_token.model_copy(update={"model": model}), "embedding").params["vocab"] == 10
    loss_falls(on(small("copy", delay=2), model), 150)

    counting = on(small("count_zeros", symbols=40, length=10))  # vocabulary 42: more than the template's 32
    model = template_for(name, counting)
    spec = on(counting.dataset, model)
    assert node(spec, "embedding").params["vocab"] == 42 and node(spec, "input").params["shape"] == [10]
    assert analyse(model, (10,)).nodes["output"].shape == (counting.dataset.n_classes,)  # one class per input
    loss_falls(spec, 150)


def test_the_transformer_template_learns_to_reverse():
    spec = on(small("reverse"), template_for("transformer", on(small("reverse"))))
    tr = loss_falls(spec, 300)
    x, y = (torch.from_numpy(a) for a in (tr.data.x_test, tr.data.y_test))
    with torch.no_grad(), tr.model.evaluating():
        right = Head.of(spec).correct(tr.model(x), y)
    assert right.shape == y.shape and right.float().mean() > 0.6  # most tokens of unseen inputs reversed


def test_the_encoder_decoder_template_learns_and_decodes():
    spec = on(small("reverse"))
    model = template_for("seq2seq", spec)
    assert {n.op for n in model.nodes} >= {"decoder_input", "gru", "cross_attention", "concat"}
    spec = on(spec.dataset, model)
    assert [n.params["vocab"] for n in spec.model.nodes if n.op == "embedding"] == [10, 10]
    tr = loss_falls(spec, 200)
    x = torch.from_numpy(tr.data.x_test[:4])
    with torch.no_grad(), tr.model.evaluating():
        answer = decode(tr.model, x, tr.bos, "greedy")
    assert answer.tokens.shape == (4, 8)


def test_the_vit_template_learns_shapes():
    spec = load_preset("shapes-cnn")
    model = TEMPLATES["vit"].model(Head.of(spec))
    assert analyse(model).nodes["patches"].shape == (17, 32)  # 16 patches of 7×7 and the class token
    data = spec.dataset.model_copy(update={"samples": 400})
    spec = spec.model_copy(update={"model": model, "dataset": data})
    check_spec(spec)
    loss_falls(spec, 150)


def test_toys_to_sequences_replace_the_network_and_say_so():
    toy = load_preset("tfp-circle")
    reverse = fit_data(toy, small("reverse"))
    assert "could not read tokens" in reverse.note and "Transformer" in reverse.note and "Adam" in reverse.note
    assert reverse.spec.optimizer.kind == "adam" and reverse.spec.loss == "cross_entropy"
    counting = fit_data(toy, small("count_zeros"))
    assert "LSTM" in counting.note and node(counting.spec, "lstm").params["output"] == "last"
    for fitted in (reverse, counting):
        check_spec(fitted.spec)
        assert np.isfinite(train(fitted.spec, 20).history["step_loss"]).all()


def test_moving_between_tasks_fits_the_head_and_pools_or_unpools():
    reverse = fit_data(load_preset("tfp-circle"), small("reverse")).spec
    counting = fit_data(reverse, small("count_zeros", length=10))
    assert counting.note is None  # the transformer stays: only its head and sizes change
    spec = counting.spec
    check_spec(spec)
    (pool,) = [n for n in spec.model.nodes if n.op == "readout"]
    assert ["norm", pool.id] in [list(e) for e in spec.model.edges] and pool.position is not None
    assert node(spec, "dense").params["units"] == 16 and node(spec, "embedding").params["vocab"] == 10
    back = fit_data(spec, small("reverse")).spec
    assert not any(n.op == "readout" for n in back.model.nodes)
    assert {tuple(e) for e in back.model.edges} == {tuple(e) for e in reverse.model.edges}
    adding = fit_data(back, small("add", long_length=0)).spec  # 13 tokens: 0-9, +, blank and ▶
    assert node(adding, "embedding").params["vocab"] == 13 and node(adding, "dense").params["units"] == 13
    check_spec(adding)
    # An RNN classifier moved to a per-token task gives every step; back, its last state.
    lstm = fit_data(reverse, small("parity")).spec
    lstm = lstm.model_copy(update={"model": template_for("lstm", lstm)})
    tagger = fit_data(lstm, small("sort")).spec
    assert node(tagger, "lstm").params["output"] == "all" and node(tagger, "dense").params["units"] == 10
    assert node(fit_data(tagger, small("parity")).spec, "lstm").params["output"] == "last"


def test_positions_cover_the_longer_held_out_set():
    spec = fit_data(load_preset("tfp-circle"), Sequences(name="reverse", length=40, long_length=100,
                                                          samples=100, long_samples=10)).spec
    assert node(spec, "positional").params["max_len"] == 100
    tr = Trainer(spec, probes=False)
    for _ in tr.run(epochs=1):
        pass
    assert np.isfinite(tr.history["epoch_long_loss"][-1])  # the 100-token inputs ran through the network


def test_an_encoder_decoder_given_a_classification_task_is_replaced():
    spec = on(small("reverse"))
    seq2seq = on(spec.dataset, template_for("seq2seq", spec))
    fitted = fit_data(seq2seq, small("brackets"))
    assert "encoder–decoder" in fitted.note and not any(n.op == "decoder_input" for n in fitted.spec.model.nodes)
    check_spec(fitted.spec)
    assert fitted.spec.optimizer == seq2seq.optimizer  # Adam already: kept
    copy = fit_data(seq2seq, small("copy", delay=3, symbols=5)).spec  # a decoder stays for a per-token task
    assert [n.params["vocab"] for n in copy.model.nodes if n.op == "embedding"] == [7, 7]
    check_spec(copy)


def test_leaving_sequences_replaces_a_token_network():
    reverse = fit_data(load_preset("tfp-circle"), small("reverse")).spec
    digits = fit_data(reverse, Images(name="digits", samples=300))
    assert "could not read images" in digits.note and not reads_tokens(digits.spec.model)
    check_spec(digits.spec)
    assert np.isfinite(train(digits.spec, 20).history["step_loss"]).all()
    toy = fit_data(reverse, load_preset("xor").dataset)
    assert "2-D points" in toy.note and from_model(toy.spec.model) is not None
    check_spec(toy.spec)
    # A network that reads the new data is never replaced: a stack moving between toys keeps its layers.
    assert fit_data(load_preset("tfp-circle"), load_preset("xor").dataset).note is None


def test_fit_tokens_refuses_a_network_it_cannot_fit():
    spec = on(small("reverse"))
    data = spec.model.model_dump(mode="json")
    data["nodes"] = [n for n in data["nodes"] if n["id"] != "dense"]
    data["edges"] = [e for e in data["edges"] if "dense" not in e] + [["norm", "output"]]
    broken = spec.model_copy(update={"model": type(spec.model).model_validate(data)})
    with pytest.raises(Exception, match="must be fed by one dense layer"):
        fit_tokens(broken)
    fitted = fit_data(broken, small("sort"))
    assert "did not fit sort" in fitted.note
    check_spec(fitted.spec)
