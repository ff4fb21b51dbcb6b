"""Probes: what views draw, as named arrays computed from the model. Importing this package registers them."""
from __future__ import annotations

# isort: off
from . import boundary, features, health, images  # noqa: F401  (each registers its probes)
from . import adversarial  # noqa: F401  (after images, which it imports: registration order is listing order)
from . import embedding  # noqa: F401
from . import latent  # noqa: F401  (after embedding, which it imports)
from . import attention, recurrent, sequences, tokens  # noqa: F401  (sequence sets)
# isort: on
from .registry import PROBES, Probe, ProbeContext, ProbeRequest, ProbeResult, applicable, run_probe

__all__ = ["PROBES", "Probe", "ProbeContext", "ProbeRequest", "ProbeResult", "applicable", "run_probe"]
