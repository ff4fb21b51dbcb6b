"""The model graph: a networkx DiGraph of layer nodes, validated, shape-checked and built into torch."""
from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import networkx as nx
import torch
from pydantic import ValidationError
from torch import nn

from .errors import GraphError, SpecError, format_pydantic
from .layers import OPS, BuildContext, Dropout, Op, Params, Shape, ShapeError, fmt_shape
from .layers_generative import Reparameterize

if TYPE_CHECKING:
    from .spec import ModelSpec, SessionSpec

MAX_PARAMS = 20_000_000
_RESERVED = frozenset(dir(nn.ModuleDict()))


@dataclass(frozen=True)
class NodeInfo:
    """A validated node: its params, inputs (in edge order), output shape and parameter count."""

    id: str
    index: int  # position in spec.model.nodes, for error paths
    op: str
    params: Params
    inputs: tuple[str, ...]
    shape: Shape
    n_params: int


@dataclass(frozen=True)
class GraphInfo:
    """The result of validating a model graph: topological order, shapes and counts."""

    graph: nx.DiGraph
    order: tuple[str, ...]
    nodes: dict[str, NodeInfo]
    input_id: str
    output_id: str
    total_params: int

    def is_chain(self) -> bool:
        """True when the graph is a plain stack of layers (no branches or merges)."""
        return all(self.graph.in_degree(n) <= 1 and self.graph.out_degree(n) <= 1 for n in self.order)


def to_networkx(model: ModelSpec) -> nx.DiGraph:
    """Build the DiGraph of a model spec; nodes carry ``op``, ``params``, ``position`` and ``index``."""
    g = nx.DiGraph()
    for i, node in enumerate(model.nodes):
        if node.id in g:
            raise GraphError(f"model.nodes[{i}].id", f"duplicate id '{node.id}'")
        if node.id in _RESERVED:
            raise GraphError(f"model.nodes[{i}].id", f"'{node.id}' is a reserved name; choose another id")
        g.add_node(node.id, op=node.op, params=node.params, position=node.position, index=i)
    for j, (src, dst) in enumerate(model.edges):
        for end in (src, dst):
            if end not in g:
                raise GraphError(f"model.edges[{j}]", f"unknown node '{end}'")
        if src == dst:
            raise GraphError(f"model.edges[{j}]", f"'{src}' is wired to itself")
        if g.has_edge(src, dst):
            raise GraphError(f"model.edges[{j}]", f"'{src}' → '{dst}' appears twice")
        g.add_edge(src, dst)
    return g


def node_params(model: ModelSpec, index: int) -> Params:
    """Validate one node's op and params (raises SpecError naming the field)."""
    node = model.nodes[index]
    path = f"model.nodes[{index}]"
    op = OPS.get(node.op)
    if op is None:
        raise GraphError(f"{path}.op", f"unknown op '{node.op}' (known: {', '.join(sorted(OPS))})")
    try:
        return op.params.model_validate(node.params)
    except ValidationError as exc:
        raise format_pydantic(exc, f"{path}.params") from None


def _arity(op: Op, k: int) -> str | None:
    """Why k inputs are wrong for the op ("takes 2 inputs but has 1"), or None when they are right."""
    lo, hi = op.inputs
    if lo <= k and (hi is None or k <= hi):
        return None
    want = f"{lo}" if lo == hi else (f"at least {lo}" if hi is None else f"{lo}–{hi}")
    return f"takes {want} input{'s' if want != '1' else ''} but has {k}"


def same_architecture(a: ModelSpec, b: ModelSpec) -> bool:
    """True when two models differ at most in where an editor placed their blocks."""
    strip = lambda m: (tuple(n.model_copy(update={"position": None}) for n in m.nodes), m.edges)
    return strip(a) == strip(b)


