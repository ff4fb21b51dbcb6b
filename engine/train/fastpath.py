"""The optimizer fast path: skip what torch wraps around an optimizer step and a per-tensor finite check.

Tiny networks (TensorFlow Playground's, a few dozen weights) are bound by per-call overhead, not arithmetic:
``Optimizer.step`` runs inside a profiler scope and hook dispatch (``step.__wrapped__`` is the bare update),
and checking each gradient for inf/NaN one tensor at a time costs a call per tensor where AMP's fused
``_amp_foreach_non_finite_check_and_unscale_`` does it in one. Same arithmetic: the update is bit-identical
to ``optimizer.step()`` (tested for every registered optimizer). Whenever torch's internals are not what
this expects (no ``__wrapped__``, hooks registered, the fused op missing) it falls back to the plain calls.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

StepFn = Callable[[torch.optim.Optimizer], Any]
_FUSED_CHECK = getattr(torch, "_amp_foreach_non_finite_check_and_unscale_", None)


def plain_step(opt: torch.optim.Optimizer) -> Any:
    return opt.step()


def step_function(opt: torch.optim.Optimizer) -> StepFn:
    """The bare update of this optimizer, or the plain ``step`` when the wrapper cannot be skipped safely."""
    inner = getattr(type(opt).step, "__wrapped__", None)
    pre = getattr(opt, "_optimizer_step_pre_hooks", None)
    post = getattr(opt, "_optimizer_step_post_hooks", None)
    if inner is None or pre is None or post is None or pre or post or _global_hooks():
        return plain_step
    return inner


def _global_hooks() -> bool:
    """True when someone registered global optimizer hooks (then the wrapper must run)."""
    from torch.optim import optimizer as module

    pre = getattr(module, "_global_optimizer_pre_hooks", None)
    post = getattr(module, "_global_optimizer_post_hooks", None)
    return pre is None or post is None or bool(pre) or bool(post)


class FiniteCheck:
    """Says whether every gradient is finite, in one fused call where torch offers it."""

    def __init__(self, device: torch.device) -> None:
        self._found = torch.zeros(1, device=device)
        self._one = torch.ones(1, device=device)

    def __call__(self, grads: list[torch.Tensor]) -> bool:
        if not grads:
            return True
        if _FUSED_CHECK is None:
            return bool(torch.stack([g.isfinite().all() for g in grads]).all())
        self._found.zero_()
        _FUSED_CHECK(grads, self._found, self._one)  # multiplying by 1.0 changes nothing
        return self._found.item() == 0.0
