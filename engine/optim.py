"""Optimizers and learning-rate schedules, built from the spec and changed live between steps."""
from __future__ import annotations

import math

import torch

from .graph import GraphModule
from .spec import OptimizerSpec, ScheduleSpec

# Spec field → optimizer param-group key; beta1/beta2 share torch's `betas` tuple.
_GROUP_KEYS = {"lr": "lr", "momentum": "momentum", "eps": "eps", "alpha": "alpha"}


def make_optimizer(spec: OptimizerSpec, model: GraphModule) -> torch.optim.Optimizer:
    """One param group (per-group overhead dominates tiny networks); decoupled weight decay is the trainer's."""
    params = list(model.parameters())
    k = spec.kind
    if k in ("sgd", "momentum", "nesterov"):
        return torch.optim.SGD(params, lr=spec.lr, momentum=getattr(spec, "momentum", 0.0), nesterov=k == "nesterov")
    if k in ("adam", "adamw"):
        # AdamW is Adam plus decoupled weight decay, which the trainer applies to weights only (not biases).
        cls = torch.optim.AdamW if k == "adamw" else torch.optim.Adam
        return cls(params, lr=spec.lr, betas=(spec.beta1, spec.beta2), eps=spec.eps, weight_decay=0.0)
    if k == "rmsprop":
        return torch.optim.RMSprop(params, lr=spec.lr, alpha=spec.alpha, eps=spec.eps, momentum=spec.momentum)
    if k == "adagrad":
        return torch.optim.Adagrad(params, lr=spec.lr, eps=spec.eps)
    raise ValueError(f"unknown optimizer {k}")


def update_hyper(opt: torch.optim.Optimizer, spec: OptimizerSpec, lr: float) -> None:
    """Apply a same-kind optimizer spec to live param groups, keeping the optimizer's state."""
    for group in opt.param_groups:
        for field, key in _GROUP_KEYS.items():
            if field != "lr" and hasattr(spec, field):
                group[key] = getattr(spec, field)
        group["lr"] = lr
        if hasattr(spec, "beta1"):
            group["betas"] = (spec.beta1, spec.beta2)


def lr_factor(spec: ScheduleSpec, step: int, steps_per_epoch: int) -> float:
    """The schedule's multiplier on the base learning rate before optimizer step `step` (0-based)."""
    k = spec.kind
    if k == "constant":
        return 1.0
    epoch = step / steps_per_epoch
    if k == "step":
        return spec.gamma ** math.floor(epoch / spec.every_epochs)
    if k == "exponential":
        return spec.gamma ** math.floor(epoch)
    if k == "cosine":
        return _cosine(epoch / spec.total_epochs, spec.min_factor)
    if k == "warmup_cosine":
        warm = spec.warmup_epochs * steps_per_epoch
        if step < warm:
            return (step + 1) / warm
        return _cosine((epoch - spec.warmup_epochs) / (spec.total_epochs - spec.warmup_epochs), spec.min_factor)
    raise ValueError(f"unknown schedule {k}")


def _cosine(progress: float, floor: float) -> float:
    progress = min(max(progress, 0.0), 1.0)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