def analyse(model: ModelSpec, input_shape: Shape | None = None) -> GraphInfo:
    """Validate ops, params, wiring and acyclicity; infer every node's shape and parameter count.
    ``input_shape`` is the dataset's; without one, the input node must declare its shape."""
    g = to_networkx(model)
    params = {node.id: node_params(model, i) for i, node in enumerate(model.nodes)}

    for kind in ("input", "output"):
        found = [n for n in g if g.nodes[n]["op"] == kind]
        if not found:
            raise GraphError("model", f"no {kind} node: a network needs exactly one")
        if len(found) > 1:
            raise GraphError("model", f"{len(found)} {kind} nodes ({', '.join(found)}): a network has exactly one")
    input_id = next(n for n in g if g.nodes[n]["op"] == "input")
    output_id = next(n for n in g if g.nodes[n]["op"] == "output")
    declared = params[input_id].shape  # type: ignore[attr-defined]
    in_path = f"model.nodes[{g.nodes[input_id]['index']}].params.shape"
    if input_shape is None:
        if declared is None:
            raise GraphError(in_path, "no dataset gives the input its shape: declare one")
        input_shape = tuple(declared)
    elif declared is not None and tuple(declared) != tuple(input_shape):
        raise GraphError(in_path, f"{input_id} is built for {fmt_shape(tuple(declared))} but the dataset gives "
                         f"{fmt_shape(tuple(input_shape))}: pick a matching dataset or clear the declared shape")

    try:
        cycle = nx.find_cycle(g)
    except nx.NetworkXNoCycle:
        cycle = None
    if cycle:
        loop = " → ".join([e[0] for e in cycle] + [cycle[0][0]])
        raise GraphError("model.edges", f"cycle {loop}: a feed-forward network cannot loop")

    for n in g:
        path = f"model.nodes[{g.nodes[n]['index']}]"
        op = OPS[g.nodes[n]["op"]]
        wrong = _arity(op, g.in_degree(n))
        if wrong:
            raise GraphError(path, f"{n} ({op.name}) {wrong}")
    sources = [n for n in g if OPS[g.nodes[n]["op"]].inputs == (0, 0)]
    reach = set(sources).union(*(nx.descendants(g, n) for n in sources))
    for n in g:
        if n not in reach:
            raise GraphError(f"model.nodes[{g.nodes[n]['index']}]", f"{n} is not connected to the input {input_id}")
        if n != output_id and not nx.has_path(g, n, output_id):
            raise GraphError(f"model.nodes[{g.nodes[n]['index']}]", f"{n} does not lead to the output {output_id}")

    order = tuple(nx.topological_sort(g))
    infos: dict[str, NodeInfo] = {}
    total = 0
    for n in order:
        op = OPS[g.nodes[n]["op"]]
        inputs = tuple(g.predecessors(n))
        in_shapes = [infos[p].shape for p in inputs]
        path = f"model.nodes[{g.nodes[n]['index']}]"
        try:
            shape = input_shape if op.name == "input" else op.shape(params[n], in_shapes)
        except ShapeError as exc:
            raise GraphError(path, f"{n} {exc}") from None
        count = op.count(params[n], in_shapes)
        total += count
        if total > MAX_PARAMS:
            raise GraphError(path, f"{n} brings the network to {total:,} parameters; the limit is {MAX_PARAMS:,}")
        infos[n] = NodeInfo(n, g.nodes[n]["index"], op.name, params[n], inputs, shape, count)
    return GraphInfo(g, order, infos, input_id, output_id, total)


# Which output activations suit which task and loss; the values are the label encodings.
HEADS = {
    ("classification", "softmax"): {"cross_entropy", "mse"},
    ("classification", "sigmoid"): {"bce", "mse"},
    ("classification", "tanh"): {"mse"},
    ("classification", "linear"): {"bce", "mse"},
    ("regression", "tanh"): {"mse"},
    ("regression", "linear"): {"mse"},
}


def head_units(spec: SessionSpec) -> int:
    """How many output units the head needs: K for softmax, 1 otherwise."""
    act = output_activation(spec)
    return spec.dataset.n_classes if act == "softmax" else 1


def output_activation(spec: SessionSpec) -> str:
    node = next(n for n in spec.model.nodes if n.op == "output")
    return str(node.params.get("activation", "tanh"))


