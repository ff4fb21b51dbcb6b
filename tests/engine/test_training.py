from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine.check import parse_spec
from engine.optimizers import OPTIMIZERS, SGD, Adam
from engine.presets import load_preset, mlp
from engine.schedules import Cosine, Exponential, StepDecay, WarmupCosine, lr_factor
from engine.session import load_session, save_session
from engine.train.regularizers import penalty
from engine.train.snapshot import Configure
from engine.train.trainer import Trainer
from tests.conftest import spec_dict


def train(trainer, **limit):
    snaps = list(trainer.run(**limit))
    return snaps[-1]


def weights(trainer):
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


def test_tfp_circle_reaches_95_percent():
    tr = Trainer(load_preset("tfp-circle"), probes=False)
    train(tr, epochs=300)
    assert tr.evaluate()["test_accuracy"] >= 0.95
    assert tr.history["epoch_train_loss"][-1] < tr.history["epoch_train_loss"][0] / 10


def test_spiral_reaches_90_percent():
    tr = Trainer(load_preset("spiral"), probes=False)
    train(tr, epochs=200)
    assert tr.evaluate()["test_accuracy"] >= 0.90


@pytest.mark.parametrize("name", ["xor", "gauss", "spiral3", "moons", "plane", "multigauss"])
def test_every_preset_learns(name):
    tr = Trainer(load_preset(name), probes=False)
    before = tr.evaluate()["train_loss"]
    train(tr, epochs=15)
    assert tr.evaluate()["train_loss"] < 0.7 * before


def test_every_step_and_epoch_is_recorded():
    tr = Trainer(load_preset("tfp-circle"), probes=False)
    train(tr, epochs=3, )
    assert tr.steps_per_epoch == 25 and tr.step == 75 and tr.epoch == 3
    assert len(tr.history["step_loss"]) == 75
    assert all(len(tr.history[k]) == 3 for k in ("epoch_train_loss", "epoch_test_loss", "epoch_test_accuracy"))


def test_same_seed_same_losses_bit_for_bit():
    a = Trainer(load_preset("spiral3"), probes=False)
    b = Trainer(load_preset("spiral3"), probes=False)
    train(a, epochs=2)
    train(b, epochs=2)
    assert a.history["step_loss"] == b.history["step_loss"]
    c = Trainer(parse_spec(spec_dict("spiral3", training={"seed": 1})), probes=False)
    train(c, epochs=2)
    assert c.history["step_loss"] != a.history["step_loss"]


def resumable_spec():
    # Dropout, batch norm, Adam, a schedule and early stopping: every kind of state a resume must carry.
    model = mlp([8, 8], "relu", "sigmoid", init="kaiming", dropout=0.2, batch_norm=True)
    return parse_spec(spec_dict(
        "moons", model=model, optimizer={"kind": "adam", "lr": 0.01},
        schedule={"kind": "cosine", "total_epochs": 10},
        regularization={"l2": 0.001, "weight_decay": 0.01, "grad_clip": 1.0,
                        "early_stopping": {"patience": 50, "restore_best": True}},
    ))


def test_train_n_save_resume_n_equals_2n_straight(tmp_path):
    n = 70  # crosses an epoch boundary (25 steps each) and stops mid-epoch
    straight = Trainer(resumable_spec(), probes=False)
    train(straight, steps=2 * n)

    first = Trainer(resumable_spec(), probes=False)
    train(first, steps=n)
    path = tmp_path / "half.dlp"
    save_session(path, first.spec, first.checkpoint())
    loaded = load_session(path)
    second = Trainer(loaded.spec, probes=False, checkpoint=loaded.checkpoint)
    train(second, steps=n)

    assert second.step == straight.step == 2 * n
    assert second.history["step_loss"] == straight.history["step_loss"]  # every step, exactly
    assert second.history["epoch_test_loss"] == straight.history["epoch_test_loss"]
    for k, v in straight.model.state_dict().items():
        assert torch.equal(second.model.state_dict()[k], v), k


def test_live_learning_rate_change_keeps_weights_and_counts():
    tr = Trainer(load_preset("tfp-circle"), probes=False)
    gen = tr.run(epochs=4, snapshot_every=0)
    for snap in gen:
        if snap.step >= 30:
            break
    step, w = tr.step, weights(tr)
    tr.post(Configure(optimizer=SGD(lr=0.1)))
    next(gen)
    assert tr.lr == 0.1 and all(g["lr"] == 0.1 for g in tr.optimizer.param_groups)
    assert tr.step == step + 1  # continued, not reset
    gen.close()
    assert tr.spec.optimizer.lr == 0.1
    # one SGD step from the old weights, not a fresh start
    assert any(not torch.equal(w[k], v) for k, v in tr.model.state_dict().items())
    assert max((w[k] - v).abs().max().item() for k, v in tr.model.state_dict().items()) < 0.5


