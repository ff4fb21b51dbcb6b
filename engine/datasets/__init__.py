"""Dataset families. Importing this package registers every family; no family imports back."""
from __future__ import annotations

# Each module registers its family; the first registered (toy2d) is a new spec's default, so order matters.
# isort: off
from . import toy2d  # noqa: F401
from . import images  # noqa: F401
from . import sequences  # noqa: F401
# isort: on
from .registry import FAMILIES, DataFamily, Dataset, family_of, input_shape, make_dataset

__all__ = ["FAMILIES", "DataFamily", "Dataset", "family_of", "input_shape", "make_dataset"]
