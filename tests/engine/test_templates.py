"""Every template is a valid graph that builds and trains one step on random data of the kind it expects."""
from __future__ import annotations

import pytest

from engine.check import parse_spec
from engine.head import Head
from engine.templates import TEMPLATES, auto_layout
from engine.train.trainer import Trainer
from tests.conftest import spec_dict, train_one_step


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_template_builds_and_trains_one_step(name):
    template = TEMPLATES[name]
    model = template.model(Head("softmax", 2))
    train_one_step(model, (2,) if template.data == "session" else None)
    # Positions from the auto-layout: one column per generation, no two blocks on one spot.
    spots = [n.position for n in model.nodes]
    assert all(p is not None for p in spots) and len(set(spots)) == len(spots)


@pytest.mark.parametrize("name", ["mlp", "residual_mlp"])
def test_session_templates_fit_the_session_and_train(name):
    spec = parse_spec(spec_dict(model=TEMPLATES[name].model(Head("tanh")).model_dump(mode="json")))
    trainer = Trainer(spec, probes=False)
    list(trainer.run(epochs=20))
    assert trainer.history["epoch_train_loss"][-1] < trainer.history["epoch_train_loss"][0]


def test_auto_layout_is_layered_by_generation():
    m = auto_layout({"nodes": [{"id": i} for i in ("a", "b", "c", "d")],
                     "edges": [["a", "b"], ["a", "c"], ["b", "d"], ["c", "d"]]})
    pos = {n["id"]: n["position"] for n in m["nodes"]}
    assert pos["a"][0] < pos["b"][0] == pos["c"][0] < pos["d"][0]
    assert pos["b"][1] != pos["c"][1] and pos["a"][1] == pos["d"][1] == 0