def test_switching_optimizer_kind_keeps_weights():
    tr = Trainer(load_preset("tfp-circle"), probes=False)
    train(tr, epochs=1)
    w = weights(tr)
    tr.configure(Configure(optimizer=Adam(lr=0.005)))
    assert isinstance(tr.optimizer, torch.optim.Adam) and tr.lr == 0.005
    assert all(torch.equal(w[k], v) for k, v in tr.model.state_dict().items())
    train(tr, epochs=1)
    assert tr.epoch == 2


def test_divergence_stops_at_the_step_and_keeps_history():
    spec = parse_spec(spec_dict("plane", optimizer={"kind": "sgd", "lr": 9.0}, model=mlp([8, 8], "relu", "linear")))
    tr = Trainer(spec, probes=False)
    snap = train(tr, epochs=20)
    assert snap.status == "diverged" and tr.status == "diverged"
    assert f"step {tr.step + 1}" in tr.message and "lower learning rate" in tr.message
    assert len(tr.history["step_loss"]) == tr.step > 0
    assert all(math.isfinite(v) for v in tr.history["step_loss"])
    assert all(torch.isfinite(p).all() for p in tr.model.parameters())


def test_early_stopping_restores_best_weights():
    spec = parse_spec(spec_dict("tfp-circle", regularization={"early_stopping": {"patience": 3, "min_delta": 10.0}}))
    tr = Trainer(spec, probes=False)
    snap = train(tr, epochs=50)
    # min_delta of 10 means no epoch after the first counts as an improvement
    assert snap.status == "early_stopped" and tr.epoch == 4 and "epoch 1" in tr.message
    best = tr.best_weights
    assert all(torch.equal(best[k], v) for k, v in tr.model.state_dict().items())


def test_l1_l2_penalties_exact():
    torch.manual_seed(0)
    ws = [torch.randn(4, 3), torch.randn(2, 4)]
    expected = 0.01 * sum(w.abs().sum() for w in ws) + 0.02 * sum((w ** 2).sum() for w in ws)
    torch.testing.assert_close(penalty(ws, 0.01, 0.02), expected, rtol=1e-7, atol=0)
    assert penalty(ws, 0.0, 0.0) is None


@pytest.mark.parametrize("l1, l2", [(0.01, 0.0), (0.0, 0.05), (0.02, 0.03)])
def test_penalty_enters_the_gradient_for_weights_not_biases(l1, l2):
    spec = parse_spec(spec_dict("tfp-circle", regularization={"l1": l1, "l2": l2}))
    tr = Trainer(spec, probes=False)
    ref = Trainer(load_preset("tfp-circle"), probes=False)  # same init, no penalty
    w0 = weights(tr)
    train(tr, steps=1)
    train(ref, steps=1)
    lr = 0.03
    for name, before in w0.items():
        data_step = ref.model.state_dict()[name] - before  # = −lr·∂L/∂w
        if name.endswith("weight"):
            expected = before + data_step - lr * (l1 * torch.sign(before) + 2 * l2 * before)
        else:
            expected = before + data_step
        torch.testing.assert_close(tr.model.state_dict()[name], expected, rtol=0, atol=1e-7)


def test_decoupled_weight_decay_spares_biases():
    spec = parse_spec(spec_dict("tfp-circle", regularization={"weight_decay": 0.5}))
    tr, ref = Trainer(spec, probes=False), Trainer(load_preset("tfp-circle"), probes=False)
    w0 = weights(tr)
    train(tr, steps=1)
    train(ref, steps=1)
    for name, before in w0.items():
        data_step = ref.model.state_dict()[name] - before
        factor = 1 - 0.03 * 0.5 if name.endswith("weight") else 1.0
        torch.testing.assert_close(tr.model.state_dict()[name], before * factor + data_step, rtol=0, atol=1e-7)


def test_gradient_clipping_scales_the_step():
    spec = parse_spec(spec_dict("tfp-circle", regularization={"grad_clip": 1e-3}))
    tr, ref = Trainer(spec, probes=False), Trainer(load_preset("tfp-circle"), probes=False)
    w0 = weights(tr)
    train(tr, steps=1)
    train(ref, steps=1)
    steps = {k: ref.model.state_dict()[k] - w0[k] for k in w0}
    norm = torch.sqrt(sum((s ** 2).sum() for s in steps.values())) / 0.03  # the unclipped gradient norm
    scale = 1e-3 / norm
    assert scale < 1
    for k, before in w0.items():
        torch.testing.assert_close(tr.model.state_dict()[k], before + steps[k] * scale, rtol=1e-4, atol=1e-8)


