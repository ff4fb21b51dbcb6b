from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import torch

PRESETS = Path(__file__).resolve().parent.parent / "assets" / "presets"

torch.set_num_threads(1)


def preset_dict(name: str) -> dict[str, Any]:
    return json.loads((PRESETS / f"{name}.json").read_text())


def spec_dict(name: str = "tfp-circle", **sections: Any) -> dict[str, Any]:
    """A preset as a dict with top-level sections replaced or merged (dicts merge one level deep)."""
    data = copy.deepcopy(preset_dict(name))
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict) and "kind" not in value:
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return data


@pytest.fixture
def circle_dict() -> dict[str, Any]:
    return spec_dict("tfp-circle")


def build_op(op: str, params: dict[str, Any], shapes: list[tuple[int, ...]], ctx: Any = None) -> tuple[Any, Any, Any]:
    """Build one registered op: (torch module, validated params, the registry entry)."""
    from engine.layers import OPS, BuildContext

    spec = OPS[op]
    p = spec.params.model_validate(params)
    return spec.build(p, shapes, ctx or BuildContext()), p, spec


def n_params(module: torch.nn.Module) -> int:
    return sum(t.numel() for t in module.parameters())
