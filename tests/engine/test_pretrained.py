"""Blocks that start from trained weights shipped with the app, and the transfer-learning preset built on them:
shapes-cnn's convolutions, frozen, with a new head for the digits scaled to 28×28."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from engine import Trainer
from engine.datasets import make_dataset
from engine.datasets.images import Images, preprocess, rescale
from engine.errors import SpecError
from engine.presets import load_preset
from engine.pretrained import block_state, describe, pretrained_names
from engine.probes import ProbeRequest, run_probe
from engine.session import load_session, save_session
from engine.spec import SessionSpec
from tests.engine.test_freeze import with_nodes

CONVS = ("conv_1", "conv_2", "conv_3")


def test_the_shipped_shapes_cnn_weights_are_a_trained_shapes_cnn():
    assert "shapes-cnn" in pretrained_names()
    meta = describe("shapes-cnn")
    assert meta["preset"] == "shapes-cnn" and float(meta["test_accuracy"]) >= 0.97
    tr = Trainer(load_preset("shapes-cnn"), probes=False)
    before = tr.evaluate()["test_accuracy"]
    with torch.no_grad():
        for node in ("conv_1", "conv_2", "conv_3", "dense"):
            for key, value in block_state("shapes-cnn", node).items():
                tr.model.layers[node].get_parameter(key).copy_(value)
    assert before < 0.5 and tr.evaluate()["test_accuracy"] >= 0.97  # random → the file's trained network


def test_the_transfer_preset_starts_from_the_trained_convolutions_and_keeps_them_frozen(tmp_path):
    spec = load_preset("digits-transfer")
    assert spec.dataset.size == 28 and [n.id for n in spec.model.nodes if n.frozen] == list(CONVS)
    tr = Trainer(spec, probes=False)
    assert tr.pretrained == list(CONVS)
    for node in CONVS:
        for key, value in block_state("shapes-cnn", node).items():
            assert torch.equal(tr.model.layers[node].get_parameter(key), value), (node, key)
    head0 = tr.model.layers["head"].weight.detach().clone()
    for _ in tr.run(epochs=5, snapshot_every=1e9):
        pass
    for node in CONVS:  # frozen: bit for bit the shipped weights after training
        assert torch.equal(tr.model.layers[node].weight, block_state("shapes-cnn", node)["weight"])
    assert not torch.equal(tr.model.layers["head"].weight, head0)
    transfer = tr.evaluate()["test_accuracy"]
    assert transfer >= 0.88
    # the same frozen body from random filters learns less in the same epochs: the trained start is what helps
    plain = Trainer(with_nodes(spec, **{n: {"pretrained": None} for n in CONVS}), probes=False)
    for _ in plain.run(epochs=5, snapshot_every=1e9):
        pass
    assert plain.pretrained == [] and plain.evaluate()["test_accuracy"] < transfer
    # a saved run reopens with its own weights (not the shipped ones again), and a reset starts trained again
    path = tmp_path / "transfer.dlp"
    save_session(path, tr.spec, tr.checkpoint())
    s = load_session(path)
    assert [n.pretrained for n in s.spec.model.nodes if n.id in CONVS] == ["shapes-cnn"] * 3
    again = Trainer(s.spec, probes=False, checkpoint=s.checkpoint)
    assert torch.equal(again.model.layers["head"].weight, tr.model.layers["head"].weight)
    again.reset()
    assert torch.equal(again.model.layers["conv_2"].weight, block_state("shapes-cnn", "conv_2")["weight"])
    assert torch.equal(again.model.layers["head"].weight, head0)


def test_a_block_that_does_not_fit_its_trained_start_is_the_specs_error_naming_the_field():
    spec = with_nodes(load_preset("digits-transfer"), conv_2={"params": {"filters": 8, "kernel": 3, "padding": 1,
                                                                        "activation": "relu"}})
    index = [n.id for n in spec.model.nodes].index("conv_2")
    with pytest.raises(SpecError, match=r"model\.nodes\[\d+\]\.pretrained.*conv_2\.weight is 8×16×3×3 here and "
                                        r"32×16×3×3 in shapes-cnn") as err:
        Trainer(spec, probes=False)
    assert err.value.what == f"model.nodes[{index}].pretrained"
    with pytest.raises(SpecError, match="shapes-cnn has no trained block 'head'"):
        Trainer(with_nodes(load_preset("digits-transfer"), head={"pretrained": "shapes-cnn"}), probes=False)
    data = load_preset("digits-transfer").model_dump(mode="json")
    data["model"]["nodes"][1]["pretrained"] = "../../etc/passwd"
    with pytest.raises(ValueError, match="no trained network '../../etc/passwd' ships with the app"):
        SessionSpec.model_validate(data)


def test_a_frozen_batch_norm_keeps_its_running_statistics():
    spec = with_nodes(load_preset("shapes-resnet"), bn_a={"frozen": True})
    spec = spec.model_copy(update={"dataset": spec.dataset.model_copy(update={"samples": 200})})
    tr = Trainer(spec, probes=False)
    before = {k: v.clone() for k, v in tr.model.layers["bn_a"].state_dict().items()}
    for _ in tr.run(steps=10, snapshot_every=1e9):
        pass
    for k, v in tr.model.layers["bn_a"].state_dict().items():
        assert torch.equal(v, before[k]), k
    assert not torch.equal(tr.model.layers["bn_b"].running_mean, torch.zeros_like(tr.model.layers["bn_b"].running_mean))
    assert tr.model.training and not tr.model.layers["bn_a"].training


def test_digits_scaled_to_28_keep_their_own_pictures_and_a_drawing_goes_the_same_way():
    data = make_dataset(Images(name="digits", size=28))
    native, raw = data.meta["native_test"], data.meta["raw_test"]
    assert native.shape[1:] == (1, 8, 8) and raw.shape[1:] == (1, 28, 28) == data.x_test.shape[1:]
    np.testing.assert_array_equal(rescale(native, 28), raw)
    np.testing.assert_array_equal(preprocess(raw, data.meta["mean"], data.meta["std"]), data.x_test)
    with pytest.raises(ValueError, match="size: only the digits can be scaled"):
        Images(name="shapes", size=8)
    # a drawing is made at the digits' own 8×8 and scaled exactly as they are
    tr = Trainer(load_preset("digits-transfer"), probes=False)
    a = run_probe(tr.prober.ctx, "drawing", 0, ProbeRequest(pixels=tuple(native[7, 0].ravel().tolist()))).arrays
    np.testing.assert_array_equal(a["model_input"], data.x_test[7])
    with pytest.raises(KeyError, match=r"has 64 pixels \(1 × 8 × 8\)"):
        run_probe(tr.prober.ctx, "drawing", 0, ProbeRequest(pixels=(0.0,) * 784))


def test_the_cli_trains_a_preset_into_weights_a_block_can_start_from(tmp_path):
    out = tmp_path / "w.safetensors"
    done = subprocess.run([sys.executable, "-m", "engine", "pretrain", "digits-mlp", "--epochs", "1", "--out",
                           str(out)], check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "digits-mlp, 1 epochs" in done.stdout
    header = json.loads(out.read_bytes()[8:8 + int.from_bytes(out.read_bytes()[:8], "little")])
    assert header["__metadata__"]["preset"] == "digits-mlp" and "layers.dense_1.weight" in header