def check_spec(spec: SessionSpec) -> GraphInfo:
    """Validate the model graph against the dataset, the head and the loss."""
    from .datasets import input_shape

    info = analyse(spec.model, input_shape(spec.dataset))
    out = info.nodes[info.output_id]
    act = out.params.activation  # type: ignore[attr-defined]
    task = spec.dataset.task
    path = f"model.nodes[{out.index}].params.activation"
    losses = HEADS.get((task, act))
    if losses is None:
        raise SpecError(path, f"{act} does not suit {task}; use {' or '.join(a for t, a in HEADS if t == task)}")
    if act in ("sigmoid", "tanh", "linear") and task == "classification" and spec.dataset.n_classes != 2:
        raise SpecError(path, f"{act} separates two classes but {spec.dataset.name} has {spec.dataset.n_classes}; use softmax")
    if spec.loss not in losses:
        raise SpecError("loss", f"{spec.loss} does not fit a {act} output; use {' or '.join(sorted(losses))}")
    if info.total_params == 0:
        raise GraphError("model", "the network has no trainable parameters: add a dense layer")
    units = head_units(spec)
    if out.shape != (units,):
        feeder = info.nodes[out.inputs[0]]
        raise GraphError(
            f"model.nodes[{out.index}]",
            f"{out.id} expects {fmt_shape((units,))} but gets {fmt_shape(out.shape)}: "
            f"give {feeder.id} {units} unit{'s' if units > 1 else ''}",
        )
    return info


@dataclass(frozen=True)
class Diagnosis:
    """What an editor shows for a draft graph: every shape it can infer, each block's own error, and the first
    problem that keeps the whole from training (None when it is valid)."""

    shapes: dict[str, Shape]
    counts: dict[str, int]
    errors: dict[str, str]
    problem: str | None

    @property
    def valid(self) -> bool:
        return self.problem is None


def diagnose(model: ModelSpec, spec: SessionSpec | None = None, input_shape: Shape | None = None) -> Diagnosis:
    """Check a draft graph without stopping at the first error; against the session's dataset and head when
    ``spec`` is given (the draft replaces its model), otherwise against ``input_shape`` or the declared one."""
    shapes: dict[str, Shape] = {}
    counts: dict[str, int] = {}
    errors: dict[str, str] = {}
    try:
        g = to_networkx(model)
    except GraphError as exc:
        return Diagnosis(shapes, counts, errors, exc.why)
    params: dict[str, Params] = {}
    for i, node in enumerate(model.nodes):
        try:
            params[node.id] = node_params(model, i)
        except SpecError as exc:
            errors[node.id] = _local(exc)
    if spec is not None:
        from .datasets import input_shape as dataset_shape

        input_shape = dataset_shape(spec.dataset)
    if nx.is_directed_acyclic_graph(g):
        for n in nx.topological_sort(g):
            if n not in params:
                continue
            op, preds = OPS[g.nodes[n]["op"]], list(g.predecessors(n))
            wrong = _arity(op, len(preds))
            if wrong:
                errors[n] = wrong
                continue
            if any(p not in shapes for p in preds):
                continue
            in_shapes = [shapes[p] for p in preds]
            if op.name == "input":
                declared = params[n].shape  # type: ignore[attr-defined]
                # A declared shape wins here so a template shows its own shapes; a clash with the dataset is
                # the input block's error, from the full check below.
                shape = declared if declared is not None else input_shape
                if shape is None:
                    errors[n] = "declare the input's shape (no dataset gives it one)"
                    continue
                shapes[n] = tuple(shape)
                counts[n] = 0
                continue
            try:
                shapes[n] = op.shape(params[n], in_shapes)
            except ShapeError as exc:
                errors[n] = str(exc)
                continue
            counts[n] = op.count(params[n], in_shapes)
    try:
        if spec is not None:
            check_spec(spec.model_copy(update={"model": model}))
        else:
            analyse(model, input_shape)
    except SpecError as exc:
        m = re.match(r"model\.nodes\[(\d+)\]", exc.what)
        if m and int(m.group(1)) < len(model.nodes):
            node_id = model.nodes[int(m.group(1))].id
            errors.setdefault(node_id, _local(exc).removeprefix(f"{node_id} "))
        return Diagnosis(shapes, counts, errors, exc.why if m or exc.what.startswith("model") else str(exc))
    return Diagnosis(shapes, counts, errors, None)


