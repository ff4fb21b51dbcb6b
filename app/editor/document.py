"""The graph editor's document: a draft model graph, its diagnosis, and an undo stack of whole-graph edits.

Every edit is one QUndoCommand holding the model before and after, so undo and redo restore the spec
exactly (ids, params, edge order, positions) whatever the edit was.
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from engine.check import Diagnosis, diagnose
from engine.errors import format_pydantic
from engine.head import output_activation
from engine.ops import OPS
from engine.spec import ModelSpec, SessionSpec
from engine.templates import auto_layout

MERGE_ID = 1  # QUndoCommand id: consecutive edits with the same merge key (moving the same blocks, stepping one
# parameter with a spin box's arrows) merge into one undo step


class GraphCommand(QUndoCommand):
    """Replace the draft with `after`; undo puts `before` back."""

    def __init__(self, doc: EditorDocument, before: ModelSpec, after: ModelSpec, text: str,
                 merge_key: object = None) -> None:
        super().__init__(text)
        self.doc, self.before, self.after, self.merge_key = doc, before, after, merge_key

    def redo(self) -> None:
        self.doc._set(self.after)

    def undo(self) -> None:
        self.doc._set(self.before)

    def id(self) -> int:
        return MERGE_ID if self.merge_key is not None else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        if self.doc.hold_merge or not isinstance(other, GraphCommand) or other.merge_key != self.merge_key:
            return False
        self.after = other.after
        return True


class EditorDocument(QObject):
    """Holds the draft; `changed` fires after every edit, undo and redo, with the diagnosis up to date."""

    changed = Signal()
    refused = Signal(str)  # an edit that cannot be made (a wire that would duplicate one, say)

    def __init__(self, model: ModelSpec, spec: SessionSpec | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.undo_stack = QUndoStack(self)
        self.spec = spec
        self.model = model
        self.diagnosis: Diagnosis = diagnose(model, spec)
        self.port_hints: dict[tuple[str, str], int] = {}  # which named port a wire uses while others are empty
        self.hold_merge = False  # set while an edit may be taken back on its own (a declined reset)

    # --- state -----------------------------------------------------------------------------------

    def _set(self, model: ModelSpec) -> None:
        self.model = model
        self.diagnosis = diagnose(model, self.spec)
        self.changed.emit()

    def reset(self, model: ModelSpec, spec: SessionSpec | None) -> None:
        """Start over from another model (a session was opened): the undo history goes with the old one."""
        self.undo_stack.clear()
        self.spec = spec
        self.port_hints.clear()
        self._set(model)

    def set_context(self, spec: SessionSpec) -> None:
        """The session's spec changed around the same graph. Only its dataset and loss bear on the diagnosis;
        a learning-rate change while training must not re-check and redraw the graph."""
        old, self.spec = self.spec, spec
        if old is None or (old.dataset, old.loss) != (spec.dataset, spec.loss):
            self._set(self.model)

    def node(self, node_id: str) -> dict[str, Any]:
        return next(n for n in self.as_dict()["nodes"] if n["id"] == node_id)

    def as_dict(self) -> dict[str, Any]:
        return self.model.model_dump(mode="json")

    # --- edits -----------------------------------------------------------------------------------

    def edit(self, text: str, change: Callable[[dict[str, Any]], None], merge_key: object = None) -> bool:
        """Apply `change` to a copy of the model dict and push it as one undoable step."""
        data = copy.deepcopy(self.as_dict())
        change(data)
        try:
            after = ModelSpec.model_validate(data)
        except ValidationError as exc:
            self.refused.emit(str(format_pydantic(exc, "model")))
            return False
        if after == self.model:
            return False
        self.undo_stack.push(GraphCommand(self, self.model, after, text, merge_key))
        return True

    def replace(self, model: ModelSpec, text: str) -> None:
        """Push a whole new model (a template, a change made in the layer-stack editor)."""
        if model != self.model:
            self.port_hints.clear()
            self.undo_stack.push(GraphCommand(self, self.model, model, text))

    def unique_id(self, base: str, taken: set[str] | None = None) -> str:
        taken = taken if taken is not None else {n.id for n in self.model.nodes}
        k = 1
        while f"{base}_{k}" in taken:
            k += 1
        return f"{base}_{k}"

    def add_node(self, op: str, position: tuple[float, float]) -> str:
        taken = {n.id for n in self.model.nodes}
        # The network's ends take their op's name while it is free; everything else is numbered.
        node_id = op if op in ("input", "output") and op not in taken else self.unique_id(op, taken)
        defaults = {"output": {"activation": self._head_activation()}}.get(op, {})

        def change(d: dict[str, Any]) -> None:
            d["nodes"].append({"id": node_id, "op": op, "params": defaults, "position": list(position)})
        self.edit(f"add {op}", change)
        return node_id

    def _head_activation(self) -> str:
        return output_activation(self.spec) if self.spec is not None else "softmax"

    def move(self, positions: dict[str, tuple[float, float]]) -> None:
        def change(d: dict[str, Any]) -> None:
            for n in d["nodes"]:
                if n["id"] in positions:
                    n["position"] = [round(positions[n["id"]][0], 1), round(positions[n["id"]][1], 1)]
        what = next(iter(positions)) if len(positions) == 1 else f"{len(positions)} blocks"
        self.edit(f"move {what}", change, merge_key=("move", frozenset(positions)))

    def delete(self, nodes: set[str], edges: set[tuple[str, str]]) -> None:
        def change(d: dict[str, Any]) -> None:
            d["nodes"] = [n for n in d["nodes"] if n["id"] not in nodes]
            d["edges"] = [e for e in d["edges"]
                          if e[0] not in nodes and e[1] not in nodes and (e[0], e[1]) not in edges]
        parts = [f"{len(nodes)} block{'s' if len(nodes) != 1 else ''}"] if nodes else []
        parts += [f"{len(edges)} wire{'s' if len(edges) != 1 else ''}"] if edges else []
        if parts:
            self.edit("delete " + " and ".join(parts), change)

    def slots(self, node_id: str) -> list[str | None]:
        """The source wired into each input port of a node with named ports, in port order (None = empty)."""
        node = next(n for n in self.model.nodes if n.id == node_id)
        names = OPS[node.op].ports if node.op in OPS else ()
        srcs = [s for s, t in self.model.edges if t == node_id]
        if not names:
            return list(srcs)
        out: list[str | None] = [None] * len(names)
        rest = []
        for s in srcs:
            hint = self.port_hints.get((s, node_id))
            if hint is not None and hint < len(out) and out[hint] is None:
                out[hint] = s
            else:
                rest.append(s)
        for s in rest:
            free = next((i for i, v in enumerate(out) if v is None), None)
            if free is None:
                out.append(s)
            else:
                out[free] = s
        return out

    def connect(self, src: str, dst: str, port: int = 0) -> bool:
        """Wire src's output into dst's input port; a single-input port that is taken is rewired."""
        if src == dst:
            self.refused.emit("A block cannot feed itself.")
            return False
        node = next(n for n in self.model.nodes if n.id == dst)
        op = OPS.get(node.op)
        if op is None or op.inputs[1] == 0:
            self.refused.emit(f"{dst} has no inputs.")
            return False
        if (src, dst) in {tuple(e) for e in self.model.edges}:
            self.refused.emit(f"{src} is already wired to {dst}.")
            return False
        if op.ports:
            slots = self.slots(dst)
            slots[port] = src
            order = [s for s in slots if s is not None]
            for i, s in enumerate(slots):
                if s is not None:
                    self.port_hints[(s, dst)] = i
        elif op.inputs[1] == 1:
            order = [src]
        else:
            order = [s for s, t in self.model.edges if t == dst] + [src]

        def change(d: dict[str, Any]) -> None:
            others = [e for e in d["edges"] if e[1] != dst]
            d["edges"] = others + [[s, dst] for s in order]
        label = f" ({op.ports[port]})" if op.ports else ""
        return self.edit(f"wire {src} → {dst}{label}", change)

    def set_params(self, node_id: str, params: dict[str, Any]) -> bool:
        old = self.node(node_id).get("params", {})
        changed = sorted(k for k in set(old) | set(params) if old.get(k) != params.get(k))

        def change(d: dict[str, Any]) -> None:
            for n in d["nodes"]:
                if n["id"] == node_id:
                    n["params"] = params
        return self.edit(f"edit {node_id} {', '.join(changed)}", change, merge_key=("params", node_id, *changed))

    def set_training(self, node_id: str, frozen: bool, lr_mult: float) -> bool:
        """Freeze a block, or let it learn at a multiple of the learning rate (fine-tuning)."""
        def change(d: dict[str, Any]) -> None:
            for n in d["nodes"]:
                if n["id"] == node_id:
                    n.pop("frozen", None)
                    n.pop("lr_mult", None)
                    if frozen:
                        n["frozen"] = True
                    if lr_mult != 1.0:
                        n["lr_mult"] = lr_mult
        what = "freeze" if frozen else f"lr ×{lr_mult:g}"
        return self.edit(f"{what} {node_id}", change, merge_key=("training", node_id))

    def set_pretrained(self, node_id: str, name: str | None) -> bool:
        """Start a block from the same block of a shipped trained network (None: from random weights)."""
        def change(d: dict[str, Any]) -> None:
            for n in d["nodes"]:
                if n["id"] == node_id:
                    n.pop("pretrained", None)
                    if name is not None:
                        n["pretrained"] = name
        what = f"start {node_id} from {name}" if name else f"start {node_id} from random weights"
        return self.edit(what, change)

    def paste(self, nodes: list[dict[str, Any]], edges: list[list[str]], offset: tuple[float, float]) -> list[str]:
        """Add copies of blocks (fresh ids, shifted) and the wires between them."""
        taken = {n.id for n in self.model.nodes}
        rename: dict[str, str] = {}
        for n in nodes:
            base = n["id"].rstrip("0123456789").rstrip("_") or n["op"]
            rename[n["id"]] = self.unique_id(base, taken)
            taken.add(rename[n["id"]])

        def change(d: dict[str, Any]) -> None:
            for n in nodes:
                x, y = n.get("position") or (0.0, 0.0)
                copy = {k: v for k, v in n.items() if k != "pretrained"}  # a trained start belongs to its id
                d["nodes"].append({**copy, "id": rename[n["id"]], "position": [x + offset[0], y + offset[1]]})
            d["edges"] += [[rename[s], rename[t]] for s, t in edges if s in rename and t in rename]
        self.edit(f"paste {len(nodes)} block{'s' if len(nodes) != 1 else ''}", change)
        return list(rename.values())

    def auto_layout(self) -> None:
        def change(d: dict[str, Any]) -> None:
            d["nodes"] = auto_layout(d)["nodes"]
        self.edit("auto-layout", change)
