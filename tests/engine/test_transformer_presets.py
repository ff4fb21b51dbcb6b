"""The transformer presets' done-when: each trains headless to its stated figure, and reverse-transformer's last
block holds a head that looks at the mirrored position (query t → key T−1−t), as the lesson says it will."""
from __future__ import annotations

import json

import pytest
import torch

from engine.check import parse_spec
from engine.cli import main
from engine.decoding import decode, feed, has_decoder
from engine.presets import load_preset
from engine.session import load_session
from engine.train.trainer import Trainer
from tests.conftest import preset_dict

PRESETS = ("reverse-transformer", "sort-transformer", "reverse-seq2seq-attention")


def train(tr: Trainer, steps: int) -> Trainer:
    for _ in tr.run(steps=steps, snapshot_every=1e9):
        pass
    return tr


def mirror_share(maps: torch.Tensor) -> torch.Tensor:
    """Per head, the mean share of each query's attention on its mirrored key: (B, heads, T, T) → (heads,)."""
    t = torch.arange(maps.shape[-1])
    return maps[:, :, t, maps.shape[-1] - 1 - t].mean(dim=(0, 2))


@pytest.mark.parametrize("name", PRESETS)
def test_presets_read_left_to_right_in_steps_of_250(name):
    data = preset_dict(name)
    assert data["format_version"] == 2 and data["name"] == name and len(data["description"]) > 200
    pos = {n["id"]: n["position"] for n in data["model"]["nodes"]}
    assert all(x % 250 == 0 for x, _ in pos.values())
    assert all(pos[a][0] < pos[b][0] for a, b in data["model"]["edges"])  # every edge points right
    rows = sorted({y for _, y in pos.values()})
    assert rows == ([0.0, 110.0] if name.endswith("seq2seq-attention") else [0.0])  # a decoder: the row below
    spec = load_preset(name)
    assert spec.dataset.kind == "sequences" and spec.loss == "cross_entropy"


@pytest.mark.parametrize("seed", [None, 1])
def test_reverse_transformer_learns_and_a_last_block_head_attends_to_the_mirror(seed, tmp_path):
    spec = load_preset("reverse-transformer")
    assert spec.schedule.kind == "warmup_cosine" and spec.optimizer.kind == "adamw"
    metrics, out = tmp_path / "m.json", tmp_path / "run.dlp"
    args = ["train", "reverse-transformer", "--steps", "400", "--metrics-json", metrics, "--out", out, "--quiet"]
    assert main([str(a) for a in args + (["--seed", seed] if seed is not None else [])]) == 0
    m = json.loads(metrics.read_text())
    # held-out tokens at training length, well within the 4,000 steps the lesson allows (found 0.999+ at 200)
    assert m["steps"] == 400 and m["test_accuracy"] >= 0.95
    # test_accuracy counts tokens; whole sequences, and the longer held-out ones, are reported beside it
    assert 0 <= m["test_sequence_accuracy"] <= m["test_accuracy"]
    assert len(m["history"]["epoch_test_sequence_accuracy"]) == m["epochs"]
    assert m["long_accuracy"] < 0.5  # the mirror learned for 12 letters does not carry over to 18
    s = load_session(out)
    model = Trainer(s.spec, probes=False, checkpoint=s.checkpoint).model
    x = Trainer(s.spec, probes=False).x_test
    with torch.no_grad():
        maps = model.attention_maps(x)
    blocks = [n for n in model.info.order if model.info.nodes[n].op == "transformer_block"]
    assert list(maps) == blocks == ["block_1", "block_2"] and maps["block_2"].shape == (len(x), 2, 12, 12)
    share = mirror_share(maps["block_2"])
    assert share.max() >= 0.5, share  # found ≥ 0.9 in seeds 0, 1, 2


def last_block(model, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad(), model.evaluating():
        return model.forward_all(x)["block_2"]


@pytest.mark.parametrize("kind", ["none", "sinusoidal"])
def test_without_positions_the_encoder_is_permutation_equivariant(kind):
    data = preset_dict("reverse-transformer")
    for node in data["model"]["nodes"]:
        if node["op"] == "positional":
            node["params"]["kind"] = kind
    tr = train(Trainer(parse_spec(data), probes=False), 20)  # past the initial weights
    x = tr.x_test[:64]
    perm = torch.randperm(x.shape[1], generator=torch.Generator().manual_seed(3))
    assert not torch.equal(perm, torch.arange(x.shape[1]))
    y, y_perm = last_block(tr.model, x), last_block(tr.model, x[:, perm])
    assert y.shape == (64, 12, 32)
    if kind == "none":  # attention and the per-step MLP see a set: the same outputs, in the permuted order
        torch.testing.assert_close(y_perm, y[:, perm], atol=1e-5, rtol=0)
    else:  # positions make order matter
        assert (y_perm - y[:, perm]).abs().max() > 0.1


def test_sort_transformer_learns_to_sort_with_a_warm_up_then_decay():
    spec = load_preset("sort-transformer")
    tr = Trainer(spec, probes=False)
    base, per_epoch = spec.optimizer.lr, tr.steps_per_epoch

    def rate() -> float:  # the rate the last step took
        return tr.optimizer.param_groups[0]["lr"]

    train(tr, 1)
    assert rate() == pytest.approx(base / (2 * per_epoch))  # the first step: 1/200 of the peak
    train(tr, per_epoch - 1)
    assert rate() == pytest.approx(base / 2)  # halfway up
    train(tr, per_epoch)
    assert rate() == pytest.approx(base)  # at the peak; the cosine decay starts
    train(tr, 400 - 2 * per_epoch)
    h = tr.history
    assert h["epoch_test_loss"][-1] < 0.25 * h["epoch_test_loss"][0]
    assert h["epoch_test_accuracy"][-1] >= 0.9  # found 0.97 to 0.98 after 300 steps


@pytest.fixture(scope="module")
def seq2seq() -> Trainer:
    spec = load_preset("reverse-seq2seq-attention")
    assert spec.training.teacher_forcing == 1.0  # always the true previous token while training
    return train(Trainer(spec, probes=False), 300)


def test_the_encoder_decoder_writes_the_reverse_greedily_looking_at_the_mirror(seq2seq):
    tr = seq2seq
    assert has_decoder(tr.model.info.nodes.values())
    assert tr.history["epoch_test_accuracy"][-1] >= 0.9  # greedy, token by token: found 0.98-0.99 after 300 steps
    with torch.no_grad():  # the decoder, fed the answer so far, writing letter t attends to input T-1-t
        maps = tr.model.attention_maps(tr.x_test, feed(tr.y_test, tr.bos))
    assert list(maps) == ["attend"] and maps["attend"].shape == (len(tr.x_test), 1, 10, 10)
    assert mirror_share(maps["attend"]).item() >= 0.5  # found 0.65 and 0.68 (a one-way GRU encoder: 0.12-0.32)


def test_beam_search_never_scores_below_greedy(seq2seq):
    tr = seq2seq
    x = tr.x_test
    with torch.no_grad(), tr.model.evaluating():
        greedy = decode(tr.model, x, tr.bos)
        beam = decode(tr.model, x, tr.bos, "beam", width=4)
    assert beam.tokens.shape == greedy.tokens.shape == (len(x), 10)
    assert (beam.logprob >= greedy.logprob - 1e-4).all(), (beam.logprob - greedy.logprob).min()
    assert (greedy.tokens == tr.y_test).float().mean() >= 0.9
