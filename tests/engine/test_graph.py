from __future__ import annotations

import pytest
import torch

from engine.check import check_spec, parse_spec
from engine.errors import GraphError, SpecError
from engine.graph import MAX_PARAMS, GraphModule, analyse
from engine.ops import OPS, BuildContext, ShapeError
from engine.spec import ModelSpec
from tests.conftest import spec_dict


def model(nodes, edges):
    return {"nodes": nodes, "edges": edges}


def n(id, op, **params):
    return {"id": id, "op": op, "params": params}


def parse_model(m, **sections):
    return parse_spec(spec_dict(model=m, **sections))


def test_unknown_op_names_the_node():
    m = model([n("input", "input"), n("mystery", "wormhole"), n("output", "output")],
              [["input", "mystery"], ["mystery", "output"]])
    with pytest.raises(GraphError) as info:
        parse_model(m)
    assert info.value.what == "model.nodes[1].op" and "unknown op 'wormhole'" in info.value.why


def test_bad_parameter_names_the_field():
    m = model([n("input", "input"), n("d", "dense", units=0), n("output", "output")], [["input", "d"], ["d", "output"]])
    with pytest.raises(SpecError) as info:
        parse_model(m)
    assert info.value.what == "model.nodes[1].params.units"


def test_unknown_parameter_is_rejected():
    m = model([n("input", "input"), n("d", "dense", units=1, colour="red"), n("output", "output")],
              [["input", "d"], ["d", "output"]])
    with pytest.raises(SpecError, match=r"model.nodes\[1\].params.colour: unknown field"):
        parse_model(m)


def test_cycle_is_named():
    m = model([n("input", "input"), n("a", "dense", units=2), n("b", "add"), n("c", "dense", units=1),
               n("output", "output")],
              [["input", "a"], ["a", "b"], ["c", "b"], ["b", "c"], ["c", "output"]])
    with pytest.raises(GraphError, match="cycle") as info:
        parse_model(m)
    assert "b" in info.value.why and "c" in info.value.why


@pytest.mark.parametrize("drop, message", [("input", "no input node"), ("output", "no output node")])
def test_missing_input_or_output(drop, message):
    nodes = [n("input", "input"), n("d", "dense", units=1), n("output", "output")]
    nodes = [x for x in nodes if x["id"] != drop]
    edges = [e for e in [["input", "d"], ["d", "output"]] if drop not in e]
    with pytest.raises(GraphError, match=message):
        parse_model(model(nodes, edges))


def test_two_inputs_refused():
    m = model([n("input", "input"), n("input2", "input"), n("d", "dense", units=1), n("output", "output")],
              [["input", "d"], ["input2", "d"], ["d", "output"]])
    with pytest.raises(GraphError, match="2 input nodes"):
        parse_model(m)


def test_dangling_node_refused():
    m = model([n("input", "input"), n("d", "dense", units=1), n("side", "dense", units=3), n("output", "output")],
              [["input", "d"], ["input", "side"], ["d", "output"]])
    with pytest.raises(GraphError, match="side does not lead to the output"):
        parse_model(m)


def test_wrong_arity_refused():
    m = model([n("input", "input"), n("a", "dense", units=1), n("b", "dense", units=1), n("d", "dense", units=1),
               n("output", "output")],
              [["input", "a"], ["input", "b"], ["a", "d"], ["b", "d"], ["d", "output"]])
    with pytest.raises(GraphError, match=r"d \(dense\) takes 1 input but has 2"):
        parse_model(m)


def test_edge_to_unknown_node():
    m = model([n("input", "input"), n("d", "dense", units=1), n("output", "output")],
              [["input", "d"], ["d", "outptu"]])
    with pytest.raises(GraphError) as info:
        parse_model(m)
    assert info.value.what == "model.edges[1]" and "outptu" in info.value.why


def test_merge_of_mismatched_shapes_is_explained():
    m = model([n("input", "input"), n("a", "dense", units=3), n("b", "dense", units=4), n("sum", "add"),
               n("d", "dense", units=1), n("output", "output")],
              [["input", "a"], ["input", "b"], ["a", "sum"], ["b", "sum"], ["sum", "d"], ["d", "output"]])
    with pytest.raises(GraphError) as info:
        parse_model(m)
    assert info.value.what == "model.nodes[3]"
    assert "sum needs equal shapes but gets (B, 3), (B, 4)" in info.value.why


def test_head_units_mismatch_says_how_to_fix():
    m = model([n("input", "input"), n("d", "dense", units=4), n("output", "output", activation="tanh")],
              [["input", "d"], ["d", "output"]])
    with pytest.raises(GraphError, match=r"output expects \(B, 1\) but gets \(B, 4\): give d 1 unit"):
        parse_model(m)


def test_rank_error_suggests_flatten():
    with pytest.raises(ShapeError, match=r"expects \(B, F\) but gets \(B, 8, 4, 4\): insert a Flatten"):
        OPS["dense"].shape(OPS["dense"].params(units=2), [(8, 4, 4)])