def _local(exc: SpecError) -> str:
    """A node's error without the path up to the node: ``units: must be ≥ 1``."""
    field = re.sub(r"^model\.nodes\[\d+\]\.?(params\.)?", "", exc.what)
    return f"{field}: {exc.why}" if field else exc.why


class GraphModule(nn.Module):
    """Runs the graph in topological order; ``forward_all`` exposes every node's output."""

    def __init__(self, info: GraphInfo, ctx: BuildContext) -> None:
        super().__init__()
        self.info = info
        layers = {}
        for n in info.order:
            node = info.nodes[n]
            layers[n] = OPS[node.op].build(node.params, [info.nodes[p].shape for p in node.inputs], ctx)
        self.layers = nn.ModuleDict(layers)
        # A plain stack skips the dict bookkeeping: per-op overhead dominates tiny networks.
        skip = {info.input_id, info.output_id}
        self._chain = [self.layers[n] for n in info.order if n not in skip] if info.is_chain() else None
        # Only dropout, batch norm and sampling behave differently in eval mode; others skip the mode switch.
        self._modal = any(isinstance(m, (Dropout, nn.modules.batchnorm._BatchNorm, Reparameterize))
                          for m in self.modules())
        self._aux = [m for m in self.layers.values() if hasattr(m, "aux")]  # modules adding a loss term (VAE KL)
        self._extra = [n for n in info.order if n != info.input_id and not info.nodes[n].inputs]

    @contextmanager
    def evaluating(self) -> Iterator[None]:
        """Eval mode for the block, restoring the previous mode after (a no-op without modal layers)."""
        if not self._modal:
            yield
            return
        was_training = self.training
        self.eval()
        try:
            yield
        finally:
            self.train(was_training)

    def forward(self, x: torch.Tensor, extras: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        if self._chain is not None:
            for layer in self._chain:
                x = layer(x)
            return x
        return self.forward_all(x, extras)[self.info.output_id]

    def forward_all(self, x: torch.Tensor, extras: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """Every node's output for input x, keyed by node id. ``extras`` feeds the other source nodes by op
        name (a graph dataset's ``adjacency``)."""
        values = {self.info.input_id: x}
        for n in self._extra:
            op = self.info.nodes[n].op
            if extras is None or op not in extras:
                raise ValueError(f"{n} ({op}) needs its {op} supplied with the batch")
            values[n] = extras[op]
        for n in self.info.order:
            if n not in values:
                values[n] = self.layers[n](*(values[p] for p in self.info.nodes[n].inputs))
        return values

    @torch.no_grad()
    def attention_maps(self, x: torch.Tensor, extras: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """Every attention layer's softmax weights for input x, keyed by node id: (B, heads, T, S) for
        attention and transformer blocks, (B, heads, N, N) for GAT. Computed in eval mode through the explicit
        softmax path (the fused kernel never forms the matrix); the layers go back to the fast path after."""
        holders = {n: (m.attention if hasattr(m, "attention") else m) for n, m in self.layers.items()
                   if hasattr(m, "keep_weights") or hasattr(m, "attention")}
        for m in holders.values():
            m.keep_weights, m.weights = True, None
        try:
            with self.evaluating():
                self.forward_all(x, extras)
            return {n: m.weights for n, m in holders.items() if m.weights is not None}
        finally:
            for m in holders.values():
                m.keep_weights, m.weights = False, None

    def aux_loss(self) -> torch.Tensor | None:
        """The loss terms layers added in the last forward pass (a VAE's β·KL), or None."""
        terms = [m.aux for m in self._aux if m.aux is not None]
        return sum(terms[1:], terms[0]) if terms else None

    def penalized_parameters(self) -> list[torch.Tensor]:
        """The weights L1/L2 and weight decay act on (never biases or norm gains)."""
        out = []
        for n in self.info.order:
            for name in OPS[self.info.nodes[n].op].penalized:
                out.append(self.layers[n].get_parameter(name))
        return out
