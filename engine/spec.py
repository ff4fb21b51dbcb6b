"""The session spec: one validated, versioned description of everything a run needs."""
from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from .datasets import FAMILIES
from .errors import SpecError
from .optimizers import OPTIMIZERS
from .pretrained import pretrained_names
from .schedules import Constant, ScheduleSpec
from .schema import Strict, tagged_union

FORMAT_VERSION = 2  # 2: a VAE's β moved from its sampling block to regularization.beta (live)


# --- dataset -------------------------------------------------------------------------------------

# Every registered family's spec model, told apart by ``kind``.
_DATASET_SPECS = tuple(f.spec for f in FAMILIES.values())
DatasetSpec = tagged_union(_DATASET_SPECS)


# --- model graph ---------------------------------------------------------------------------------

class Node(Strict):
    id: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
    op: str = Field(min_length=1, max_length=64)
    params: dict[str, Any] = Field(default_factory=dict)
    position: tuple[float, float] | None = None
    frozen: bool = Field(False, description="keep this block's weights as they are: the optimizer skips them")
    lr_mult: float = Field(1.0, ge=0.0, le=100.0,
                           description="this block learns at the learning rate times this (fine-tuning)")
    pretrained: str | None = Field(None, description="start this block from the block of the same id in a "
                                                     "trained network shipped with the app (e.g. shapes-cnn) "
                                                     "instead of from random weights")

    @field_validator("pretrained")
    @classmethod
    def _shipped(cls, v: str | None) -> str | None:
        if v is not None and v not in pretrained_names():
            raise ValueError(f"no trained network {v[:80]!r} ships with the app; there are: "
                             f"{', '.join(pretrained_names()) or 'none'}")
        return v


class ModelSpec(Strict):
    nodes: tuple[Node, ...] = Field(min_length=1, max_length=2000)
    edges: tuple[tuple[str, str], ...] = Field((), max_length=10_000)


# --- optimisation --------------------------------------------------------------------------------

LossName = Literal["mse", "cross_entropy", "bce"]
# Every registered optimizer's hyper-parameter model, told apart by ``kind``.
OptimizerSpec = tagged_union(tuple(o.spec for o in OPTIMIZERS.values()))


class EarlyStopping(Strict):
    """Stop when the validation loss (the test loss where the data has no validation set: the 2-D toys) has
    not improved by min_delta for `patience` epochs."""

    patience: int = Field(10, ge=1, le=100_000)
    min_delta: float = Field(0.0, ge=0.0)
    restore_best: bool = True


Rate = Annotated[float, Field(ge=0.0, le=10.0)]


class Augment(Strict):
    """Random changes to each training image, drawn anew at every step (image sets only; never the test set)."""

    noise: float = Field(0.0, ge=0.0, le=2.0, description="Gaussian noise added to every pixel (standard "
                                                          "deviation, in the standardised input's units). For an "
                                                          "autoencoder the target stays the clean picture: a "
                                                          "denoising autoencoder")
    shift: int = Field(0, ge=0, le=8, description="move each image by up to this many pixels each way")
    rotation: float = Field(0.0, ge=0.0, le=45.0, description="turn each image by up to this many degrees")
    flip: bool = Field(False, description="mirror half the images left to right (wrong for digits: a "
                                          "mirrored 3 is not a 3)")
    cutout: int = Field(0, ge=0, le=16, description="blank a random square of this side in each image")

    @property
    def active(self) -> bool:
        return bool(self.noise or self.shift or self.rotation or self.flip or self.cutout)


class Regularization(Strict):
    l1: Rate = 0.0  # λ·Σ|w| over weights (not biases), added to the loss
    l2: Rate = 0.0  # λ·Σw² over weights (not biases), added to the loss
    weight_decay: Rate = 0.0  # decoupled: w ← w·(1 − lr·wd) before each update (AdamW-style), weights only
    grad_clip: Annotated[float, Field(gt=0.0, le=1e6)] | None = None  # max global gradient norm
    augment: Augment = Field(default_factory=Augment)  # image sets: random changes to training images
    early_stopping: EarlyStopping | None = None
    beta: float = Field(1.0, ge=0.0, le=100.0, description="weight of a VAE's KL term in its loss (β-VAE: above 1 "
                                                          "a smoother, more regular latent space, blurrier images)")
    beta_warmup: int = Field(0, ge=0, le=100_000, description="epochs over which β rises linearly from 0 to its "
                                                              "value (KL annealing; 0: from the start)")

    def beta_at(self, epochs: float) -> float:
        """β after ``epochs`` epochs of training (fractional within an epoch): risen linearly over the warm-up."""
        return self.beta if not self.beta_warmup else self.beta * min(1.0, epochs / self.beta_warmup)


class Training(Strict):
    batch_size: int = Field(10, ge=1, le=1024)
    epochs: int = Field(100, ge=1, le=1_000_000)  # how long a headless run trains by default
    seed: int = Field(0, ge=0, le=2**32 - 1)
    device: Literal["cpu", "cuda"] = "cpu"
    probe_every: int = Field(0, ge=0, le=1_000_000)  # steps between probes; 0 = automatic (≤ a few % of time)
    probe_grid: int = Field(100, ge=10, le=400)  # output heatmap resolution
    neuron_grid: int = Field(24, ge=4, le=100)  # per-neuron thumbnail resolution
    teacher_forcing: float = Field(1.0, ge=0.0, le=1.0,
                                   description="encoder–decoders: the share of the decoder's input tokens that "
                                               "are the true previous token while training; the rest are its own "
                                               "answer (scheduled sampling), as when it generates")


class SessionSpec(Strict):
    format_version: int = FORMAT_VERSION
    name: str = Field("", max_length=200)
    description: str = Field("", max_length=5000)
    dataset: DatasetSpec = Field(default_factory=_DATASET_SPECS[0])
    model: ModelSpec
    loss: LossName = "mse"
    optimizer: OptimizerSpec = Field(default_factory=OPTIMIZERS["sgd"].spec)
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

def _beta_to_regularization(data: dict[str, Any]) -> dict[str, Any]:
    """Format 1 kept a VAE's β in its ``reparam`` block (fixed for a run); format 2 keeps it in
    ``regularization.beta``, where it changes live. The first sampling block's β moves there. The caller's
    dicts are left as they were."""
    model = data.get("model")
    nodes = model.get("nodes") if isinstance(model, dict) else None
    if not isinstance(nodes, list):
        return data
    betas, moved = [], []
    for node in nodes:
        params = node.get("params") if isinstance(node, dict) else None
        if isinstance(node, dict) and node.get("op") == "reparam" and isinstance(params, dict) and "beta" in params:
            betas.append(params["beta"])
            node = {**node, "params": {k: v for k, v in params.items() if k != "beta"}}
        moved.append(node)
    data["model"] = {**model, "nodes": moved}
    reg = data.get("regularization", {})
    if betas and isinstance(reg, dict) and "beta" not in reg:
        data["regularization"] = {**reg, "beta": betas[0]}
    return data


# MIGRATIONS[n] turns a format-n spec dict into a format-(n+1) one. Version 1 is the first released.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _beta_to_regularization}


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


def spec_to_dict(spec: SessionSpec) -> dict[str, Any]:
    """A plain JSON-ready dict of the spec."""
    return spec.model_dump(mode="json")
