"""DL Playground's engine: specs, graphs, datasets, training and session files. No Qt, ever."""
from __future__ import annotations

from .check import load_spec_json, parse_spec
from .errors import EngineError, GraphError, SessionFileError, SpecError
from .spec import FORMAT_VERSION, SessionSpec
from .train.checkpoint import Checkpoint
from .train.snapshot import Configure, EditWeight, Snapshot
from .train.trainer import Trainer

__all__ = [
    "FORMAT_VERSION", "Checkpoint", "Configure", "EditWeight", "EngineError", "GraphError", "SessionFileError", "SessionSpec",
    "Snapshot", "SpecError", "Trainer", "load_spec_json", "parse_spec",
]
