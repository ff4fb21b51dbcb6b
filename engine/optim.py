"""Optimizers and learning-rate schedules, built from the spec and changed live between steps."""
from __future__ import annotations

import math

import torch

from .graph import GraphModule
from .spec import OptimizerSpec, ScheduleSpec

# Spec field → optimizer param-group key; beta1/beta2 share torch's `betas` tuple.
_GROUP_KEYS = {"lr": "lr", "momentum": "momentum", "eps": "eps", "alpha": "alpha"}


def make_optimizer(spec: OptimizerSpec, model: GraphModule, weight_decay: float) -> torch.optim.Optimizer:
    """Two param groups: [0] the penalized weights, [1] everything else (biases, norm gains)."""
    decay = model.penalized_parameters()
    ids = {id(p) for p in decay}
    rest = [p for p in model.parameters() if id(p) not in ids]
    groups = [{"params": decay}, {"params": rest}]
    foreach = True  # one fused op per update instead of one per tensor: tiny networks are op-bound
    k = spec.kind
    if k in ("sgd", "momentum", "nesterov"):
        return torch.optim.SGD(groups, lr=spec.lr, momentum=getattr(spec, "momentum", 0.0),
                               nesterov=k == "nesterov", foreach=foreach)
    if k == "adam":
        return torch.optim.Adam(groups, lr=spec.lr, betas=(spec.beta1, spec.beta2), eps=spec.eps, foreach=foreach)
    if k == "adamw":
        groups[0]["weight_decay"] = weight_decay
        return torch.optim.AdamW(groups, lr=spec.lr, betas=(spec.beta1, spec.beta2), eps=spec.eps,
                                 weight_decay=0.0, foreach=foreach)
    if k == "rmsprop":
        return torch.optim.RMSprop(groups, lr=spec.lr, alpha=spec.alpha, eps=spec.eps, momentum=spec.momentum,
                                   foreach=foreach)
    if k == "adagrad":
        return torch.optim.Adagrad(groups, lr=spec.lr, eps=spec.eps, foreach=foreach)
    raise ValueError(f"unknown optimizer {k}")


def decays_natively(spec: OptimizerSpec) -> bool:
    """AdamW applies decoupled weight decay itself; for the others the trainer applies it."""
    return spec.kind == "adamw"


def update_hyper(opt: torch.optim.Optimizer, spec: OptimizerSpec, lr: float, weight_decay: float) -> None:
    """Apply a same-kind optimizer spec to live param groups, keeping the optimizer's state."""
    for i, group in enumerate(opt.param_groups):
        for field, key in _GROUP_KEYS.items():
            if field != "lr" and hasattr(spec, field):
                group[key] = getattr(spec, field)
        group["lr"] = lr
        if hasattr(spec, "beta1"):
            group["betas"] = (spec.beta1, spec.beta2)
        if decays_natively(spec):
            group["weight_decay"] = weight_decay if i == 0 else 0.0


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