@pytest.mark.parametrize("kind", sorted(OPTIMIZERS))
def test_every_optimizer_lowers_the_loss(kind):
    lr = {"sgd": 0.03, "momentum": 0.01, "nesterov": 0.01, "adagrad": 0.05}.get(kind, 0.01)
    extra = {"regularization": {"weight_decay": 0.01}} if kind == "adamw" else {}
    tr = Trainer(parse_spec(spec_dict("tfp-circle", optimizer={"kind": kind, "lr": lr}, **extra)), probes=False)
    before = tr.evaluate()["train_loss"]
    train(tr, epochs=20)
    assert tr.evaluate()["train_loss"] < 0.8 * before


def test_schedules():
    spe = 10
    assert lr_factor(StepDecay(every_epochs=2, gamma=0.5), 39, spe) == 0.5
    assert lr_factor(StepDecay(every_epochs=2, gamma=0.5), 40, spe) == 0.25
    assert lr_factor(Exponential(gamma=0.9), 25, spe) == pytest.approx(0.81)
    assert lr_factor(Cosine(total_epochs=10), 0, spe) == 1.0
    assert lr_factor(Cosine(total_epochs=10), 50, spe) == pytest.approx(0.5)
    assert lr_factor(Cosine(total_epochs=10, min_factor=0.1), 500, spe) == pytest.approx(0.1)
    w = WarmupCosine(warmup_epochs=2, total_epochs=12)
    assert lr_factor(w, 0, spe) == pytest.approx(1 / 20) and lr_factor(w, 19, spe) == 1.0
    assert lr_factor(w, 20, spe) == 1.0 and lr_factor(w, 70, spe) == pytest.approx(0.5)


def test_schedule_drives_the_optimizer():
    tr = Trainer(parse_spec(spec_dict("tfp-circle", schedule={"kind": "step", "every_epochs": 1, "gamma": 0.5})),
                 probes=False)
    train(tr, epochs=2)
    train(tr, steps=1)
    assert tr.optimizer.param_groups[0]["lr"] == pytest.approx(0.03 * 0.25)


def test_reset_restarts_from_the_same_initial_weights():
    tr = Trainer(load_preset("tfp-circle"), probes=False)
    w0 = weights(tr)
    train(tr, epochs=2)
    first = list(tr.history["step_loss"])
    tr.reset()
    assert tr.step == 0 and tr.history["step_loss"] == []
    assert all(torch.equal(w0[k], v) for k, v in tr.model.state_dict().items())
    train(tr, epochs=2)
    assert tr.history["step_loss"] == first


def test_snapshots_are_owned_deltas_that_cover_every_step():
    tr = Trainer(load_preset("tfp-circle"), probes=True)
    snaps = list(tr.run(epochs=5, snapshot_every=0))
    losses = np.concatenate([s.step_loss for s in snaps])
    assert losses.tolist() == tr.history["step_loss"]
    starts = [s.step_start for s in snaps]
    assert starts == sorted(starts) and starts[0] == 0
    # absorb: a latest-slot that drops undrawn snapshots still hands on every step
    merged = snaps[0]
    for s in snaps[1:]:
        merged = s.absorb(merged)
    assert merged.step_loss.tolist() == tr.history["step_loss"] and merged.step_start == 0
    assert merged.epochs["epoch_test_loss"].tolist() == tr.history["epoch_test_loss"]
    # owned copies: training on does not change what a snapshot holds
    held = snaps[-1].probes["boundary"].arrays["output"].copy()
    train(tr, epochs=5)
    assert np.array_equal(snaps[-1].probes["boundary"].arrays["output"], held)
    assert not np.array_equal(tr.probes["boundary"].arrays["output"], held)


def test_cuda_request_without_cuda_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    from engine.errors import SpecError
    with pytest.raises(SpecError, match="CUDA is not available"):
        Trainer(parse_spec(spec_dict("tfp-circle", training={"device": "cuda"})))


@pytest.mark.parametrize("clip", [None, 1.0])
def test_non_finite_gradient_stops_before_the_update(clip):
    spec = parse_spec(spec_dict("tfp-circle", regularization={"grad_clip": clip}))
    tr = Trainer(spec, probes=False)
    train(tr, steps=3)
    w = weights(tr)
    tr.params[0].register_hook(lambda g: torch.full_like(g, float("inf")))  # finite loss, infinite gradient
    snap = train(tr, steps=5)
    assert snap.status == "diverged" and "gradient became non-finite" in tr.message and "step 4" in tr.message
    assert tr.step == 3 and len(tr.history["step_loss"]) == 3
    assert all(torch.equal(w[k], v) for k, v in tr.model.state_dict().items())  # the bad update never happened
