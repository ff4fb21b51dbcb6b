"""Presets (specs without weights, in assets/presets) and the layer-stack builder they use."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import SpecError
from .spec import SessionSpec, load_spec_json
from .stack import Layer, Stack, to_model

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
    layers = tuple(Layer(units, activation, dropout, batch_norm) for units in hidden)
    return to_model(Stack(layers, output, units_out, init))


def write_json(data: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
