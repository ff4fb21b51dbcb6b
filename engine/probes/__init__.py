"""Probes: what views draw, as named arrays computed from the model. Importing this package registers them."""
from __future__ import annotations

from . import boundary, health, images  # noqa: F401  (each registers its probes)
from .registry import PROBES, Probe, ProbeContext, ProbeRequest, ProbeResult, applicable, run_probe

__all__ = ["PROBES", "Probe", "ProbeContext", "ProbeRequest", "ProbeResult", "applicable", "run_probe"]
