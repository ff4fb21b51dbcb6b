"""The op registry and its families. Importing this package registers every op; no family imports back."""
from __future__ import annotations

from . import core, generative, graph, image, sequence  # noqa: F401  (each registers its ops)
from .registry import FAMILIES, OPS, BuildContext, Op, Params, Shape, ShapeError, fmt_shape

__all__ = ["FAMILIES", "OPS", "BuildContext", "Op", "Params", "Shape", "ShapeError", "fmt_shape"]
