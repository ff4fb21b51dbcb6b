"""The layer-stack view of a model graph: round trips, refusals and head fitting."""
from __future__ import annotations

import pytest

from engine.check import check_spec, parse_spec
from engine.datasets.toy2d import Toy2D
from engine.spec import ModelSpec
from engine.stack import Layer, Stack, fit_head, from_model, to_model, with_loss, with_stack
from tests.conftest import spec_dict


@pytest.mark.parametrize("stack", [
    Stack(()),
    Stack((Layer(4, "tanh"), Layer(2, "relu", 0.2, True)), "sigmoid", 1, "kaiming"),
    Stack((Layer(8, "gelu", 0.5), Layer(3, "linear", 0.0, True), Layer(1)), "softmax", 3, "xavier"),
])
def test_stack_round_trips_through_the_graph(stack):
    model = ModelSpec.model_validate(to_model(stack))
    assert from_model(model) == stack


def test_non_stacks_are_not_read_as_stacks():
    graph = to_model(Stack((Layer(4), Layer(4))))
    graph["nodes"].append({"id": "skip", "op": "add"})
    graph["edges"] += [["dense_1", "skip"], ["dense_2", "skip"]]
    assert from_model(ModelSpec.model_validate(graph)) is None
    relu_first = to_model(Stack((Layer(4),)))
    relu_first["nodes"][1]["params"]["bias"] = False
    assert from_model(ModelSpec.model_validate(relu_first)) is None


def test_fit_head_moves_between_binary_multiclass_and_regression():
    spec = parse_spec(spec_dict("tfp-circle"))
    three = fit_head(spec, Toy2D(name="spiral3", classes=3))
    check_spec(three)
    assert three.loss == "cross_entropy" and from_model(three.model).units_out == 3
    back = fit_head(three, Toy2D(name="xor"))
    check_spec(back)
    assert back.loss == "cross_entropy" and from_model(back.model).units_out == 2  # softmax suits 2 classes too
    plane = fit_head(back, Toy2D(name="plane"))
    check_spec(plane)
    assert plane.loss == "mse" and from_model(plane.model).output == "tanh"
    assert fit_head(spec, Toy2D(name="xor")).model == spec.model  # a head that suits is left alone


def test_with_loss_changes_the_head_only_when_needed():
    spec = parse_spec(spec_dict("tfp-circle"))
    bce = with_loss(spec, "bce")
    check_spec(bce)
    assert from_model(bce.model).output == "sigmoid"
    ce = with_loss(bce, "cross_entropy")
    check_spec(ce)
    assert from_model(ce.model).output == "softmax" and from_model(ce.model).units_out == 2
    assert with_loss(ce, "mse").model == ce.model  # mse fits a softmax output


def test_with_stack_keeps_everything_else():
    spec = parse_spec(spec_dict("spiral"))
    edited = with_stack(spec, Stack((Layer(3, "relu"),), "tanh", 1, "xavier"))
    check_spec(edited)
    assert edited.dataset == spec.dataset and edited.optimizer == spec.optimizer
    assert [n.id for n in edited.model.nodes] == ["input", "dense_1", "dense_2", "output"]
