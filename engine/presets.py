"""Presets (specs without weights, shipped as package data in assets/presets) and the layer-stack builder they use."""
from __future__ import annotations

from importlib.resources import as_file, files
from importlib.resources.abc import Traversable
from typing import Any

from .check import load_spec_json
from .errors import SpecError
from .spec import SessionSpec
from .stack import Layer, Stack, to_model

# A resource, not a path beside this file: the presets live in the installed `assets` package (wheel or checkout).
PRESET_DIR: Traversable = files("assets") / "presets"


def preset_names() -> list[str]:
    """Names of the shipped presets, sorted."""
    return sorted(p.name.removesuffix(".json") for p in PRESET_DIR.iterdir()
                  if p.name.endswith(".json") and p.is_file())


def load_preset(name: str) -> SessionSpec:
    """Load a shipped preset by name."""
    resource = PRESET_DIR / f"{name}.json"
    if not resource.is_file():
        raise SpecError(name, f"no such preset (available: {', '.join(preset_names())})")
    # as_file gives a real path even from a zipped install, so load_spec_json reports errors exactly as for any file.
    with as_file(resource) as path:
        return load_spec_json(path)


def mlp(hidden: list[int], activation: str = "tanh", output: str = "tanh", *, units_out: int = 1,
        init: str = "default", dropout: float = 0.0, batch_norm: bool = False) -> dict[str, Any]:
    """A layer stack as a model graph dict: input → [dense (+bn) (+dropout)]* → dense → output."""
    layers = tuple(Layer(units, activation, dropout, batch_norm) for units in hidden)
    return to_model(Stack(layers, output, units_out, init))
