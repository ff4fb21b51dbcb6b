"""Learning-rate schedules: the spec models and the factor each applies to the base learning rate."""
from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import Field, model_validator

from .schema import Strict

Epochs = Annotated[float, Field(gt=0.0, le=1e6)]


class Constant(Strict):
    kind: Literal["constant"] = "constant"


class StepDecay(Strict):
    kind: Literal["step"] = "step"
    every_epochs: Epochs = 50
    gamma: Annotated[float, Field(gt=0.0, le=1.0)] = 0.5


class Exponential(Strict):
    kind: Literal["exponential"] = "exponential"
    gamma: Annotated[float, Field(gt=0.0, le=1.0)] = 0.99  # per epoch


class Cosine(Strict):
    kind: Literal["cosine"] = "cosine"
    total_epochs: Epochs = 100
    min_factor: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0


class WarmupCosine(Strict):
    kind: Literal["warmup_cosine"] = "warmup_cosine"
    warmup_epochs: Epochs = 5
    total_epochs: Epochs = 100
    min_factor: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0

    @model_validator(mode="after")
    def _warmup_inside(self) -> WarmupCosine:
        if self.warmup_epochs >= self.total_epochs:
            raise ValueError("warmup_epochs must be shorter than total_epochs")
        return self


ScheduleSpec = Annotated[Constant | StepDecay | Exponential | Cosine | WarmupCosine, Field(discriminator="kind")]


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