def test_absurd_layer_refused_before_allocating():
    m = model([n("input", "input"), n("d", "dense", units=10**9), n("output", "output")],
              [["input", "d"], ["d", "output"]])
    with pytest.raises(SpecError, match="units"):
        parse_model(m)
    # Within the per-layer limit but over the network's parameter budget: refused by shape inference.
    big = model([n("input", "input"), n("a", "dense", units=60_000), n("b", "dense", units=60_000),
                 n("c", "dense", units=1), n("output", "output")],
                [["input", "a"], ["a", "b"], ["b", "c"], ["c", "output"]])
    with pytest.raises(GraphError, match=f"limit is {MAX_PARAMS:,}"):
        parse_model(big)


def test_loss_must_fit_the_head():
    with pytest.raises(SpecError) as info:
        parse_spec(spec_dict(loss="cross_entropy"))
    assert info.value.what == "loss"


def test_two_class_head_refused_for_three_classes():
    data = spec_dict("spiral3")
    out = next(x for x in data["model"]["nodes"] if x["op"] == "output")
    out["params"]["activation"] = "sigmoid"
    with pytest.raises(SpecError, match="use softmax"):
        parse_spec(data)


def test_shapes_and_parameter_counts():
    spec = parse_spec(spec_dict())
    info = check_spec(spec)
    assert [info.nodes[k].shape for k in info.order] == [(2,), (4,), (2,), (1,), (1,)]
    assert info.total_params == (2 * 4 + 4) + (4 * 2 + 2) + (2 + 1)


def test_branching_graph_runs_in_topological_order_with_concat_in_edge_order():
    m = model([n("input", "input"), n("a", "dense", units=3, activation="relu"), n("b", "dense", units=5),
               n("cat", "concat"), n("skip", "dense", units=8), n("res", "add"), n("d", "dense", units=1),
               n("output", "output")],
              [["input", "b"], ["input", "a"], ["a", "cat"], ["b", "cat"], ["input", "skip"],
               ["cat", "res"], ["skip", "res"], ["res", "d"], ["d", "output"]])
    spec = parse_model(m)
    info = check_spec(spec)
    assert info.nodes["cat"].shape == (8,) and info.nodes["cat"].inputs == ("a", "b")
    assert not info.is_chain()
    torch.manual_seed(0)
    net = GraphModule(info, BuildContext())
    x = torch.randn(6, 2)
    values = net.forward_all(x)
    L = net.layers
    a = torch.relu(x @ L["a"].weight.T + L["a"].bias)
    b = x @ L["b"].weight.T + L["b"].bias
    res = torch.cat([a, b], 1) + (x @ L["skip"].weight.T + L["skip"].bias)
    torch.testing.assert_close(values["res"], res, rtol=0, atol=1e-6)
    torch.testing.assert_close(net(x), values["output"], rtol=0, atol=0)


def test_reserved_ids_refused():
    m = model([n("input", "input"), n("training", "dense", units=1), n("output", "output")],
              [["input", "training"], ["training", "output"]])
    with pytest.raises(GraphError, match="reserved"):
        parse_model(m)


def test_analyse_accepts_model_spec_directly():
    m = ModelSpec.model_validate(model([n("input", "input"), n("d", "dense", units=3), n("output", "output")],
                                       [["input", "d"], ["d", "output"]]))
    assert analyse(m, (7,)).total_params == 7 * 3 + 3


def test_rank_mismatch_names_the_block_and_the_fix():
    m = model([n("input", "input"), n("r", "reshape", shape=[1, 2, 1]), n("c", "conv2d", filters=2, kernel=1),
               n("d", "dense", units=1), n("output", "output")],
              [["input", "r"], ["r", "c"], ["c", "d"], ["d", "output"]])
    with pytest.raises(GraphError) as info:
        parse_model(m)
    assert info.value.what == "model.nodes[3]"
    assert info.value.why == "d expects (B, F) but gets (B, 2, 2, 1): insert a Flatten"


def test_concat_mismatch_names_the_shapes():
    m = model([n("input", "input"), n("r1", "reshape", shape=[2, 1]), n("r2", "reshape", shape=[1, 2]),
               n("cat", "concat"), n("f", "flatten"), n("d", "dense", units=1), n("output", "output")],
              [["input", "r1"], ["input", "r2"], ["r1", "cat"], ["r2", "cat"], ["cat", "f"], ["f", "d"],
               ["d", "output"]])
    with pytest.raises(GraphError, match=r"cat joins the last dimension, so the others must match, but gets "
                                         r"\(B, 2, 1\), \(B, 1, 2\)"):
        parse_model(m)


def test_declared_input_shape_must_match_the_dataset():
    m = model([{"id": "input", "op": "input", "params": {"shape": [1, 28, 28]}}, n("f", "flatten"),
               n("d", "dense", units=1), n("output", "output")],
              [["input", "f"], ["f", "d"], ["d", "output"]])
    with pytest.raises(GraphError, match=r"built for \(B, 1, 28, 28\) but the dataset gives \(B, 2\)") as info:
        parse_model(m)
    assert info.value.what == "model.nodes[0].params.shape"
    assert analyse(ModelSpec.model_validate(m)).nodes["d"].shape == (1,)
