"""The feature-map and kernel probes, against the model's own forward pass and weights."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import engine.probes.features  # noqa: F401  (registers the probes, whether or not the package lists it yet)
from engine import Trainer
from engine.check import parse_spec
from engine.presets import load_preset
from engine.probes import ProbeRequest, applicable, run_probe
from tests.conftest import spec_dict


@pytest.fixture(scope="module")
def cnn() -> Trainer:
    """A digits CNN a few steps into training (weights off their initial values)."""
    tr = Trainer(load_preset("digits-cnn"), probes=False)
    for _ in tr.run(steps=10, snapshot_every=1e9):
        pass
    return tr


def probe(tr: Trainer, name: str, request: ProbeRequest | None = None) -> dict[str, np.ndarray]:
    tr.prober.ctx.fresh()
    return run_probe(tr.prober.ctx, name, tr.step, request).arrays


def direct(tr: Trainer, layer: str, sample: int) -> np.ndarray:
    x = torch.from_numpy(tr.data.x_test)
    with torch.no_grad(), tr.model.evaluating():
        return tr.model.forward_all(x)[layer][sample].numpy()


@pytest.mark.parametrize(("sample", "layer"), [(None, None), (5, "conv_1"), (17, "pool_1"), (3, "conv_2"),
                                               (360, "pool_2")])
def test_feature_maps_are_the_layers_output_for_the_sample(cnn, sample, layer):
    a = probe(cnn, "feature_maps", ProbeRequest(sample=sample, layer=layer))
    row, name = sample or 0, layer or "conv_1"  # the defaults: the first test image, the first convolution
    expected = direct(cnn, name, row)
    assert a["maps"].dtype == np.float32 and a["maps"].shape == expected.shape == cnn.info.nodes[name].shape
    np.testing.assert_allclose(a["maps"], expected, rtol=1e-5, atol=1e-6)
    assert np.abs(a["maps"]).max() > 0
    np.testing.assert_array_equal(a["input"], cnn.data.meta["raw_test"][row])
    assert a["input"].shape == (1, 8, 8) and a["input"].dtype == np.float32
    assert a["layers"].tolist() == ["conv_1", "pool_1", "conv_2", "pool_2"] and a["layers"].dtype.kind == "U"
    assert a["layer"].tolist() == [name] and a["sample"].tolist() == [row]
    assert a["label"].tolist() == [int(cnn.data.y_test[row])]


def test_different_samples_give_different_maps(cnn):
    a, b = (probe(cnn, "feature_maps", ProbeRequest(sample=s))["maps"] for s in (0, 1))
    assert np.abs(a - b).max() > 1e-3


def test_bad_requests_name_the_choices(cnn):
    with pytest.raises(KeyError, match="conv_1, pool_1, conv_2, pool_2"):
        probe(cnn, "feature_maps", ProbeRequest(layer="dense_1"))  # a vector, not an image
    with pytest.raises(KeyError, match="nonsense.*conv_1, pool_1, conv_2, pool_2"):
        probe(cnn, "feature_maps", ProbeRequest(layer="nonsense"))
    with pytest.raises(KeyError, match="outside the test set"):
        probe(cnn, "feature_maps", ProbeRequest(sample=len(cnn.data.y_test)))


def test_kernels_are_the_first_convolutions_weights(cnn):
    a = probe(cnn, "kernels")
    w = cnn.model.layers["conv_1"].weight.detach().numpy()
    assert a["weights"].shape == (16, 1, 3, 3) and a["weights"].dtype == np.float32
    np.testing.assert_array_equal(a["weights"], w)
    assert a["node"].tolist() == ["conv_1"]
    a["weights"][:] = 0  # an owned copy: the model is untouched
    assert np.abs(cnn.model.layers["conv_1"].weight.detach().numpy()).max() > 0


def test_feature_maps_come_from_eval_mode_and_leave_the_mode_alone():
    """Dropout after conv_1: in eval mode its maps are conv_1's, however the model was left."""
    data = spec_dict("digits-cnn")
    model = data["model"]
    model["nodes"].append({"id": "drop", "op": "dropout", "params": {"p": 0.5}, "position": [0.0, 100.0]})
    model["edges"] = [e for e in model["edges"] if e != ["conv_1", "pool_1"]] + [["conv_1", "drop"],
                                                                                  ["drop", "pool_1"]]
    tr = Trainer(parse_spec(data), probes=False)
    assert "drop" in probe(tr, "feature_maps", ProbeRequest())["layers"].tolist()
    tr.model.train()
    a = probe(tr, "feature_maps", ProbeRequest(sample=4, layer="drop"))
    assert tr.model.training
    np.testing.assert_allclose(a["maps"], direct(tr, "conv_1", 4), rtol=1e-6, atol=1e-7)
    assert (a["maps"] > 0).mean() > 0.2  # no unit was dropped


def test_which_models_the_probes_apply_to():
    cnn = Trainer(load_preset("digits-cnn"), probes=False)
    names = applicable(cnn.info, cnn.spec.dataset)
    assert "feature_maps" in names and "kernels" in names
    for preset in ("tfp-circle", "digits-mlp"):  # a 2-D toy set; images through a network without images inside
        tr = Trainer(load_preset(preset), probes=False)
        names = applicable(tr.info, tr.spec.dataset)
        assert "feature_maps" not in names and "kernels" not in names, preset
