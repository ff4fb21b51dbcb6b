"""Presets (specs without weights, in assets/presets) and the layer-stack builder they use."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import SpecError
from .spec import SessionSpec, load_spec_json

PRESET_DIR = Path(__file__).resolve().parent.parent / "assets" / "presets"


def preset_names() -> list[str]:
    """Names of the shipped presets, sorted."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.json"))


def load_preset(name: str) -> SessionSpec:
    """Load a shipped preset by name."""
    path = PRESET_DIR / f"{name}.json"
    if not path.is_file():
        raise SpecError(name, f"no such preset (available: {', '.join(preset_names())})")
    return load_spec_json(path)


def mlp(hidden: list[int], activation: str = "tanh", output: str = "tanh", *, units_out: int = 1,
        init: str = "default", dropout: float = 0.0, batch_norm: bool = False) -> dict[str, Any]:
    """A layer stack as a model graph dict: input → [dense (+bn) (+dropout)]* → dense → output."""
    nodes: list[dict[str, Any]] = [{"id": "input", "op": "input", "position": [0.0, 0.0]}]
    edges: list[list[str]] = []

    def add(node_id: str, op: str, params: dict[str, Any]) -> None:
        nodes.append({"id": node_id, "op": op, "params": params, "position": [float(len(nodes)) * 160, 0.0]})
        edges.append([nodes[-2]["id"], node_id])

    for i, units in enumerate(hidden, start=1):
        add(f"dense_{i}", "dense", {"units": units, "activation": activation, "init": init})
        if batch_norm:
            add(f"bn_{i}", "batch_norm", {})
        if dropout > 0:
            add(f"dropout_{i}", "dropout", {"p": dropout})
    add(f"dense_{len(hidden) + 1}", "dense", {"units": units_out, "activation": "linear", "init": init})
    add("output", "output", {"activation": output})
    return {"nodes": nodes, "edges": edges}


def write_json(data: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
