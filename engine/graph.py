"""The model graph: a networkx DiGraph of layer nodes, validated, shape-checked and built into torch."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import networkx as nx
import torch
from pydantic import ValidationError
from torch import nn
from torch.nn.modules import module as torch_module

from .errors import GraphError, format_pydantic
from .ops import OPS, BuildContext, Op, Params, Shape, ShapeError, fmt_shape
from .schema import validate_strict

if TYPE_CHECKING:
    from .spec import ModelSpec

MAX_PARAMS = 20_000_000
SOURCES = ("input", "decoder_input")  # the nodes that take the dataset's input shape
_RESERVED = frozenset(dir(nn.ModuleDict()))
# What nn.Module.__call__ consults before it calls forward; where torch lacks one, layers are always called.
_GLOBAL_HOOKS = tuple(getattr(torch_module, f"_global_{kind}_hooks", None)
                      for kind in ("forward_pre", "forward", "backward_pre", "backward"))
_LAYER_HOOKS = ("_forward_pre_hooks", "_forward_hooks", "_backward_pre_hooks", "_backward_hooks",
                "_compiled_call_impl")
_CALL_KNOWN = (None not in _GLOBAL_HOOKS and hasattr(torch._C, "_get_tracing_state")
               and all(hasattr(nn.Module(), a) for a in _LAYER_HOOKS))


def _direct_calls(layers: list[nn.Module]) -> bool:
    """True when ``layer.forward(x)`` does all that ``layer(x)`` would: no hooks, compiled call or JIT trace."""
    # Hooks come and go, on these layers or globally, so this is asked at every call (~1 µs for 7 layers).
    if not _CALL_KNOWN or any(_GLOBAL_HOOKS) or torch._C._get_tracing_state():
        return False
    for m in layers:
        if (m._forward_pre_hooks or m._forward_hooks or m._backward_pre_hooks or m._backward_hooks
                or m._compiled_call_impl is not None):
            return False
    return True


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
        return validate_strict(op.params, node.params)  # no coercion: `units: true` is not 1
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
            # a decoder's input is the target so far: as long as the input in every task that has one
            shape = input_shape if op.name in SOURCES else op.shape(params[n], in_shapes)
        except ShapeError as exc:
            raise GraphError(path, f"{n} {exc}") from None
        count = op.count(params[n], in_shapes)
        total += count
        if total > MAX_PARAMS:
            raise GraphError(path, f"{n} brings the network to {total:,} parameters; the limit is {MAX_PARAMS:,}")
        infos[n] = NodeInfo(n, g.nodes[n]["index"], op.name, params[n], inputs, shape, count)
    return GraphInfo(g, order, infos, input_id, output_id, total)


def downstream(info: GraphInfo, node: str) -> list[str]:
    """``node`` and the blocks computable from its output alone, in graph order (a decoder from its code)."""
    reached = [node]
    seen = {node}
    for n in info.order[info.order.index(node) + 1:]:
        inputs = info.nodes[n].inputs
        if inputs and all(p in seen for p in inputs):
            reached.append(n)
            seen.add(n)
    return reached


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
        self._modal = any(OPS[info.nodes[n].op].modal for n in info.order)
        self.aux_layers = [self.layers[n] for n in info.order if OPS[info.nodes[n].op].aux_loss]  # a VAE's KL
        self._extra = [n for n in info.order if n != info.input_id and not info.nodes[n].inputs]

    def train(self, mode: bool = True) -> GraphModule:
        """Training mode, except for frozen blocks: they stay in eval mode, so a frozen batch norm keeps its
        running statistics (and a frozen dropout stops dropping) and the block is exactly as it was."""
        super().train(mode)
        if mode:
            for layer in getattr(self, "frozen", ()):
                layer.eval()
        return self

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
            if _direct_calls(self._chain):
                for layer in self._chain:
                    x = layer.forward(x)  # __call__'s hook dispatch: ~1.2 µs a layer, 2 % of a step on the bench
            else:
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

    def forward_from(self, node: str, value: torch.Tensor) -> torch.Tensor:
        """The network's output when ``value`` is what ``node`` gives (a decoder run from a code): only the blocks
        after it run. ValueError when the output also needs a block that comes before it (a skip past it)."""
        values = {node: value}
        for n in downstream(self.info, node)[1:]:
            values[n] = self.layers[n](*(values[p] for p in self.info.nodes[n].inputs))
        if self.info.output_id not in values:
            raise ValueError(f"the output cannot be computed from {node} alone: a block after it also reads one "
                             f"before it")
        return values[self.info.output_id]

    @torch.no_grad()
    def attention_maps(self, x: torch.Tensor, extras: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """Every attention layer's softmax weights for input x, keyed by node id: (B, heads, T, S) for
        attention and transformer blocks, (B, heads, N, N) for GAT. Computed in eval mode through the explicit
        softmax path (the fused kernel never forms the matrix); the layers go back to the fast path after."""
        holders = {n: getattr(self.layers[n], "attention", self.layers[n]) for n in self.info.order
                   if OPS[self.info.nodes[n].op].attention}
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
        """The loss terms layers left in the last forward pass (a VAE's KL, before β weighs it), or None."""
        terms = [m.aux for m in self.aux_layers if m.aux is not None]
        return sum(terms[1:], terms[0]) if terms else None

    def aux_rows(self) -> torch.Tensor | None:
        """The same terms per sample of the last forward pass, (B,), or None."""
        terms = [m.aux_rows for m in self.aux_layers if m.aux_rows is not None]
        return sum(terms[1:], terms[0]) if terms else None

    def trainable(self, model: ModelSpec) -> tuple[list[torch.nn.Parameter], list[float]]:
        """The parameters the optimizer updates, block by block in graph order, with each one's learning-rate
        multiplier; a frozen block's parameters stop asking for gradients and are left out."""
        nodes = {n.id: n for n in model.nodes}
        params: list[torch.nn.Parameter] = []
        mults: list[float] = []
        seen: set[int] = set()
        self.frozen = [self.layers[n.id] for n in model.nodes if n.frozen and n.id in self.layers]
        for node_id in self.info.order:
            node = nodes.get(node_id)
            frozen, mult = (node.frozen, node.lr_mult) if node is not None else (False, 1.0)
            for p in self.layers[node_id].parameters():
                seen.add(id(p))
                p.requires_grad_(not frozen)
                if not frozen:
                    params.append(p)
                    mults.append(mult)
        rest = [p for p in self.parameters() if id(p) not in seen]  # none today; kept at the base rate
        return params + rest, mults + [1.0] * len(rest)

    def penalized_parameters(self) -> list[torch.Tensor]:
        """The weights L1/L2 and weight decay act on (never biases or norm gains)."""
        out = []
        for n in self.info.order:
            for name in OPS[self.info.nodes[n].op].penalized:
                out.append(self.layers[n].get_parameter(name))
        return out
