"""JSON from users, read with limits checked before any work: nesting depth and integer size are bounded
before parsing (Python's parser recurses, and ``int()`` refuses more than 4,300 digits with its own error),
so a hostile file ends in the engine's own error naming where, never a RecursionError or ValueError."""
from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np

from .errors import EngineError, SpecError

MAX_DEPTH = 64  # a spec nests about 6 deep; the UI state a little more
MAX_INT_DIGITS = 40  # seeds and counts fit in 20 digits
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)  # unrolled: linear, no backtracking
_OPEN = frozenset(b"[{")
_CLOSE = frozenset(b"]}")


def nesting_depth(text: str) -> int:
    """The deepest bracket nesting of a JSON text, strings ignored (vectorised: linear in the text)."""
    raw = np.frombuffer(_STRING.sub('""', text).encode("utf-8", "surrogatepass"), dtype=np.uint8)
    step = np.isin(raw, list(_OPEN)).astype(np.int32) - np.isin(raw, list(_CLOSE)).astype(np.int32)
    return int(np.cumsum(step).max(initial=0))


def loads(data: str | bytes, where: str, error: type[EngineError] = SpecError) -> Any:
    """Parse JSON text, or raise ``error(where, why)``: not UTF-8, too deep, too large an integer, not JSON."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise error(where, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    depth = nesting_depth(data)
    if depth > MAX_DEPTH:
        raise error(where, f"nested {depth} levels deep; the limit is {MAX_DEPTH}")

    def parse_int(digits: str) -> int:
        if len(digits.lstrip("-")) > MAX_INT_DIGITS:
            raise error(where, f"an integer of {len(digits.lstrip('-')):,} digits; the limit is {MAX_INT_DIGITS}")
        return int(digits)

    try:
        return json.loads(data, parse_int=parse_int)
    except json.JSONDecodeError as exc:
        raise error(where, f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None


def check_tree(value: Any, where: str, error: type[EngineError] = SpecError) -> None:
    """Check a decoded value the way ``loads`` checks text (depth, integer size) and that it is plain JSON
    with finite numbers, so it can be written back; iterative, so no depth can make it recurse."""
    stack: list[tuple[Any, str, int]] = [(value, where, 0)]
    while stack:
        v, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise error(path or "spec", f"nested more than {MAX_DEPTH} levels deep")
        if isinstance(v, dict):
            for k, x in v.items():
                if not isinstance(k, str):
                    raise error(path or "spec", f"has a key that is not a string: {k!r}")
                stack.append((x, f"{path}.{k}" if path else k, depth + 1))
        elif isinstance(v, list):
            stack.extend((x, f"{path}[{i}]", depth + 1) for i, x in enumerate(v))
        elif isinstance(v, bool) or v is None or isinstance(v, str):
            continue
        elif isinstance(v, int):
            if abs(v) >= 10 ** MAX_INT_DIGITS:
                raise error(path, f"an integer of more than {MAX_INT_DIGITS} digits")
        elif isinstance(v, float):
            if not math.isfinite(v):
                raise error(path, f"must be a finite number, got {v}")
        else:
            raise error(path, f"is not plain JSON ({type(v).__name__})")
