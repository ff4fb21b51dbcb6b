"""The layer-stack view of a model graph: what TensorFlow Playground's +/− columns edit, and fitting a network to
new data.

A stack is input → [dense (+batch norm) (+dropout)]* → dense → output. ``from_model`` reads one out of a
graph (None when the graph is not such a chain) and ``to_model`` writes one back with stable node ids, so
the quick editor and the graph editor edit the same spec.

``fit_data`` moves a spec to another dataset: a stack's head follows the task; a token network follows a
sequences task (vocabulary, lengths, an answer per step or one pooled answer); a network that cannot read the
new data at all (a toy MLP given tokens, a transformer given images) is replaced by a default one for it, with a
note saying so.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Any

from .check import HEADS, check_spec
from .datasets import family_of, input_shape
from .decoding import has_decoder
from .errors import EngineError, SpecError
from .graph import analyse
from .head import Head
from .optimizers import OPTIMIZERS
from .spec import DatasetSpec, ModelSpec, SessionSpec
from .templates import COLUMN_GAP, TEMPLATES, auto_layout

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
    """The spec moved to a new dataset, its network fitted to it (``fit_data``), without the note."""
    return fit_data(spec, dataset).spec


def _fit_stack(spec: SessionSpec) -> SessionSpec:
    """A plain stack's head changed only if the old one does not suit the dataset's task: softmax +
    cross-entropy for K classes, tanh + MSE otherwise. Any other graph is left as it is."""
    dataset = spec.dataset
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


# --- fitting a network to new data ---------------------------------------------------------------

RECURRENT = ("rnn", "lstm", "gru")
PER_STEP = ("dense", "dropout", "activation", "layer_norm")  # blocks that act on each step alike, or on a vector
SLOW = ("sgd", "momentum", "nesterov")  # optimizers a default transformer or LSTM barely moves with


@dataclass(frozen=True)
class Fitted:
    """A spec moved to new data, and what was replaced to make it fit (None: only sizes and the head changed)."""

    spec: SessionSpec
    note: str | None = None


def fit_data(spec: SessionSpec, dataset: DatasetSpec) -> Fitted:
    """The spec moved to `dataset`, with a network that reads it: a stack's head follows the task
    (``_fit_stack``); a token network follows a sequences task (``fit_sequences``); a token network given
    other data, or a network without an embedding given tokens, is replaced by a default network for the data
    and the note says so. A graph that reads the data but does not fit it otherwise is left for the window to
    explain (the images editor fits its own)."""
    moved = spec.model_copy(update={"dataset": dataset})
    if dataset.kind == "sequences":
        return fit_sequences(moved)
    if reads_tokens(spec.model):
        return _leave_tokens(moved)
    return Fitted(_fit_stack(moved))


def reads_tokens(model: ModelSpec) -> bool:
    """The network looks its input up in an embedding: it reads token ids, not numbers."""
    ops = {n.id: n.op for n in model.nodes}
    return any(ops.get(src) == "input" and ops.get(dst) == "embedding" for src, dst in model.edges)


def fit_sequences(spec: SessionSpec) -> Fitted:
    """A spec on a sequences dataset with a network fitted to its task: a token network keeps its blocks and
    takes the vocabulary, lengths and answer the task asks for (``fit_tokens``); any other network, or one that
    still does not check, is replaced by the transformer template (per-token tasks) or the LSTM one (a class
    per sequence)."""
    ds = spec.dataset
    if not reads_tokens(spec.model):
        why = "The network had no embedding, so it could not read tokens"
    elif has_decoder(spec.model.nodes) and ds.task != "sequence":
        why = f"An encoder–decoder writes a token at every step, but {ds.name} asks for one class per sequence"
    else:
        try:
            fitted = fit_tokens(spec)
            check_spec(fitted)
            return Fitted(fitted)
        except EngineError as exc:
            why = f"The network did not fit {ds.name} ({exc})"
    name = "transformer" if ds.task == "sequence" else "lstm"
    shape = (ds.length,) if ds.task == "sequence" else ()
    model = TEMPLATES[name].model(Head("softmax", ds.n_classes, ds.task, "cross_entropy", shape))
    update: dict[str, Any] = {"model": model, "loss": "cross_entropy"}
    note = f"{why}: it was replaced by the {TEMPLATES[name].title} template"
    if spec.optimizer.kind in SLOW:
        update["optimizer"] = OPTIMIZERS["adam"].spec.model_validate({"lr": 0.003})
        note += ", and the optimizer by Adam (lr 0.003)"
    return Fitted(fit_tokens(spec.model_copy(update=update)), note + ".")


def fit_tokens(spec: SessionSpec) -> SessionSpec:
    """A token network fitted to its sequences dataset: every embedding takes the vocabulary, positions cover
    the longest input (the held-out longer set too), a declared input the length, and the head the task: the
    dense layer before a softmax output one unit per token (per-token tasks, at every step: a pooling readout
    before it is taken out, a recurrent layer gives every step) or per class (a readout is put in before it, a
    recurrent layer gives its last state). SpecError when the network cannot be fitted so."""
    ds = spec.dataset
    data = spec.model.model_dump(mode="json")
    nodes = {n["id"]: n for n in data["nodes"]}
    longest = max(ds.length, ds.long_length)
    for node in data["nodes"]:
        p = node["params"]
        if node["op"] == "embedding":
            p["vocab"] = ds.vocab
        elif node["op"] == "positional":
            p["max_len"] = max(int(p.get("max_len", 0)), longest)
        elif node["op"] == "input" and p.get("shape") is not None:
            p["shape"] = [ds.length]
    out = next(n for n in data["nodes"] if n["op"] == "output")
    feeders = [src for src, dst in data["edges"] if dst == out["id"]]
    if len(feeders) != 1 or nodes[feeders[0]]["op"] != "dense":
        raise SpecError("model", f"{out['id']} must be fed by one dense layer, which gives the answer")
    dense = nodes[feeders[0]]
    dense["params"] = {**dense["params"], "units": ds.n_classes}
    out["params"] = {**out["params"], "activation": "softmax"}
    info = analyse(ModelSpec.model_validate(data), (ds.length,))
    below = info.nodes[dense["id"]].inputs
    if len(below) != 1:
        raise SpecError("model", f"{dense['id']} must read one block")
    stepwise = len(info.nodes[below[0]].shape) == 2
    if ds.task == "sequence" and not stepwise:
        _unpool(data, info, dense["id"])
    elif ds.task != "sequence" and stepwise:
        _pool(data, below[0], dense["id"])
    return spec.model_copy(update={"model": ModelSpec.model_validate(data), "loss": "cross_entropy"})


def _inputs(data: dict[str, Any], node: str) -> list[str]:
    return [src for src, dst in data["edges"] if dst == node]


def _unpool(data: dict[str, Any], info: Any, start: str) -> None:
    """Give every step to `start` (a dense layer): walk down through per-step blocks to where the steps were
    pooled, and take the readout out or let the recurrent layer give every step."""
    nodes = {n["id"]: n for n in data["nodes"]}
    node = start
    while True:
        below = _inputs(data, node)
        if len(below) != 1:
            raise SpecError("model", f"{node} reads {len(below)} blocks: the steps cannot be followed back")
        pred = nodes[below[0]]
        if pred["op"] == "readout":
            if sum(src == pred["id"] for src, _ in data["edges"]) != 1:
                raise SpecError("model", f"{pred['id']} feeds more than one block")
            (source,) = _inputs(data, pred["id"])
            data["edges"] = [e for e in data["edges"] if pred["id"] not in e] + [[source, node]]
            data["nodes"] = [n for n in data["nodes"] if n["id"] != pred["id"]]
            return
        if pred["op"] in RECURRENT:
            pred["params"] = {**pred["params"], "output": "all"}
            return
        if pred["op"] not in PER_STEP:
            raise SpecError("model", f"{pred['id']} ({pred['op']}) gives one vector per sequence, not a step each")
        node = pred["id"]


def _pool(data: dict[str, Any], below: str, dense: str) -> None:
    """One vector per sequence into the dense layer: a recurrent layer's last state, or the mean over steps."""
    nodes = {n["id"]: n for n in data["nodes"]}
    if nodes[below]["op"] in RECURRENT:
        nodes[below]["params"] = {**nodes[below]["params"], "output": "last"}
        return
    pool = next(f"pool_{k}" if k else "pool" for k in range(len(nodes) + 1)
                if (f"pool_{k}" if k else "pool") not in nodes)
    a, b = nodes[below].get("position"), nodes[dense].get("position")
    position = [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2 + 60.0] if a and b else None
    data["nodes"].append({"id": pool, "op": "readout", "params": {"reduce": "mean"}, "position": position})
    data["edges"] = [e for e in data["edges"] if e != [below, dense]] + [[below, pool], [pool, dense]]


