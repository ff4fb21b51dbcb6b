"""The layer-stack view of a model graph: what TensorFlow Playground's +/− columns edit.

A stack is input → [dense (+batch norm) (+dropout)]* → dense → output. ``from_model`` reads one out of a
graph (None when the graph is not such a chain) and ``to_model`` writes one back with stable node ids, so
the quick editor and the graph editor edit the same spec.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .check import HEADS
from .spec import DatasetSpec, ModelSpec, SessionSpec
from .templates import COLUMN_GAP

MAX_LAYERS = 8  # hidden layers the +/− buttons allow (the graph editor allows more)


@dataclass(frozen=True)
class Layer:
    """One hidden layer of the stack."""

    units: int = 4
    activation: str = "tanh"
    dropout: float = 0.0
    batch_norm: bool = False


@dataclass(frozen=True)
class Stack:
    """Hidden layers plus the head: the last dense layer's units and the output activation."""

    layers: tuple[Layer, ...]
    output: str = "tanh"
    units_out: int = 1
    init: str = "default"


def from_model(model: ModelSpec) -> Stack | None:
    """The stack a model graph is, or None when it is not a plain layer stack."""
    nodes = {n.id: n for n in model.nodes}
    succ: dict[str, str] = {}
    indeg: dict[str, int] = {n: 0 for n in nodes}
    for src, dst in model.edges:
        if src in succ:
            return None
        succ[src] = dst
        indeg[dst] = indeg.get(dst, 0) + 1
    starts = [n for n in nodes.values() if n.op == "input"]
    if len(starts) != 1 or any(v > 1 for v in indeg.values()):
        return None
    chain = [starts[0]]
    while chain[-1].id in succ and len(chain) <= len(nodes):
        chain.append(nodes[succ[chain[-1].id]])
    if len(chain) != len(nodes) or chain[-1].op != "output" or len(chain) < 3 or chain[-2].op != "dense":
        return None
    layers: list[Layer] = []
    inits = set()
    for node in chain[1:-2]:
        p = node.params
        if node.op == "dense":
            layers.append(Layer(int(p.get("units", 4)), str(p.get("activation", "linear"))))
            inits.add(p.get("init", "default"))
            if p.get("bias", True) is False:
                return None
        elif node.op == "batch_norm" and layers and not layers[-1].batch_norm and not layers[-1].dropout:
            layers[-1] = replace(layers[-1], batch_norm=True)
        elif node.op == "dropout" and layers and not layers[-1].dropout:
            layers[-1] = replace(layers[-1], dropout=float(p.get("p", 0.5)))
        else:
            return None
    last = chain[-2].params
    inits.add(last.get("init", "default"))
    if len(inits) != 1 or last.get("activation", "linear") != "linear" or last.get("bias", True) is False:
        return None
    return Stack(tuple(layers), str(chain[-1].params.get("activation", "tanh")), int(last.get("units", 4)),
                 str(inits.pop()))


def to_model(stack: Stack) -> dict[str, Any]:
    """A stack as a model graph dict with stable ids: dense_i, bn_i, dropout_i, then dense_{n+1} → output."""
    nodes: list[dict[str, Any]] = [{"id": "input", "op": "input", "position": [0.0, 0.0]}]
    edges: list[list[str]] = []

    def add(node_id: str, op: str, params: dict[str, Any]) -> None:
        nodes.append({"id": node_id, "op": op, "params": params, "position": [len(nodes) * COLUMN_GAP, 0.0]})
        edges.append([nodes[-2]["id"], node_id])

    for i, layer in enumerate(stack.layers, start=1):
        add(f"dense_{i}", "dense", {"units": layer.units, "activation": layer.activation, "init": stack.init})
        if layer.batch_norm:
            add(f"bn_{i}", "batch_norm", {})
        if layer.dropout > 0:
            add(f"dropout_{i}", "dropout", {"p": layer.dropout})
    add(f"dense_{len(stack.layers) + 1}", "dense", {"units": stack.units_out, "activation": "linear",
                                                     "init": stack.init})
    add("output", "output", {"activation": stack.output})
    return {"nodes": nodes, "edges": edges}


def with_stack(spec: SessionSpec, stack: Stack) -> SessionSpec:
    """The spec with its model replaced by the stack. When the blocks stay the same (a new width, say), they
    keep the places the graph editor gave them; a layer added or removed lays the stack out afresh."""
    model = to_model(stack)
    old = {n.id: n.position for n in spec.model.nodes}
    if set(old) == {n["id"] for n in model["nodes"]} and all(p is not None for p in old.values()):
        for n in model["nodes"]:
            n["position"] = list(old[n["id"]])
    return spec.model_copy(update={"model": ModelSpec.model_validate(model)})


def fit_head(spec: SessionSpec, dataset: DatasetSpec) -> SessionSpec:
    """The spec moved to a new dataset, with the head (output activation, units, loss) changed only if the
    old one does not suit the new task: softmax + cross-entropy for K classes, tanh + MSE otherwise."""
    spec = spec.model_copy(update={"dataset": dataset})
    stack = from_model(spec.model)
    if stack is None:
        return spec
    task, k = dataset.task, dataset.n_classes
    losses = HEADS.get((task, stack.output))
    fits = losses is not None and spec.loss in losses and (k <= 2 or stack.output == "softmax")
    if fits:
        units = k if stack.output == "softmax" else 1
        return with_stack(spec, replace(stack, units_out=units))
    if task == "classification" and k > 2:
        stack, loss = replace(stack, output="softmax", units_out=k), "cross_entropy"
    else:
        stack, loss = replace(stack, output="tanh", units_out=1), "mse"
    return with_stack(spec, stack).model_copy(update={"loss": loss})


def with_loss(spec: SessionSpec, loss: str) -> SessionSpec:
    """The spec with a new loss, and the head changed to one that suits it if the old one does not."""
    spec = spec.model_copy(update={"loss": loss})
    stack = from_model(spec.model)
    task, k = spec.dataset.task, spec.dataset.n_classes
    if stack is None or loss in HEADS.get((task, stack.output), ()):
        return spec
    if task == "reconstruction":  # pixels in [0, 1]: sigmoid suits both of its losses; the units stay
        return with_stack(spec, replace(stack, output="sigmoid"))
    if loss == "cross_entropy":
        output, units = "softmax", max(k, 2)
    elif loss == "bce":
        output, units = "sigmoid", 1
    else:
        output, units = ("softmax", k) if k > 2 else ("tanh", 1)
    return with_stack(spec, replace(stack, output=output, units_out=units))
