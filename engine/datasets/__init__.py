"""Dataset families. Importing this package registers every family; no family imports back."""
from __future__ import annotations

from . import toy2d  # noqa: F401  (registers the 2-D toy problems)
from .registry import FAMILIES, DataFamily, Dataset, family_of, input_shape, make_dataset

__all__ = ["FAMILIES", "DataFamily", "Dataset", "family_of", "input_shape", "make_dataset"]
