"""The base of every spec model (unknown fields refused, values frozen) and unions built from registries."""
from __future__ import annotations

import functools
import operator
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def tagged_union(models: tuple[type[BaseModel], ...]) -> Any:
    """The models as one type that pydantic tells apart by their ``kind`` field (a registry's entries)."""
    if len(models) == 1:
        return models[0]
    return Annotated[functools.reduce(operator.or_, models), Field(discriminator="kind")]
