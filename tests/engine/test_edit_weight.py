"""Editing one weight by hand: it lands at the next step boundary, changes the model's output, keeps the run
going, and a bad edit is refused with the engine's error before it reaches the training thread."""
from __future__ import annotations

import math

import pytest
import torch

from engine import EditWeight, EngineError, Trainer
from engine.presets import load_preset


def test_edit_applies_between_steps_and_changes_the_output() -> None:
    tr = Trainer(load_preset("tfp-circle"), probes=False)
    key = next(k for k, _ in tr.model.named_parameters() if k.endswith("weight"))
    before = tr.model(tr.x_train[:5]).detach().clone()
    tr.post(EditWeight(key, (0, 1), 3.5))
    assert dict(tr.model.named_parameters())[key][0, 1].item() != 3.5  # queued, not applied
    tr.apply_commands()
    assert dict(tr.model.named_parameters())[key][0, 1].item() == 3.5
    assert not torch.equal(tr.model(tr.x_train[:5]).detach(), before)
    assert tr.train_step()  # training goes on from the edited model
    ck = tr.checkpoint()
    assert ck.weights[key][0, 1].item() != 0.0


@pytest.mark.parametrize("edit, words", [
    (EditWeight("layers.nope.weight", (0, 0), 1.0), "no parameter"),
    (EditWeight("{key}", (99, 0), 1.0), "outside"),
    (EditWeight("{key}", (0,), 1.0), "outside"),
    (EditWeight("{key}", (0, 0), math.nan), "finite"),
    (EditWeight("{key}", (0, 0), 1e39), "within"),  # beyond float32: it would become inf in the tensor
])
def test_bad_edits_are_refused(edit: EditWeight, words: str) -> None:
    tr = Trainer(load_preset("tfp-circle"), probes=False)
    key = next(k for k, _ in tr.model.named_parameters() if k.endswith("weight"))
    edit = EditWeight(edit.param.format(key=key), edit.index, edit.value)
    with pytest.raises(EngineError, match=words):
        tr.post(edit)
