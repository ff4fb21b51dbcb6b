"""User-facing errors: one line that says what is wrong and why."""
from __future__ import annotations


class EngineError(Exception):
    """An error a user can act on; ``str()`` is one line, no traceback needed."""

    def __init__(self, what: str, why: str) -> None:
        super().__init__(f"{what}: {why}")
        self.what = what
        self.why = why


class SpecError(EngineError):
    """A session spec is invalid; ``what`` is the field path (``model.nodes[2].params.units``)."""


class GraphError(SpecError):
    """The model graph is invalid (unknown op, cycle, shape mismatch, ...)."""


class SessionFileError(EngineError):
    """A session file cannot be read or written."""


def format_pydantic(exc: object, prefix: str = "") -> SpecError:
    """Turn a pydantic ValidationError into a SpecError naming the first bad field path."""
    errors = exc.errors()  # type: ignore[attr-defined]
    first = errors[0]
    path = prefix
    for part in first["loc"]:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("." if path else "") + str(part)
    msg = first["msg"]
    if first.get("type") == "extra_forbidden":
        msg = "unknown field"
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return SpecError(path or "spec", msg + more)
