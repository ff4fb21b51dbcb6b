"""The dataset-family registry: each family (2-D toys now; images, sequences and graphs to come) is one module
that registers a ``DataFamily``. The spec's union of dataset kinds, the data panel's family list, the probes
that need an input plane and the CLI all read this registry, so adding a family edits none of them.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from ..ops.registry import Shape

Task = Literal["classification", "regression", "reconstruction", "sequence"]  # sequence: one class per token


class DatasetSpecLike(Protocol):
    """What every family's spec model offers besides its own fields (a pydantic model with ``kind``)."""

    kind: str
    seed: int

    @property
    def task(self) -> Task: ...

    @property
    def n_classes(self) -> int: ...  # 0 for regression


@dataclass(frozen=True)
class Dataset:
    """Generated data, already split (train / test, and validation where the family has one). ``points_*`` are
    raw 2-D positions, for families that have an input plane."""

    spec: Any
    x_train: np.ndarray  # (N, *input_shape) float32
    x_test: np.ndarray  # (M, *input_shape)
    y_train: np.ndarray  # (N,) int64 class index, or float32 target
    y_test: np.ndarray
    points_train: np.ndarray | None = None  # (N, 2) float32
    points_test: np.ndarray | None = None
    x_val: np.ndarray | None = None  # a validation set, for families that split one off (images): it picks
    y_val: np.ndarray | None = None  # the epoch early stopping keeps, so the test set stays unseen
    meta: Mapping[str, Any] = field(default_factory=dict)  # a family's extras (images: mean, std, boxes, ...)
    # What the network should output where that is not the label: for reconstruction, each input's own clean
    # picture in [0, 1], flattened (N, D). The labels stay, to colour a latent space and to score it.
    target_train: np.ndarray | None = None
    target_val: np.ndarray | None = None
    target_test: np.ndarray | None = None
    # A held-out set of longer inputs than the network trains on (sequences), to test generalisation in length:
    # (L, T_long) inputs and their labels, (L,) or (L, T_long) for a per-token task.
    x_long: np.ndarray | None = None
    y_long: np.ndarray | None = None


@dataclass(frozen=True)
class Plane:
    """A 2-D input plane that boundary and neuron probes sweep: raw points on [-domain, domain]² → model inputs."""

    domain: float
    inputs: Callable[[Any, np.ndarray], np.ndarray]  # (spec, (N, 2) points) -> (N, *input_shape) float32


@dataclass(frozen=True)
class DataFamily:
    """One family of datasets: its spec model, generator, shapes, tasks, thumbnail and presets."""

    kind: str  # the spec's ``kind`` discriminator
    title: str
    doc: str
    spec: type  # a pydantic model with ``kind: Literal[kind]`` and the DatasetSpecLike properties
    make: Callable[[Any], Dataset]  # same spec and seed, same arrays, bit for bit
    input_shape: Callable[[Any], Shape]  # per sample, without the batch
    tasks: frozenset[str]
    thumbnail: Callable[[Any, int], np.ndarray]  # (spec, size) -> (size, size, 3) uint8 picture of the data
    variants: Callable[[], dict[str, Any]]  # the named datasets a user picks from (name -> spec), for pickers
    presets: tuple[str, ...] = ()  # preset names (assets/presets/NAME.json) that use this family
    plane: Plane | None = None
    # How an epoch's training loss and accuracy are measured. False: a full pass over the training set in
    # eval mode after the epoch, as TensorFlow Playground does (cheap for 2-D toys). True: the running mean
    # over the epoch's own minibatch steps, as Keras and most training scripts report it; for image sets the
    # full pass cost as much as a fifth of training. Validation and test sets are always scored in full.
    running_train_metrics: bool = False


FAMILIES: dict[str, DataFamily] = {}


def register(family: DataFamily) -> DataFamily:
    """Add a dataset family; the first registered is the default dataset of a new spec."""
    if family.kind in FAMILIES:
        raise ValueError(f"dataset family {family.kind} is registered twice")
    FAMILIES[family.kind] = family
    return family


def family_of(spec: DatasetSpecLike) -> DataFamily:
    return FAMILIES[spec.kind]


def make_dataset(spec: DatasetSpecLike) -> Dataset:
    """Generate the dataset for a spec: same spec and seed, same arrays, bit for bit."""
    return family_of(spec).make(spec)


def input_shape(spec: DatasetSpecLike) -> Shape:
    return family_of(spec).input_shape(spec)


# Class colours for pictures of data (the app's views use the same ones): TensorFlow Playground's orange
# for class 0 / negative, blue for class 1 / positive, then four more for K-class problems.
NEUTRAL_RGB = (232, 234, 235)
CLASS_RGB = ((245, 147, 34), (8, 119, 189), (76, 175, 80), (171, 71, 188), (229, 57, 53), (96, 125, 139))
