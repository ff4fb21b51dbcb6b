"""The probe registry: what each view draws, computed headless and checked with real assertions."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.check import parse_spec
from engine.cli import main
from engine.presets import load_preset, mlp
from engine.probes import PROBES, ProbeRequest, applicable, run_probe
from engine.session import save_session
from engine.train.trainer import Trainer
from tests.conftest import spec_dict


def train(tr: Trainer, **limit: int) -> None:
    for _ in tr.run(**limit, snapshot_every=1e9):
        pass


def relu_circle() -> Trainer:
    return Trainer(parse_spec(spec_dict("tfp-circle", model=mlp([6, 3], "relu", "tanh", init="kaiming"))))


def test_probes_describe_the_network():
    tr = relu_circle()
    first = tr.probe_now()["boundary"].arrays["output"]
    train(tr, epochs=30)
    p = {name: r.arrays for name, r in tr.probes.items()}
    assert all(r.step == tr.step for r in tr.probes.values())
    out = p["boundary"]["output"]
    assert out.shape == (1, 100, 100) and out.dtype == np.float32
    assert -1 <= out.min() and out.max() <= 1
    assert np.abs(out - first).max() > 0.1  # the boundary moved
    assert list(p["boundary"]["extent"]) == [-6.0, 6.0]
    assert set(p["neurons"]) == {"input", "dense_1", "dense_2", "dense_3"} and p["neurons"]["dense_1"].shape == (6, 24, 24)
    assert p["weights"]["dense_1"].shape == (6, 2) and p["weights"]["dense_2.bias"].shape == (3,)
    assert set(p["dead_units"]) == {"dense_1", "dense_2"} and all(0 <= v <= 1 for v in p["dead_units"].values())
    assert set(p["grad_norms"]) == {"dense_1", "dense_2", "dense_3"} and all(v >= 0 for v in p["grad_norms"].values())
    # the output heatmap agrees with the model at a grid corner: row 0, column 0 is (−6, −6)
    with torch.no_grad():
        z = tr.model(torch.tensor([[-6.0, -6.0]]))
    assert out[0, 0, 0] == pytest.approx(torch.tanh(z).item(), abs=1e-6)


def test_softmax_boundary_has_a_channel_per_class():
    tr = Trainer(load_preset("spiral3"))
    train(tr, steps=5)
    out = tr.probes["boundary"].arrays["output"]
    assert out.shape == (3, 100, 100)
    np.testing.assert_allclose(out.sum(axis=0), 1.0, atol=1e-5)


def test_the_trainer_runs_only_the_probes_asked_for():
    tr = Trainer(load_preset("tfp-circle"), probes=False)
    train(tr, steps=20)
    assert tr.probes == {}
    tr.want_probes({"grad_norms", "dead_units"})  # dead_units does not apply: tanh has no dead units
    train(tr, steps=20)
    assert set(tr.probes) == {"grad_norms"} and tr.probes["grad_norms"].step == tr.step
    with pytest.raises(KeyError, match="unknown probe"):
        tr.want_probes({"nonsense"})


def test_which_probes_apply():
    tr = relu_circle()
    assert applicable(tr.info, tr.spec.dataset) == ["boundary", "neurons", "weights", "grad_norms", "dead_units",
                                                      "embedding"]
    tanh = Trainer(load_preset("tfp-circle"), probes=False)
    assert "dead_units" not in tanh.applicable_probes


def test_probing_leaves_the_run_bit_identical():
    a, b = relu_circle(), Trainer(relu_circle().spec, probes=False)
    for tr in (a, b):
        train(tr, epochs=3)
    assert a.history["step_loss"] == b.history["step_loss"]


def test_grad_norms_of_a_reopened_session_come_from_the_training_set(tmp_path):
    tr = relu_circle()
    train(tr, epochs=2)
    save_session(tmp_path / "s.dlp", tr.spec, tr.checkpoint())
    from engine.session import load_session

    s = load_session(tmp_path / "s.dlp")
    fresh = Trainer(s.spec, probes=False, checkpoint=s.checkpoint)
    result = run_probe(fresh.prober.ctx, "grad_norms", fresh.step)
    assert set(result.arrays) == {"dense_1", "dense_2", "dense_3"}
    assert all(v > 0 for v in result.arrays.values())
    assert all(p.grad is None for p in fresh.model.parameters())  # computed aside, nothing left behind


def test_neurons_takes_a_layer():
    tr = relu_circle()
    one = run_probe(tr.prober.ctx.fresh(), "neurons", 0, ProbeRequest(layer="dense_2"))
    assert list(one.arrays) == ["dense_2"] and one.arrays["dense_2"].shape == (3, 24, 24)
    with pytest.raises(KeyError, match="not a feature-vector layer"):
        run_probe(tr.prober.ctx.fresh(), "neurons", 0, ProbeRequest(layer="nope"))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("probe") / "s.dlp"
    tr = relu_circle()
    train(tr, epochs=5)
    save_session(path, tr.spec, tr.checkpoint())
    for p in tr.model.parameters():
        p.grad = None  # as in a reopened file: gradient norms then come from the whole training set
    return path, tr


def _trained(tmp_path_factory, preset: str) -> tuple:
    """A preset's session after 20 steps, saved, and its trainer."""
    path = tmp_path_factory.mktemp("probe") / f"{preset}.dlp"
    tr = Trainer(load_preset(preset), probes=False)
    for _ in tr.run(steps=20):
        pass
    save_session(path, tr.spec, tr.checkpoint())
    return path, tr


