"""The op registry and its families. Importing this package registers every op; no family imports back."""
# ruff: noqa: I001  (the families import in the order the palette lists them, not alphabetically)
from __future__ import annotations

from . import core, image, sequence, vision, graph, generative  # noqa: F401  (each registers its ops)
from .registry import FAMILIES, OPS, BuildContext, Op, Params, Shape, ShapeError, fmt_shape

__all__ = ["FAMILIES", "OPS", "BuildContext", "Op", "Params", "Shape", "ShapeError", "fmt_shape"]
