"""How an epoch's training loss and accuracy are measured: image sets take the running mean over the epoch's own
steps (DataFamily.running_train_metrics), 2-D sets a full pass; both resume bit for bit from a file saved
mid-epoch."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from engine import Trainer
from engine.errors import SessionFileError
from engine.presets import load_preset
from engine.session import load_session, save_session


def small(preset: str, samples: int = 300):
    spec = load_preset(preset)
    return spec.model_copy(update={"dataset": spec.dataset.model_copy(update={"samples": samples})})


def test_an_image_epochs_train_metrics_are_the_mean_over_its_own_steps():
    tr = Trainer(small("digits-mlp"), probes=False)
    assert tr.running
    for _ in tr.run(epochs=2, snapshot_every=1e9):
        pass
    steps, bs, n = tr.history["step_loss"], tr.spec.training.batch_size, tr.n_train
    per_epoch = tr.steps_per_epoch
    for e in range(2):
        losses = steps[e * per_epoch:(e + 1) * per_epoch]
        sizes = [bs] * (per_epoch - 1) + [n - bs * (per_epoch - 1)]  # the last batch holds the rest
        assert tr.history["epoch_train_loss"][e] == pytest.approx(sum(v * s for v, s in zip(losses, sizes)) / n,
                                                                  rel=1e-12)
        acc = tr.history["epoch_train_accuracy"][e]
        assert 0 < acc <= 1 and abs(acc * n - round(acc * n)) < 1e-9  # a count of training samples
    # validation and test are still scored in full, as `evaluate` scores them
    full = tr.evaluate()
    assert tr.history["epoch_test_loss"][-1] == pytest.approx(full["test_loss"], rel=1e-6)
    assert tr.history["epoch_val_accuracy"][-1] == pytest.approx(full["val_accuracy"])


def test_a_2d_epoch_is_still_a_full_pass_as_tensorflow_playground_measures_it():
    tr = Trainer(load_preset("xor"), probes=False)
    assert not tr.running
    for _ in tr.run(epochs=1, snapshot_every=1e9):
        pass
    assert tr.history["epoch_train_loss"][-1] == pytest.approx(tr.evaluate()["train_loss"], rel=1e-6)


def test_an_image_run_saved_mid_epoch_resumes_its_running_metrics_bit_for_bit(tmp_path):
    spec = small("digits-mlp")
    straight = Trainer(spec, probes=False)
    for _ in straight.run(epochs=3, snapshot_every=1e9):
        pass
    half = Trainer(spec, probes=False)
    for _ in half.run(steps=straight.steps_per_epoch + 3, snapshot_every=1e9):
        pass
    assert half.checkpoint().epoch_correct > 0
    save_session(tmp_path / "half.dlp", half.spec, half.checkpoint())
    s = load_session(tmp_path / "half.dlp")
    again = Trainer(s.spec, probes=False, checkpoint=s.checkpoint)
    for _ in again.run(epochs=2, snapshot_every=1e9):
        pass
    for key in ("epoch_train_loss", "epoch_train_accuracy", "epoch_val_loss", "epoch_test_accuracy"):
        np.testing.assert_array_equal(again.history[key], straight.history[key])


def test_a_file_claiming_more_correct_samples_than_its_steps_saw_is_refused(tmp_path):
    tr = Trainer(small("digits-mlp"), probes=False)
    for _ in tr.run(steps=2, snapshot_every=1e9):
        pass
    path = tmp_path / "s.dlp"
    save_session(path, tr.spec, tr.checkpoint())
    with zipfile.ZipFile(path) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    manifest = json.loads(members["manifest.json"])
    manifest["state"]["epoch_correct"] = 2 * tr.spec.training.batch_size + 1
    members["manifest.json"] = json.dumps(manifest).encode()
    bad = tmp_path / "bad.dlp"
    with zipfile.ZipFile(bad, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    with pytest.raises(SessionFileError, match="state.epoch_correct 65 cannot come from 2 steps of 32"):
        load_session(bad)
