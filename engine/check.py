"""One place for checking a spec: parse and validate it, load it from JSON, check its graph against the
dataset and the head rules (output units and activation per task, loss pairing), and diagnose drafts."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
from pydantic import ValidationError

from . import safejson
from .datasets import input_shape as dataset_input_shape
from .errors import GraphError, SpecError, format_pydantic
from .graph import SOURCES, GraphInfo, _arity, analyse, node_params, to_networkx
from .head import Head
from .ops import OPS, Params, Shape, ShapeError, fmt_shape
from .safejson import check_tree
from .schema import validate_strict
from .spec import Augment, ModelSpec, SessionSpec, migrate

# Which output activations suit which task, and the losses each takes.
HEADS = {
    ("classification", "softmax"): {"cross_entropy", "mse"},
    ("classification", "sigmoid"): {"bce", "mse"},
    ("classification", "tanh"): {"mse"},
    ("classification", "linear"): {"bce", "mse"},
    ("regression", "tanh"): {"mse"},
    ("regression", "linear"): {"mse"},
    ("reconstruction", "sigmoid"): {"bce", "mse"},  # pixels in [0, 1]
    ("reconstruction", "linear"): {"mse"},
    ("sequence", "softmax"): {"cross_entropy"},  # a class per token
}


def parse_spec(data: Any) -> SessionSpec:
    """Validate a spec dict (any known version) and its model graph; raise SpecError naming the field. No
    coercion: a boolean is not a number, a string is not a float; non-finite numbers are refused."""
    if not isinstance(data, dict):
        raise SpecError("spec", f"must be a JSON object, got {type(data).__name__}")
    check_tree(data, "")
    data = migrate(data)
    try:
        spec = validate_strict(SessionSpec, data)
    except ValidationError as exc:
        raise format_pydantic(exc) from None
    check_spec(spec)
    return spec


def load_spec_json(path: str | Path) -> SessionSpec:
    """Read and validate a spec JSON file."""
    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise SpecError(str(path), f"cannot read: {exc.strerror or exc}") from None
    return parse_spec(safejson.loads(text, str(path)))


# Augmentations that move an image's pixels: its reconstruction target would have to move with it.
GEOMETRIC = ("shift", "rotation", "flip")


def check_augment(task: str, augment: Augment) -> None:
    """An autoencoder's target is the clean picture as it is: noise and cutout on the input alone make it a
    denoising (or inpainting) one, but a shift, turn or flip of the input alone asks it to undo a random move
    it cannot know. SpecError naming the field."""
    if task != "reconstruction":
        return
    for name in GEOMETRIC:
        if getattr(augment, name):
            raise SpecError(f"regularization.augment.{name}", "an autoencoder gives back the picture as it came: "
                            "moving the input alone would ask it to guess the move; use noise or cutout")


def check_spec(spec: SessionSpec) -> GraphInfo:
    """Validate the model graph against the dataset, the head and the loss."""
    check_augment(spec.dataset.task, spec.regularization.augment)
    info = analyse(spec.model, dataset_input_shape(spec.dataset))
    out = info.nodes[info.output_id]
    act = out.params.activation  # type: ignore[attr-defined]
    task = spec.dataset.task
    path = f"model.nodes[{out.index}].params.activation"
    losses = HEADS.get((task, act))
    if losses is None:
        raise SpecError(path, f"{act} does not suit {task}; use {' or '.join(a for t, a in HEADS if t == task)}")
    if act in ("sigmoid", "tanh", "linear") and task == "classification" and spec.dataset.n_classes != 2:
        raise SpecError(path, f"{act} separates two classes but this dataset has {spec.dataset.n_classes}; use softmax")
    if spec.loss not in losses:
        raise SpecError("loss", f"{spec.loss} does not fit a {act} output; use {' or '.join(sorted(losses))}")
    if info.total_params == 0:
        raise GraphError("model", "the network has no trainable parameters: add a dense layer")
    head = Head.of(spec)
    units = head.units
    if head.task == "reconstruction":
        if out.shape not in ((units,), head.shape):
            feeder = info.nodes[out.inputs[0]]
            raise GraphError(
                f"model.nodes[{out.index}]",
                f"{out.id} must give the picture back, {fmt_shape(head.shape)} or {fmt_shape((units,))} values, "
                f"but gets {fmt_shape(out.shape)}: " + (f"give {feeder.id} {units} units" if feeder.op == "dense"
                                                        else f"make {feeder.id} give {fmt_shape(head.shape)}"))
        return info
    if out.shape != head.output_shape:
        feeder = info.nodes[out.inputs[0]]
        steps = " at every step" if head.task == "sequence" else ""
        fix = f"give {feeder.id} {units} unit{'s' if units > 1 else ''}{steps}"
        if len(out.shape) == 2 and out.shape[-1] == units and head.task != "sequence":  # steps never pooled
            fix = (f"{feeder.id} answers at each of the {out.shape[0]} steps; insert a readout (or a recurrent "
                   f"block with output last) before it")
        raise GraphError(f"model.nodes[{out.index}]",
                         f"{out.id} expects {fmt_shape(head.output_shape)} but gets {fmt_shape(out.shape)}: {fix}")
    check_tokens(spec, info)
    check_decoder(spec, info)
    return info


def check_tokens(spec: SessionSpec, info: GraphInfo) -> None:
    """Every embedding that reads a sequence set's tokens has a row for each of its ids (the start token ▶,
    the last, included): a smaller table would fail at the first step."""
    vocab = getattr(spec.dataset, "vocab", None)
    if vocab is None:
        return
    sources = [n for n in info.order if info.nodes[n].op in SOURCES]
    for n in info.order:
        node = info.nodes[n]
        if node.op == "embedding" and any(p in sources for p in node.inputs) and node.params.vocab < vocab:  # type: ignore[attr-defined]
            raise GraphError(f"model.nodes[{node.index}].params.vocab",
                             f"{n} has {node.params.vocab} rows but the data's tokens run from 0 to "  # type: ignore[attr-defined]
                             f"{vocab - 1}: give it vocab {vocab}")


# Blocks that let a step see later steps: on a decoder's path they would let it read the answer it must write.
def _sees_ahead(op: str, params: Params) -> bool:
    if op in ("rnn", "lstm", "gru"):
        return bool(params.bidirectional) or params.output == "last"  # type: ignore[attr-defined]
    if op in ("self_attention", "transformer_block"):
        return not params.causal  # type: ignore[attr-defined]
    return op in ("readout", "flatten", "reshape")


def check_decoder(spec: SessionSpec, info: GraphInfo) -> None:
    """A decoder's input (the target so far, teacher forcing) exists only for per-token tasks, and no block on
    its way to the output may look at later steps: step t would read the answer it is asked to write (its
    training loss would fall while what it writes itself stays poor)."""
    for node in info.nodes.values():
        if node.op != "decoder_input":
            continue
        if spec.dataset.task != "sequence":
            raise GraphError(f"model.nodes[{node.index}]", f"{node.id} feeds a decoder the target so far, which "
                             f"only a per-token task has (this one is {spec.dataset.task})")
        after = nx.descendants(info.graph, node.id) | {node.id}
        path = after & nx.ancestors(info.graph, info.output_id)
        for n in info.order:
            block = info.nodes[n]
            # cross-attention over the decoder's own steps (its context port) sees them all, later ones too
            context = block.op == "cross_attention" and block.inputs[1] in after
            if n in path and (context or _sees_ahead(block.op, block.params)):
                raise GraphError(f"model.nodes[{block.index}]",
                                 f"{n} ({block.op}) lets each step see later ones, but it reads the decoder's "
                                 f"input {node.id}: step t would read the answer it must write; make it causal "
                                 f"(one direction, every step, causal attention)")


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
        input_shape = dataset_input_shape(spec.dataset)
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
            if op.name in SOURCES:
                # a decoder's input takes the input block's shape (the target so far is as long as the input)
                source = n if op.name == "input" else next((m for m in params if g.nodes[m]["op"] == "input"), n)
                declared = getattr(params[source], "shape", None)
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