def _leave_tokens(spec: SessionSpec) -> Fitted:
    """A token network moved to data that are not tokens: a small CNN for images (or a dense autoencoder for
    a reconstruction task), the default two-layer stack for anything else."""
    ds = spec.dataset
    shape = tuple(input_shape(ds))
    title = family_of(ds).title
    title = title[:1].lower() + title[1:] if title[1:2].islower() else title  # "images", "2-D points"
    if len(shape) == 3:
        model, loss, what = _image_network(ds, shape)
        fitted = spec.model_copy(update={"model": ModelSpec.model_validate(model), "loss": loss})
    else:
        what = "a two-layer network"
        fitted = _fit_stack(with_stack(spec, Stack((Layer(4, "tanh"), Layer(2, "tanh")))))
    return Fitted(fitted, f"The sequence network could not read {title}: it was replaced by {what}.")


def _image_network(ds: DatasetSpec, shape: tuple[int, ...]) -> tuple[dict[str, Any], str, str]:
    """(model, loss, what it is) for pictures of `shape`: conv–pool–conv, global average pooling and a class
    per image, or a dense autoencoder for a reconstruction task."""
    nodes: list[dict[str, Any]] = [{"id": "input", "op": "input", "params": {}}]

    def add(node_id: str, op: str, **params: Any) -> None:
        nodes.append({"id": node_id, "op": op, "params": params})

    if ds.task == "reconstruction":
        pixels = shape[0] * shape[1] * shape[2]
        add("flatten", "flatten")
        add("encoder", "dense", units=64, activation="relu")
        add("code", "dense", units=16, activation="relu")
        add("decoder", "dense", units=64, activation="relu")
        add("reconstruct", "dense", units=pixels)
        add("output", "output", activation="sigmoid")
        loss, what = "bce", "a dense autoencoder"
    else:
        add("conv_1", "conv2d", filters=16, kernel=3, padding=1, activation="relu")
        add("pool_1", "max_pool", kernel=2)
        add("conv_2", "conv2d", filters=32, kernel=3, padding=1, activation="relu")
        add("gap", "global_avg_pool")
        add("dense", "dense", units=ds.n_classes)
        add("output", "output", activation="softmax")
        loss, what = "cross_entropy", "a small CNN"
    edges = [[a["id"], b["id"]] for a, b in pairwise(nodes)]
    return auto_layout({"nodes": nodes, "edges": edges}), loss, what


def template_for(name: str, spec: SessionSpec) -> ModelSpec:
    """A template as the graph editor inserts it: built for the session's head and, when it reads tokens and
    the session's data are sequences, fitted to them (vocabulary, length, an answer per step or per sequence)."""
    model = TEMPLATES[name].model(Head.of(spec))
    if spec.dataset.kind == "sequences" and reads_tokens(model) and not (has_decoder(model.nodes)
                                                                          and spec.dataset.task != "sequence"):
        try:
            return fit_tokens(spec.model_copy(update={"model": model})).model
        except EngineError:
            return model
    return model
