"""Recurrent internals: the step-by-step re-run of an RNN, LSTM or GRU block matches torch's own kernel; the
`gates` and `step_grad_norms` probes report what the cell computed and how far the loss's gradient reaches back
(a plain RNN's vanishes, an LSTM's does not); and the count-zeros and parity presets learn what they promise."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from engine.check import parse_spec
from engine.cli import main
from engine.datasets.sequences import Sequences
from engine.ops.sequence import Recurrent, RecurrentParams
from engine.presets import load_preset
from engine.probes import PROBES, ProbeRequest, applicable, run_probe
from engine.probes.recurrent import GATE_NAMES, GRAD_SAMPLES, unroll
from engine.train.trainer import Trainer
from tests.engine.test_sequence_core import seq2seq, session


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def classifier(cell: str, name: str = "count_zeros", length: int = 12, hidden: int = 16, **params) -> dict:
    """embedding → CELL (its last state) → dense → softmax, on a small sequence set."""
    data = {"kind": "sequences", "name": name, "length": length, "samples": 1000, "long_samples": 50}
    ds = Sequences(**{k: v for k, v in data.items() if k != "kind"})
    nodes = [{"id": "input", "op": "input", "params": {}},
             {"id": "embedding", "op": "embedding", "params": {"vocab": ds.vocab, "dim": 8}},
             {"id": "rec", "op": cell, "params": {"hidden": hidden, "output": "last", **params}},
             {"id": "dense", "op": "dense", "params": {"units": ds.n_classes}},
             {"id": "output", "op": "output", "params": {"activation": "softmax"}}]
    return {"dataset": data, "model": {"nodes": nodes, "edges": [[a["id"], b["id"]] for a, b in
                                                                  itertools.pairwise(nodes)]},
            "loss": "cross_entropy", "optimizer": {"kind": "adam", "lr": 0.003}, "training": {"batch_size": 32}}


def trained(spec: dict, steps: int = 0) -> Trainer:
    tr = Trainer(parse_spec(spec), probes=False)
    for _ in tr.run(steps=steps):
        pass
    return tr


@pytest.mark.parametrize(("kind", "layers", "bidirectional", "output"),
                         list(itertools.product(("rnn", "lstm", "gru"), (1, 2), (False, True), ("all", "last"))))
def test_the_step_by_step_rerun_matches_torchs_kernel(kind, layers, bidirectional, output):
    torch.manual_seed(0)
    m = Recurrent(kind, 5, RecurrentParams(hidden=7, layers=layers, bidirectional=bidirectional, output=output))
    m.eval()
    x = torch.randn(3, 6, 5)
    with torch.no_grad():
        got, first = unroll(kind, m, x)
        torch.testing.assert_close(got, m(x), rtol=1e-5, atol=1e-6)
        if layers == 1:  # layer 0's forward states are torch's output's first H columns
            torch.testing.assert_close(torch.stack(first, 1), m.cell(x)[0][..., :7], rtol=1e-5, atol=1e-6)
    assert len(first) == 6 and first[0].shape == (3, 7)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_gates_report_the_cells_own_states_and_gates(kind):
    spec = classifier(kind)
    spec["model"]["nodes"][2]["params"]["output"] = "all"  # every step's state comes out: compare them all
    spec["model"]["nodes"].insert(3, {"id": "pool", "op": "readout", "params": {"reduce": "mean"}})
    spec["model"]["edges"] = [["input", "embedding"], ["embedding", "rec"], ["rec", "pool"], ["pool", "dense"],
                              ["dense", "output"]]
    tr = trained(spec, steps=30)
    ctx = tr.prober.ctx
    a = run_probe(ctx, "gates", tr.step, ProbeRequest(sample=3)).arrays
    x = torch.from_numpy(tr.data.x_test[3:4])
    with torch.no_grad():
        values = tr.model.forward_all(x)
    own_out = values["rec"][0].numpy()  # torch's fused kernel: (T, H)
    assert a["target"].tolist() == [tr.data.y_test[3]]
    assert a["predicted"].tolist() == [int(values["output"][0].argmax())]
    np.testing.assert_allclose(a["hidden"], own_out, rtol=1e-5, atol=1e-6)
    t, h = a["hidden"].shape
    assert (t, h) == (12, 16) and a["node"].tolist() == ["rec"] and a["kind"].tolist() == [kind]
    names = tr.data.meta["tokens"]
    assert a["tokens"].tolist() == [names[int(k)] for k in tr.data.x_test[3]]
    assert a["hidden_pca"].shape == (t, 2) and 0.0 < a["hidden_explained"].sum() <= 1.0 + 1e-6
    assert a["gate_names"].tolist() == list(GATE_NAMES.get(kind, ()))
    g = dict(zip(a["gate_names"].tolist(), a["gates"], strict=True))
    prev = np.vstack([np.zeros((1, h), np.float32), a["hidden"][:-1]])
    if kind == "rnn":
        assert a["gates"].shape == (0, t, h) and "cell" not in a
    elif kind == "lstm":
        c = a["cell"]
        c_prev = np.vstack([np.zeros((1, h), np.float32), c[:-1]])
        np.testing.assert_allclose(c, g["forget"] * c_prev + g["input"] * g["cell"], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(a["hidden"], g["output"] * np.tanh(c), rtol=1e-4, atol=1e-6)
        for name in ("input", "forget", "output"):
            assert 0 < g[name].min() and g[name].max() < 1  # sigmoids
    else:
        np.testing.assert_allclose(a["hidden"], (1 - g["update"]) * g["new"] + g["update"] * prev, rtol=1e-4,
                                   atol=1e-6)
        assert g["new"].min() >= -1 and g["new"].max() <= 1
    assert a["gates"].shape == (len(GATE_NAMES.get(kind, ())), t, h)


def test_gate_order_is_torchs_lstm_forget_bias_shows_in_the_forget_gate():
    tr = trained(classifier("lstm"))
    cell = tr.model.layers["rec"].cell
    with torch.no_grad():  # torch's order: i, f, g, o; a huge bias on the second quarter opens only "forget"
        cell.bias_hh_l0[16:32] = 20.0
        cell.bias_hh_l0[48:64] = -20.0
    a = run_probe(tr.prober.ctx.fresh(), "gates", 0, ProbeRequest(sample=0)).arrays
    g = dict(zip(a["gate_names"].tolist(), a["gates"], strict=True))
    assert g["forget"].min() > 0.999 and g["output"].max() < 1e-6 and np.abs(a["hidden"]).max() < 1e-6
    assert g["input"].max() < 0.999


def test_gates_takes_a_layer_a_split_and_refuses_what_is_not_there():
    spec = classifier("gru")
    nodes = spec["model"]["nodes"]
    nodes[2]["params"]["output"] = "all"
    nodes.insert(3, {"id": "rec2", "op": "lstm", "params": {"hidden": 8, "output": "last"}})
    spec["model"]["edges"] = [[a["id"], b["id"]] for a, b in itertools.pairwise(nodes)]
    tr = trained(spec)
    ctx = tr.prober.ctx
    a = run_probe(ctx, "gates", 0, ProbeRequest(layer="rec2", split="long", sample=4)).arrays
    assert a["kind"].tolist() == ["lstm"] and a["nodes"].tolist() == ["rec", "rec2"]
    assert a["hidden"].shape == (tr.data.x_long.shape[1], 8) and a["sample"].tolist() == [4]
    assert run_probe(ctx, "gates", 0).arrays["node"].tolist() == ["rec"]  # the first by default
    with pytest.raises(KeyError, match="not a recurrent block"):
        run_probe(ctx, "gates", 0, ProbeRequest(layer="dense"))
    n = len(tr.data.x_test)
    with pytest.raises(KeyError, match=f"sample {n} is outside the test set"):
        run_probe(ctx, "gates", 0, ProbeRequest(sample=n))
    assert {"gates", "step_grad_norms"} <= set(applicable(tr.info, tr.spec.dataset))
    mlp = Trainer(load_preset("digits-mlp"), probes=False)
    assert not {"gates", "step_grad_norms"} & set(applicable(mlp.info, mlp.spec.dataset))
    assert PROBES["gates"].takes == {"sample", "layer", "split"}


def test_an_encoder_decoders_decoder_reads_its_shifted_target():
    tr = trained(session(seq2seq()))
    a = run_probe(tr.prober.ctx, "gates", 0, ProbeRequest(layer="decoder", sample=2)).arrays
    names = tr.data.meta["tokens"]
    y = tr.data.y_test[2]
    assert a["tokens"].tolist() == ["▶", *(names[int(k)] for k in y[:-1])]
    assert a["target"].tolist() == y.tolist() and a["predicted"].shape == (8,)  # one answer per token
    b = run_probe(tr.prober.ctx, "gates", 0, ProbeRequest(layer="encoder", sample=2)).arrays
    assert b["tokens"].tolist() == [names[int(k)] for k in tr.data.x_test[2]]
    norms = run_probe(tr.prober.ctx, "step_grad_norms", 0, ProbeRequest(layer="decoder")).arrays["norms"]
    assert norms.shape == (8,) and (norms > 0).all()


def test_the_last_steps_gradient_is_the_gradient_by_the_blocks_output_and_nothing_is_left_behind():
    tr = trained(classifier("lstm"), steps=20)
    ctx = tr.prober.ctx
    before = {k: v.clone() for k, v in tr.model.state_dict().items()}
    for p in tr.params:
        p.grad = None
    a = run_probe(ctx, "step_grad_norms", tr.step).arrays
    assert all(p.grad is None for p in tr.params)  # no parameter gradient computed or kept
    assert all(torch.equal(v, tr.model.state_dict()[k]) for k, v in before.items())
    norms = a["norms"]
    assert norms.shape == (12,) and a["samples"].tolist() == [GRAD_SAMPLES] and a["node"].tolist() == ["rec"]
    # the block's output is its last state: the loss's gradient by it, by ordinary autograd, is the last norm
    x = ctx.inputs("test")[:GRAD_SAMPLES]
    with torch.no_grad():
        before_rec = tr.model.forward_all(x)["embedding"]
    out = tr.model.layers["rec"](before_rec).detach().requires_grad_(True)
    loss = tr.head.loss(tr.model.forward_from("rec", out), ctx.head.targets(tr.data.y_test[:GRAD_SAMPLES],
                                                                             out.device)) * GRAD_SAMPLES
    (grad,) = torch.autograd.grad(loss, out)
    assert norms[-1] == pytest.approx(float(grad.norm(dim=1).mean()), rel=1e-4)
    assert all(p.grad is None for p in tr.params)


def test_a_frozen_block_still_shows_how_far_its_gradient_reaches():
    spec = classifier("gru")
    spec["model"]["nodes"][1]["frozen"] = True
    spec["model"]["nodes"][2]["frozen"] = True
    tr = trained(spec, steps=5)
    assert not any(p.requires_grad for p in tr.model.layers["rec"].parameters())
    norms = run_probe(tr.prober.ctx, "step_grad_norms", tr.step).arrays["norms"]
    assert norms.shape == (12,) and (norms > 0).all() and norms[-1] > norms[0]


def test_the_cli_writes_the_gates_of_one_example(tmp_path):
    out = tmp_path / "gates.npz"
    assert main(["probe", "count-zeros-lstm", "--probe", "gates", "--sample", "2", "--split", "long",
                 "--out", str(out), "--quiet"]) == 0
    with np.load(out) as f:
        assert f["gates"].shape == (4, 60, 32) and f["tokens"].shape == (60,) and f["cell"].shape == (60, 32)
        assert f["gate_names"].tolist() == ["input", "forget", "cell", "output"]


def accuracy_and_reach(name: str, seed: int, epochs: int) -> tuple[float, float]:
    """A preset trained ``epochs`` epochs with ``seed``: its test accuracy and how much of the last step's
    gradient reaches step 0 (norms[0] / norms[-1])."""
    spec = load_preset(name)
    spec = spec.model_copy(update={"training": spec.training.model_copy(update={"seed": seed})})
    tr = Trainer(spec, probes=False)
    for _ in tr.run(epochs=epochs):
        pass
    norms = run_probe(tr.prober.ctx, "step_grad_norms", tr.step).arrays["norms"]
    return float(tr.history.arrays()["epoch_test_accuracy"][-1]), float(norms[0] / norms[-1])


@pytest.mark.parametrize("seed", [0, 1])
def test_an_lstm_counts_zeros_over_40_steps_where_a_plain_rnn_does_not(seed):
    rnn_acc, rnn_reach = accuracy_and_reach("count-zeros-rnn", seed, epochs=8)
    lstm_acc, lstm_reach = accuracy_and_reach("count-zeros-lstm", seed, epochs=8)
    assert load_preset("count-zeros-rnn").dataset.length == load_preset("count-zeros-lstm").dataset.length == 40
    assert lstm_acc > 0.75 and rnn_acc < 0.35 and lstm_acc > rnn_acc + 0.4, (rnn_acc, lstm_acc)
    # vanishing gradients: what reaches the first of 40 steps is a sliver of the last's for the RNN only (seeds
    # 0-4 gave the RNN 0 to 3e-4, the LSTM 5e-3 to 0.18: a trajectory's rounding moves the RNN's by decades)
    assert rnn_reach < 1e-3 and lstm_reach > 1e-2 and lstm_reach > 100 * rnn_reach, (rnn_reach, lstm_reach)


@pytest.mark.parametrize("seed", [0, 1])
def test_a_gru_learns_the_parity_of_8_bits_and_the_rule_carries_to_12(seed):
    spec = load_preset("parity-gru")
    assert spec.dataset.length == 8 and spec.dataset.long_length == 12
    spec = spec.model_copy(update={"training": spec.training.model_copy(update={"seed": seed})})
    tr = Trainer(spec, probes=False)
    for _ in tr.run(epochs=3):
        pass
    h = tr.history.arrays()
    assert h["epoch_test_accuracy"][-1] >= 0.9 and h["epoch_long_accuracy"][-1] >= 0.9, h["epoch_test_accuracy"]
