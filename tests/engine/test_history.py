"""Bounded history: recent values exact, older ones folded into (min, max) pairs; sessions keep both."""
from __future__ import annotations

import numpy as np
import pytest

from engine.presets import load_preset
from engine.session import load_session, save_session
from engine.train import history
from engine.train.history import BUCKET, History, Series
from engine.train.trainer import Trainer


def test_a_series_keeps_recent_values_exact_and_folds_older_ones():
    s = Series(keep=4 * BUCKET)
    values = np.sin(np.arange(20 * BUCKET) / 7.0)
    values[5] = np.nan  # a NaN does not hide its bucket's range
    for v in values:
        s.append(float(v))
    assert len(s) == len(values)
    assert 4 * BUCKET <= len(s.exact) < 8 * BUCKET  # bounded
    assert np.array_equal(s.since(s.start), values[s.start:])  # the recent part is exact
    pairs = np.asarray(s.folded).reshape(-1, 2)
    blocks = values[:s.start].reshape(-1, BUCKET)
    assert np.array_equal(pairs[:, 0], np.nanmin(blocks, axis=1)) and np.array_equal(pairs[:, 1], np.nanmax(blocks, axis=1))


def test_memory_per_step_is_bounded(monkeypatch):
    monkeypatch.setattr(history, "KEEP", 1024)
    h = History()
    for i in range(100_000):
        h.record_step(float(i))
    exact, folded = h.series["step_loss"].arrays()
    assert len(exact) < 2048 and len(folded) == 2 * (100_000 - len(exact)) // BUCKET
    assert h.steps() == 100_000


def test_a_long_run_saves_and_resumes_with_its_folded_history(monkeypatch, tmp_path):
    monkeypatch.setattr(history, "KEEP", 256)
    tr = Trainer(load_preset("tfp-circle"), probes=False)
    for _ in tr.run(steps=1500, snapshot_every=1e9):
        pass
    arrays = tr.history.arrays()
    assert "step_loss.folded" in arrays
    save_session(tmp_path / "long.dlp", tr.spec, tr.checkpoint())
    s = load_session(tmp_path / "long.dlp")
    for k, v in arrays.items():
        assert np.array_equal(s.checkpoint.history[k], v, equal_nan=True), k
    again = Trainer(s.spec, probes=False, checkpoint=s.checkpoint)
    for _ in again.run(steps=10, snapshot_every=1e9):
        pass
    assert again.history.steps() == 1510


@pytest.mark.parametrize("steps", [0, 7])
def test_snapshot_deltas_cover_every_exact_step(steps):
    tr = Trainer(load_preset("tfp-circle"), probes=False)
    snaps = list(tr.run(steps=steps + 30, snapshot_every=0))
    losses = np.concatenate([s.step_loss for s in snaps])
    assert losses.tolist() == tr.history["step_loss"]
