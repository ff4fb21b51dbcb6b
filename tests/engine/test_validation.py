"""Image sets keep a validation set apart: it is scored every epoch, early stopping watches it (so the test set
stays unseen), and files saved before it existed still load."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np

from engine import Trainer
from engine.presets import load_preset
from engine.session import load_session, save_session
from engine.spec import EarlyStopping


def small_digits(**training):
    spec = load_preset("digits-mlp")
    return spec.model_copy(update={"dataset": spec.dataset.model_copy(update={"samples": 400}),
                                   "training": spec.training.model_copy(update=training)})


def test_every_epoch_scores_the_validation_set_apart_from_train_and_test():
    tr = Trainer(small_digits(), probes=False)
    for _ in tr.run(epochs=3, snapshot_every=1e9):
        pass
    assert (tr.n_train, tr.n_val, len(tr.data.y_test)) == (280, 40, 80)
    val_loss, val_acc = tr.history["epoch_val_loss"], tr.history["epoch_val_accuracy"]
    assert len(val_loss) == len(val_acc) == 3 and all(np.isfinite(val_loss)) and all(0 <= a <= 1 for a in val_acc)
    m = tr.evaluate()
    # each set's numbers are its own: the validation accuracy counts 40 images, so it is a multiple of 1/40
    assert abs(m["val_accuracy"] * 40 - round(m["val_accuracy"] * 40)) < 1e-6
    assert m["val_loss"] != m["test_loss"] and m["val_loss"] != m["train_loss"]


def test_early_stopping_watches_the_validation_loss_not_the_test_loss():
    spec = small_digits()
    spec = spec.model_copy(update={"regularization": spec.regularization.model_copy(
        update={"early_stopping": EarlyStopping(patience=2)})})
    tr = Trainer(spec, probes=False)
    for _ in tr.run(epochs=40, snapshot_every=1e9):
        pass
    val, test = tr.history["epoch_val_loss"], tr.history["epoch_test_loss"]
    assert tr.early.best == min(val) and tr.early.best != min(test)
    assert tr.early.best_epoch == int(np.argmin(val)) + 1
    if tr.status == "early_stopped":
        assert "validation loss has not improved" in tr.message


def test_a_2d_run_has_no_validation_set_and_its_series_are_nan():
    tr = Trainer(load_preset("xor"), probes=False)
    for _ in tr.run(epochs=2, snapshot_every=1e9):
        pass
    assert tr.n_val == 0 and "val_loss" not in tr.evaluate()
    assert all(np.isnan(tr.history["epoch_val_loss"]))


def test_a_file_saved_before_the_validation_series_loads_and_resumes(tmp_path):
    tr = Trainer(load_preset("xor"), probes=False)
    for _ in tr.run(epochs=3, snapshot_every=1e9):
        pass
    ck = tr.checkpoint()
    old = dataclasses.replace(ck, history={k: v for k, v in ck.history.items() if "_val_" not in k})
    save_session(tmp_path / "old.dlp", tr.spec, old)
    s = load_session(tmp_path / "old.dlp")
    assert len(s.checkpoint.history["epoch_val_loss"]) == 3 and np.isnan(s.checkpoint.history["epoch_val_loss"]).all()
    again = Trainer(s.spec, probes=False, checkpoint=s.checkpoint)
    for _ in again.run(epochs=1, snapshot_every=1e9):
        pass
    assert again.epoch == 4 and len(again.history["epoch_val_loss"]) == 4


def test_the_cli_reports_the_validation_numbers(tmp_path):
    spec = small_digits(epochs=2)
    src = tmp_path / "d.json"
    src.write_text(json.dumps(spec.model_dump(mode="json")))
    out = subprocess.run([sys.executable, "-m", "engine", "train", str(src), "--quiet",
                          "--metrics-json", str(tmp_path / "m.json")], check=False, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    m = json.loads((tmp_path / "m.json").read_text())
    assert 0 <= m["val_accuracy"] <= 1 and m["val_loss"] > 0 and len(m["history"]["epoch_val_loss"]) == 2
