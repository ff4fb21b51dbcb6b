"""The adversarial probe: FGSM in raw pixel units on a trained digits CNN, headless."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import engine
import engine.probes.adversarial  # registers the probe (the package may not import it yet)
from engine.presets import load_preset
from engine.probes import ProbeRequest, applicable, run_probe


@pytest.fixture(scope="module")
def trained() -> engine.Trainer:
    torch.manual_seed(0)
    tr = engine.Trainer(load_preset("digits-cnn"), probes=False)
    for _ in tr.run(epochs=2):
        pass
    return tr


def probe(tr: engine.Trainer, eps: float | None, sample: int = 3) -> dict[str, np.ndarray]:
    return run_probe(tr.prober.ctx, "adversarial", tr.step, ProbeRequest(sample=sample, eps=eps)).arrays


def test_zero_eps_changes_nothing(trained):
    a = probe(trained, 0.0)
    raw = np.asarray(trained.data.meta["raw_test"])[3]
    np.testing.assert_array_equal(a["input"], raw)
    np.testing.assert_array_equal(a["perturbed"], a["input"])
    assert not a["perturbation"].any()
    assert a["accuracy_adv"] == a["accuracy"] and a["accuracy"] > 0.8  # two epochs learn the digits
    assert a["prediction_adv"] == a["prediction"] and a["label"] == trained.data.y_test[3]
    np.testing.assert_array_equal(a["probabilities_adv"], a["probabilities"])
    assert a["probabilities"].shape == (10,) and a["probabilities"].sum() == pytest.approx(1.0, abs=1e-5)
    assert a["eps"] == 0.0 and a["accuracy"].shape == ()


def test_the_attack_hurts_and_stays_in_bounds(trained):
    a = probe(trained, 0.2)
    assert a["accuracy_adv"] < a["accuracy"] - 0.2
    assert np.abs(a["perturbation"]).max() <= 0.2 + 1e-6
    assert a["perturbed"].min() >= 0.0 and a["perturbed"].max() <= 1.0
    np.testing.assert_allclose(a["perturbed"] - a["input"], a["perturbation"], atol=1e-7)
    # FGSM moves pixels by the full ε wherever the clamp lets it: somewhere, at least
    assert np.isclose(np.abs(a["perturbation"]), 0.2, atol=1e-6).any()
    assert a["probabilities_adv"][int(a["label"])] < a["probabilities"][int(a["label"])]
    small = probe(trained, 0.05)
    assert small["accuracy_adv"] > a["accuracy_adv"]  # a bigger step hurts more
    assert probe(trained, None)["eps"] == pytest.approx(0.1)  # the default


def test_the_model_is_left_exactly_as_it_was(trained):
    model = trained.model
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    grads = [p.grad for p in model.parameters()]
    grad_values = [None if g is None else g.clone() for g in grads]
    model.train()
    probe(trained, 0.2, sample=11)
    assert model.training and all(m.training for m in model.modules())
    after = model.state_dict()
    assert before.keys() == after.keys()
    for k, v in before.items():
        assert torch.equal(v, after[k]), k
    assert all(g is p.grad for g, p in zip(grads, model.parameters()))
    assert all(g is None and v is None or torch.equal(g, v) for g, v in zip(grads, grad_values))


@pytest.mark.parametrize("eps", [-0.01, 1.5, float("nan"), float("inf")])
def test_a_bad_eps_is_refused(trained, eps):
    with pytest.raises(KeyError, match="eps"):
        probe(trained, eps)


def test_a_sample_outside_the_test_set_is_refused(trained):
    with pytest.raises(KeyError, match="sample"):
        probe(trained, 0.1, sample=len(trained.data.y_test))


def test_only_image_sets_are_attacked(trained):
    assert "adversarial" in applicable(trained.info, trained.spec.dataset)
    spec = load_preset("tfp-circle")
    tr = engine.Trainer(spec, probes=False)
    assert "adversarial" not in applicable(tr.info, spec.dataset)
