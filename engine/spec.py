"""The session spec: one validated, versioned description of everything a run needs."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import SpecError, format_pydantic

FORMAT_VERSION = 1


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- dataset -------------------------------------------------------------------------------------

Toy2DName = Literal["circle", "xor", "gauss", "spiral", "moons", "spiral3", "plane", "multigauss"]
Feature = Literal["x1", "x2", "x1_sq", "x2_sq", "x1_x2", "sin_x1", "sin_x2"]
FEATURE_LABELS: dict[str, str] = {
    "x1": "x₁", "x2": "x₂", "x1_sq": "x₁²", "x2_sq": "x₂²", "x1_x2": "x₁·x₂", "sin_x1": "sin x₁", "sin_x2": "sin x₂",
}
REGRESSION_DATASETS = frozenset({"plane", "multigauss"})


class Toy2D(Strict):
    """A 2-D toy problem from TensorFlow Playground's generators (plus moons and K-class spiral)."""

    kind: Literal["toy2d"] = "toy2d"
    name: Toy2DName = "circle"
    samples: int = Field(500, ge=10, le=100_000, description="number of points, train and test together")
    noise: float = Field(0.0, ge=0.0, le=50.0, description="noise in percent (0–50)")
    train_fraction: float = Field(0.5, ge=0.1, le=0.9, description="share of points used for training")
    features: tuple[Feature, ...] = Field(("x1", "x2"), min_length=1)
    classes: int = Field(2, ge=2, le=6, description="number of classes (spiral3 only)")
    seed: int = Field(0, ge=0, le=2**32 - 1)

    @model_validator(mode="before")
    @classmethod
    def _regression_default_size(cls, data: Any) -> Any:
        # TensorFlow Playground draws 500 points for classification and 1,200 for regression.
        if isinstance(data, dict) and "samples" not in data and data.get("name") in REGRESSION_DATASETS:
            return {**data, "samples": 1200}
        return data

    @field_validator("features")
    @classmethod
    def _unique(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(v)) != len(v):
            raise ValueError("features must not repeat")
        return v

    @model_validator(mode="after")
    def _classes_only_for_spiral3(self) -> Toy2D:
        if self.name != "spiral3" and self.classes != 2:
            raise ValueError(f"classes: only spiral3 has more than 2 classes ({self.name} has 2)")
        return self

    @property
    def task(self) -> Literal["classification", "regression"]:
        return "regression" if self.name in REGRESSION_DATASETS else "classification"

    @property
    def n_classes(self) -> int:
        return 0 if self.task == "regression" else self.classes


# Image, sequence and graph datasets join this union in later issues.
DatasetSpec = Toy2D


# --- model graph ---------------------------------------------------------------------------------

class Node(Strict):
    id: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
    op: str = Field(min_length=1, max_length=64)
    params: dict[str, Any] = Field(default_factory=dict)
    position: tuple[float, float] | None = None


class ModelSpec(Strict):
    nodes: tuple[Node, ...] = Field(min_length=1, max_length=2000)
    edges: tuple[tuple[str, str], ...] = Field((), max_length=10_000)


# --- optimisation --------------------------------------------------------------------------------

LossName = Literal["mse", "cross_entropy", "bce"]
LR = Annotated[float, Field(gt=0.0, le=10.0)]
Beta = Annotated[float, Field(ge=0.0, lt=1.0)]
Eps = Annotated[float, Field(gt=0.0, le=1.0)]


class SGD(Strict):
    kind: Literal["sgd"] = "sgd"
    lr: LR = 0.03


class Momentum(Strict):
    kind: Literal["momentum"] = "momentum"
    lr: LR = 0.01
    momentum: Beta = 0.9


class Nesterov(Strict):
    kind: Literal["nesterov"] = "nesterov"
    lr: LR = 0.01
    momentum: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.9  # Nesterov needs some momentum


class Adam(Strict):
    kind: Literal["adam"] = "adam"
    lr: LR = 0.001
    beta1: Beta = 0.9
    beta2: Beta = 0.999
    eps: Eps = 1e-8


class AdamW(Strict):
    kind: Literal["adamw"] = "adamw"
    lr: LR = 0.001
    beta1: Beta = 0.9
    beta2: Beta = 0.999
    eps: Eps = 1e-8


