"""The base of every spec model (unknown fields refused, values frozen) and unions built from registries."""
from __future__ import annotations

import functools
import json
import operator
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class Strict(BaseModel):
    # Non-finite numbers are refused everywhere: NaN cannot be saved as JSON, and no setting means infinity.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def validate_strict(model: type[BaseModel] | TypeAdapter[Any], data: Any) -> Any:
    """Validate plain JSON data with no coercion (a boolean is not a number, a string is not a float): through
    pydantic's strict JSON mode, where arrays may still fill tuples."""
    text = json.dumps(data, allow_nan=True)
    if isinstance(model, TypeAdapter):
        return model.validate_json(text, strict=True)
    return model.model_validate_json(text, strict=True)


def tagged_union(models: tuple[type[BaseModel], ...]) -> Any:
    """The models as one type that pydantic tells apart by their ``kind`` field (a registry's entries)."""
    if len(models) == 1:
        return models[0]
    return Annotated[functools.reduce(operator.or_, models), Field(discriminator="kind")]
