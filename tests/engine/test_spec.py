from __future__ import annotations

import copy
import json

import pytest

from engine.check import load_spec_json, parse_spec
from engine.errors import SpecError
from engine.presets import load_preset, preset_names
from engine.spec import FORMAT_VERSION, MIGRATIONS
from tests.conftest import spec_dict


def test_every_preset_validates_and_required_presets_exist():
    names = preset_names()
    for required in ("tfp-circle", "xor", "gauss", "spiral", "spiral3", "moons", "plane", "multigauss"):
        assert required in names
    for name in names:
        spec = load_preset(name)
        assert spec.format_version == FORMAT_VERSION


def test_tfp_circle_matches_tensorflow_playground_defaults():
    spec = load_preset("tfp-circle")
    assert spec.dataset.name == "circle" and spec.dataset.noise == 0 and spec.dataset.train_fraction == 0.5
    dense = [n for n in spec.model.nodes if n.op == "dense"]
    assert [n.params["units"] for n in dense] == [4, 2, 1]
    assert [n.params["activation"] for n in dense[:2]] == ["tanh", "tanh"]
    out = next(n for n in spec.model.nodes if n.op == "output")
    assert out.params["activation"] == "tanh" and spec.loss == "mse"
    assert spec.optimizer.kind == "sgd" and spec.optimizer.lr == 0.03 and spec.training.batch_size == 10


@pytest.mark.parametrize("section, value, path", [
    ("dataset", {"noise": 80}, "dataset.toy2d.noise"),
    ("dataset", {"samples": -5}, "dataset.toy2d.samples"),
    ("dataset", {"name": "donut"}, "dataset.toy2d.name"),
    ("dataset", {"features": ["x1", "x1"]}, "dataset.toy2d.features"),
    ("dataset", {"features": ["x3"]}, "dataset.toy2d.features[0]"),
    ("dataset", {"classes": 4}, "dataset.toy2d"),
    ("training", {"batch_size": 0}, "training.batch_size"),
    ("training", {"batch_size": 4096}, "training.batch_size"),
    ("training", {"batch_size": "ten"}, "training.batch_size"),
    ("training", {"colour": "red"}, "training.colour"),
    ("optimizer", {"kind": "sgd", "lr": -1}, "optimizer.sgd.lr"),
    ("optimizer", {"kind": "lbfgs"}, "optimizer"),
    ("optimizer", {"kind": "sgd", "momentum": 0.9}, "optimizer.sgd.momentum"),
    ("regularization", {"l2": -0.1}, "regularization.l2"),
    ("loss", "hinge", "loss"),
])
def test_invalid_fields_name_their_path(section, value, path):
    with pytest.raises(SpecError) as info:
        parse_spec(spec_dict(**{section: value}))
    assert info.value.what == path, str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_top_level_field_is_rejected():
    data = spec_dict()
    data["colour"] = "blue"
    with pytest.raises(SpecError, match="colour: unknown field"):
        parse_spec(data)


def test_spec_must_be_an_object():
    with pytest.raises(SpecError, match="must be a JSON object"):
        parse_spec([1, 2, 3])


def test_newer_format_is_refused_with_update_hint():
    with pytest.raises(SpecError, match="newer than this DL Playground reads"):
        parse_spec(spec_dict(format_version=FORMAT_VERSION + 1))


def test_migrations_run_in_order(monkeypatch):
    # A future format 3 renames `name` to `title`; a format-1 file must come through the whole chain intact.
    seen = []

    def one_to_two(d):
        seen.append(d["format_version"])
        d["title"] = d.pop("name")
        return d

    monkeypatch.setattr("engine.spec.FORMAT_VERSION", 3)
    monkeypatch.setitem(MIGRATIONS, 2, one_to_two)
    from engine.spec import migrate
    out = migrate(spec_dict(format_version=1))
    assert seen == [2] and out["format_version"] == 3 and out["title"] == "tfp-circle"


def test_format_1_vae_keeps_its_beta_in_regularization():
    """Format 1 kept β in the VAE's sampling block; format 2 reads it from regularization.beta (live)."""
    nodes = [{"id": "input", "op": "input"}, {"id": "mu", "op": "dense", "params": {"units": 2}},
             {"id": "lv", "op": "dense", "params": {"units": 2}},
             {"id": "z", "op": "reparam", "params": {"beta": 0.25}},
             {"id": "dec", "op": "dense", "params": {"units": 1}}, {"id": "output", "op": "output"}]
    edges = [["input", "mu"], ["input", "lv"], ["mu", "z"], ["lv", "z"], ["z", "dec"], ["dec", "output"]]
    old = spec_dict(format_version=1, model={"nodes": nodes, "edges": edges})
    before = copy.deepcopy(old)
    spec = parse_spec(old)
    assert old == before  # the caller's dict is left alone
    assert spec.regularization.beta == 0.25 and spec.format_version == FORMAT_VERSION == 2
    assert next(n for n in spec.model.nodes if n.id == "z").params == {}
    with pytest.raises(SpecError, match=r"model.nodes\[3\].params.beta"):  # a format-2 file has no β there
        parse_spec({**old, "format_version": 2})


def test_bad_json_file_gives_line_and_column(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text('{"dataset": {"name": "circle",,}}')
    with pytest.raises(SpecError) as info:
        load_spec_json(p)
    assert info.value.what == str(p) and "line 1" in info.value.why  # the path as given, not only its name


def test_spec_round_trips_through_json(tmp_path):
    spec = load_preset("spiral3")
    p = tmp_path / "s.json"
    p.write_text(json.dumps(spec.model_dump(mode="json")))
    assert load_spec_json(p) == spec