@pytest.fixture(scope="module")
def saved_images(tmp_path_factory):
    """A digits CNN after a few steps: the image probes' session."""
    return _trained(tmp_path_factory, "digits-cnn")


@pytest.fixture(scope="module")
def saved_vae(tmp_path_factory):
    """A digits VAE after a few steps: the autoencoder probes' session."""
    return _trained(tmp_path_factory, "digits-vae-2d")


@pytest.fixture(scope="module")
def saved_transformer(tmp_path_factory):
    """A reverse transformer after a few steps: the attention, positional, token and sequence probes' session."""
    return _trained(tmp_path_factory, "reverse-transformer")


@pytest.fixture(scope="module")
def saved_recurrent(tmp_path_factory):
    """An LSTM counting zeros after a few steps: the recurrent probes' session."""
    return _trained(tmp_path_factory, "count-zeros-lstm")


@pytest.mark.parametrize("name", sorted(PROBES))
def test_every_probe_is_reachable_headless(saved, tmp_path, capsys, name, request):
    sessions = (lambda: saved, *(lambda f=f: request.getfixturevalue(f) for f in (
        "saved_images", "saved_vae", "saved_transformer", "saved_recurrent")))
    path, tr = next(s for s in (make() for make in sessions) if name in s[1].applicable_probes)
    assert name in tr.applicable_probes
    out = tmp_path / f"{name}.npz"
    assert main(["probe", str(path), "--probe", name, "--out", str(out), "--quiet"]) == 0
    with np.load(out) as npz:
        arrays = dict(npz)
    tr.prober.ctx.fresh()
    expected = run_probe(tr.prober.ctx, name, tr.step).arrays
    assert set(arrays) == set(expected) and arrays
    for key, value in expected.items():
        if value.dtype.kind in "US":  # names (a probe's layers)
            np.testing.assert_array_equal(arrays[key], value, err_msg=f"{name}/{key}")
        else:
            np.testing.assert_allclose(arrays[key], value, rtol=1e-5, atol=1e-6, err_msg=f"{name}/{key}")


def test_probe_cli_lists_and_refuses_clearly(saved, tmp_path, capsys):
    path, _ = saved
    assert main(["probe", str(path), "--list"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == ["boundary", "neurons", "weights", "grad_norms", "dead_units", "embedding"]
    assert main(["probe", str(path), "--probe", "bogus", "--out", str(tmp_path / "x.npz")]) == 2
    assert "unknown probe 'bogus'" in capsys.readouterr().err
    assert main(["probe", str(path), "--probe", "boundary", "--sample", "3", "--out", str(tmp_path / "x.npz")]) == 2
    assert "boundary does not take a sample" in capsys.readouterr().err
    assert main(["probe", "tfp-circle", "--probe", "dead_units", "--out", str(tmp_path / "x.npz")]) == 2
    assert "does not apply" in capsys.readouterr().err
    assert not (tmp_path / "x.npz").exists()
