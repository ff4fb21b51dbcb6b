"""The registries hold what the rest reads: a new optimizer, dataset family or preset is one entry."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import TypeAdapter

from engine.check import parse_spec
from engine.datasets import FAMILIES, make_dataset
from engine.optimizers import OPTIMIZERS
from engine.presets import load_preset, preset_names
from engine.session import load_session, save_session
from engine.spec import OptimizerSpec, SessionSpec
from engine.train.snapshot import Configure
from engine.train.trainer import Trainer
from tests.conftest import spec_dict


def train(tr: Trainer, **limit: int) -> None:
    for _ in tr.run(**limit, snapshot_every=1e9):
        pass


@pytest.mark.parametrize("kind", sorted(OPTIMIZERS))
def test_every_optimizer_is_a_spec_kind_with_defaults_inside_its_ranges(kind):
    entry = OPTIMIZERS[kind]
    default = entry.spec()
    assert TypeAdapter(OptimizerSpec).validate_python({"kind": kind}) == default
    assert default.model_dump() == entry.spec.model_validate(default.model_dump()).model_dump()
    assert entry.label and entry.doc


@pytest.mark.parametrize("kind", ["nadam", "radam", "adamax"])
def test_new_optimizers_resume_bit_identically(kind, tmp_path):
    spec = parse_spec(spec_dict("moons", optimizer={"kind": kind, "lr": 0.01}))
    straight = Trainer(spec, probes=False)
    train(straight, steps=60)
    first = Trainer(spec, probes=False)
    train(first, steps=30)
    save_session(tmp_path / "s.dlp", first.spec, first.checkpoint())
    s = load_session(tmp_path / "s.dlp")
    second = Trainer(s.spec, probes=False, checkpoint=s.checkpoint)
    train(second, steps=30)
    assert second.history["step_loss"] == straight.history["step_loss"]
    assert type(second.optimizer) is OPTIMIZERS[kind].torch_class
    for k, v in straight.model.state_dict().items():
        assert torch.equal(second.model.state_dict()[k], v), k


def test_a_live_hyper_parameter_change_keeps_the_optimizer_state():
    spec = parse_spec(spec_dict("moons", optimizer={"kind": "nadam", "lr": 0.01}))
    tr = Trainer(spec, probes=False)
    train(tr, steps=20)
    state = {k: v.clone() for k, v in tr.optimizer.state_dict()["state"][0].items()}
    tr.configure(Configure(optimizer=OPTIMIZERS["nadam"].spec(lr=0.005, beta1=0.8)))
    group = tr.optimizer.param_groups[0]
    assert group["lr"] == 0.005 and group["betas"] == (0.8, 0.999)
    kept = tr.optimizer.state_dict()["state"][0]
    assert all(torch.equal(kept[k], v) for k, v in state.items())


def test_every_preset_belongs_to_the_family_that_lists_it():
    listed = {p: f.kind for f in FAMILIES.values() for p in f.presets}
    assert sorted(listed) == preset_names()
    for name, kind in listed.items():
        assert load_preset(name).dataset.kind == kind


@pytest.mark.parametrize("kind", sorted(FAMILIES))
def test_every_family_draws_its_variants_and_makes_its_data(kind):
    family = FAMILIES[kind]
    variants = family.variants()
    assert variants
    for name, spec in variants.items():
        picture = family.thumbnail(spec, 48)
        assert picture.shape == (48, 48, 3) and picture.dtype == np.uint8
        assert len(np.unique(picture.reshape(-1, 3), axis=0)) > 2, name  # the data shows, not a blank tile
        data = make_dataset(spec)
        assert data.x_train.shape[1:] == family.input_shape(spec), name
        assert spec.task in family.tasks
    default = SessionSpec.model_fields["dataset"].default_factory()
    assert default.kind == next(iter(FAMILIES))