class RMSprop(Strict):
    kind: Literal["rmsprop"] = "rmsprop"
    lr: LR = 0.001
    alpha: Beta = 0.99
    momentum: Beta = 0.0
    eps: Eps = 1e-8


class Adagrad(Strict):
    kind: Literal["adagrad"] = "adagrad"
    lr: LR = 0.01
    eps: Eps = 1e-10


OptimizerSpec = Annotated[SGD | Momentum | Nesterov | Adam | AdamW | RMSprop | Adagrad, Field(discriminator="kind")]
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


class EarlyStopping(Strict):
    """Stop when the test loss has not improved by min_delta for `patience` epochs."""

    patience: int = Field(10, ge=1, le=100_000)
    min_delta: float = Field(0.0, ge=0.0)
    restore_best: bool = True


Rate = Annotated[float, Field(ge=0.0, le=10.0)]


class Regularization(Strict):
    l1: Rate = 0.0  # λ·Σ|w| over weights (not biases), added to the loss
    l2: Rate = 0.0  # λ·Σw² over weights (not biases), added to the loss
    weight_decay: Rate = 0.0  # decoupled: w ← w·(1 − lr·wd) before each update (AdamW-style), weights only
    grad_clip: Annotated[float, Field(gt=0.0, le=1e6)] | None = None  # max global gradient norm
    early_stopping: EarlyStopping | None = None


class Training(Strict):
    batch_size: int = Field(10, ge=1, le=1024)
    epochs: int = Field(100, ge=1, le=1_000_000)  # how long a headless run trains by default
    seed: int = Field(0, ge=0, le=2**32 - 1)
    device: Literal["cpu", "cuda"] = "cpu"
    probe_every: int = Field(0, ge=0, le=1_000_000)  # steps between probes; 0 = automatic (≤ a few % of time)
    probe_grid: int = Field(100, ge=10, le=400)  # output heatmap resolution
    neuron_grid: int = Field(24, ge=4, le=100)  # per-neuron thumbnail resolution


class SessionSpec(Strict):
    format_version: int = FORMAT_VERSION
    name: str = Field("", max_length=200)
    description: str = Field("", max_length=5000)
    dataset: DatasetSpec = Field(default_factory=Toy2D)
    model: ModelSpec
    loss: LossName = "mse"
    optimizer: OptimizerSpec = Field(default_factory=SGD)
    schedule: ScheduleSpec = Field(default_factory=Constant)
    regularization: Regularization = Field(default_factory=Regularization)
    training: Training = Field(default_factory=Training)

    @field_validator("format_version")
    @classmethod
    def _current(cls, v: int) -> int:
        if v != FORMAT_VERSION:
            raise ValueError(f"expected {FORMAT_VERSION} after migration, got {v}")
        return v


# --- versioning ----------------------------------------------------------------------------------

# MIGRATIONS[n] turns a format-n spec dict into a format-(n+1) one. Version 1 is the first released.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Bring a spec dict from any known format_version up to the current one."""
    version = data.get("format_version", FORMAT_VERSION)
    if not isinstance(version, int) or isinstance(version, bool):
        raise SpecError("format_version", f"must be an integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise SpecError("format_version", f"{version} is newer than this DL Playground reads ({FORMAT_VERSION}); update it")
    while version < FORMAT_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise SpecError("format_version", f"{version} is not a known format (oldest is 1)")
        data = step(dict(data))
        version += 1
        data["format_version"] = version
    return data


def parse_spec(data: Any) -> SessionSpec:
    """Validate a spec dict (any known version) and its model graph; raise SpecError naming the field."""
    from .graph import check_spec  # graph imports spec; the check needs both

    if not isinstance(data, dict):
        raise SpecError("spec", f"must be a JSON object, got {type(data).__name__}")
    data = migrate(data)
    try:
        spec = SessionSpec.model_validate(data)
    except ValidationError as exc:
        raise format_pydantic(exc) from None
    check_spec(spec)
    return spec


def load_spec_json(path: str | Path) -> SessionSpec:
    """Read and validate a spec JSON file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(path.name, f"cannot read: {exc.strerror if isinstance(exc, OSError) else exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(path.name, f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    return parse_spec(data)


def spec_to_dict(spec: SessionSpec) -> dict[str, Any]:
    """A plain JSON-ready dict of the spec."""
    return spec.model_dump(mode="json")
