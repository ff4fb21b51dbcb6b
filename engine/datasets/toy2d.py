"""The 2-D toy problems, after TensorFlow Playground's generators on [-6, 6]² (plus moons and K-class spiral)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from ..ops.registry import Shape
from ..schema import Strict
from .registry import CLASS_RGB, NEUTRAL_RGB, DataFamily, Dataset, Plane, register

DOMAIN = 6.0  # points and probes live on [-DOMAIN, DOMAIN]²
Generator2D = Callable[[np.random.Generator, int, float, int], tuple[np.ndarray, np.ndarray]]

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

    @model_validator(mode="after")
    def _regression_default_size(self) -> Toy2D:
        # TensorFlow Playground draws 500 points for classification and 1,200 for regression. An after-validator
        # (a before-validator would hand strict JSON parsing Python lists where it wants arrays); the model is
        # frozen, so the default is set through object.__setattr__ while it is being built.
        if "samples" not in self.model_fields_set and self.name in REGRESSION_DATASETS:
            object.__setattr__(self, "samples", 1200)
        return self

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


def features(points: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """The input features TensorFlow Playground offers, computed from raw (x1, x2) points."""
    x1, x2 = points[:, 0], points[:, 1]
    table = {
        "x1": lambda: x1, "x2": lambda: x2, "x1_sq": lambda: x1 * x1, "x2_sq": lambda: x2 * x2,
        "x1_x2": lambda: x1 * x2, "sin_x1": lambda: np.sin(x1), "sin_x2": lambda: np.sin(x2),
    }
    return np.ascontiguousarray(np.stack([table[n]() for n in names], axis=1), dtype=np.float32)


# --- generators: each returns (points (n, 2), labels (n,)); binary labels are ±1 as in the original -----

def _uniform(rng: np.random.Generator, lo: float, hi: float, n: int) -> np.ndarray:
    return rng.uniform(lo, hi, n)


def circle(rng: np.random.Generator, n: int, noise: float, classes: int) -> tuple[np.ndarray, np.ndarray]:
    radius = 5.0
    pts, labels = [], []
    for lo, hi, count in ((0.0, 0.5 * radius, n // 2), (0.7 * radius, radius, n - n // 2)):
        r = _uniform(rng, lo, hi, count)
        angle = _uniform(rng, 0, 2 * np.pi, count)
        xy = np.stack([r * np.sin(angle), r * np.cos(angle)], axis=1)
        noisy = xy + _uniform(rng, -radius, radius, 2 * count).reshape(count, 2) * noise
        labels.append(np.where(np.hypot(noisy[:, 0], noisy[:, 1]) < 0.5 * radius, 1.0, -1.0))
        pts.append(xy)
    return np.concatenate(pts), np.concatenate(labels)


def xor(rng: np.random.Generator, n: int, noise: float, classes: int) -> tuple[np.ndarray, np.ndarray]:
    xy = _uniform(rng, -5, 5, 2 * n).reshape(n, 2)
    xy += np.where(xy > 0, 0.3, -0.3)  # keep points off the axes
    noisy = xy + _uniform(rng, -5, 5, 2 * n).reshape(n, 2) * noise
    return xy, np.where(noisy[:, 0] * noisy[:, 1] >= 0, 1.0, -1.0)


def gauss(rng: np.random.Generator, n: int, noise: float, classes: int) -> tuple[np.ndarray, np.ndarray]:
    variance = 0.5 + noise / 0.5 * 3.5  # TensorFlow Playground maps noise 0–0.5 to variance 0.5–4
    half = n // 2
    a = rng.normal(2.0, np.sqrt(variance), (half, 2))
    b = rng.normal(-2.0, np.sqrt(variance), (n - half, 2))
    return np.concatenate([a, b]), np.concatenate([np.ones(half), -np.ones(n - half)])


def _spiral_arms(rng: np.random.Generator, n: int, noise: float, arms: int) -> tuple[np.ndarray, np.ndarray]:
    pts, labels = [], []
    for k in range(arms):
        m = n // arms + (1 if k < n % arms else 0)
        i = np.arange(m)
        r = i / m * 5
        t = 1.75 * i / m * 2 * np.pi + k * 2 * np.pi / arms
        xy = np.stack([r * np.sin(t), r * np.cos(t)], axis=1)
        pts.append(xy + _uniform(rng, -1, 1, 2 * m).reshape(m, 2) * noise)
        labels.append(np.full(m, k))
    return np.concatenate(pts), np.concatenate(labels)


def spiral(rng: np.random.Generator, n: int, noise: float, classes: int) -> tuple[np.ndarray, np.ndarray]:
    pts, k = _spiral_arms(rng, n, noise, 2)
    return pts, np.where(k == 0, 1.0, -1.0)


def spiral3(rng: np.random.Generator, n: int, noise: float, classes: int) -> tuple[np.ndarray, np.ndarray]:
    return _spiral_arms(rng, n, noise, classes)


def moons(rng: np.random.Generator, n: int, noise: float, classes: int) -> tuple[np.ndarray, np.ndarray]:
    half = n // 2
    t_out = rng.uniform(0, np.pi, half)
    t_in = rng.uniform(0, np.pi, n - half)
    upper = np.stack([np.cos(t_out), np.sin(t_out)], axis=1)
    lower = np.stack([1 - np.cos(t_in), 0.5 - np.sin(t_in)], axis=1)
    xy = (np.concatenate([upper, lower]) - [0.5, 0.25]) * 2.6  # centre the pair and fill the domain
    xy += rng.normal(0, 2.5 * noise, xy.shape)
    return xy, np.concatenate([np.ones(half), -np.ones(n - half)])


def plane(rng: np.random.Generator, n: int, noise: float, classes: int) -> tuple[np.ndarray, np.ndarray]:
    xy = _uniform(rng, -DOMAIN, DOMAIN, 2 * n).reshape(n, 2)
    noisy = xy + _uniform(rng, -DOMAIN, DOMAIN, 2 * n).reshape(n, 2) * noise
    return xy, (noisy[:, 0] + noisy[:, 1]) / 10.0  # d3's linear scale [-10, 10] → [-1, 1], unclamped


_GAUSSIANS = np.array([[-4, 2.5, 1], [0, 2.5, -1], [4, 2.5, 1], [-4, -2.5, -1], [0, -2.5, 1], [4, -2.5, -1]])


def multigauss(rng: np.random.Generator, n: int, noise: float, classes: int) -> tuple[np.ndarray, np.ndarray]:
    xy = _uniform(rng, -DOMAIN, DOMAIN, 2 * n).reshape(n, 2)
    noisy = xy + _uniform(rng, -DOMAIN, DOMAIN, 2 * n).reshape(n, 2) * noise
    d = np.hypot(noisy[:, None, 0] - _GAUSSIANS[None, :, 0], noisy[:, None, 1] - _GAUSSIANS[None, :, 1])
    values = _GAUSSIANS[None, :, 2] * np.clip(1 - d / 2, 0, 1)  # each bump falls from ±1 to 0 over radius 2
    strongest = np.abs(values).argmax(axis=1)  # the bump with the largest magnitude wins
    return xy, values[np.arange(n), strongest]


TOY2D: dict[str, Generator2D] = {
    "circle": circle, "xor": xor, "gauss": gauss, "spiral": spiral, "moons": moons,
    "spiral3": spiral3, "plane": plane, "multigauss": multigauss,
}


def make(spec: Toy2D) -> Dataset:
    """Generate a toy problem: same spec and seed, same arrays, bit for bit."""
    rng = np.random.default_rng(spec.seed)
    points, labels = TOY2D[spec.name](rng, spec.samples, spec.noise / 100.0, spec.classes)
    order = rng.permutation(len(points))
    points, labels = points[order].astype(np.float32), labels[order]
    if spec.task == "regression":
        y = labels.astype(np.float32)
    elif spec.name == "spiral3":
        y = labels.astype(np.int64)
    else:
        y = (labels > 0).astype(np.int64)  # TensorFlow Playground's +1 is class 1, −1 is class 0
    split = int(len(points) * spec.train_fraction)
    return Dataset(
        spec=spec,
        points_train=points[:split], points_test=points[split:],
        x_train=features(points[:split], spec.features), x_test=features(points[split:], spec.features),
        y_train=y[:split], y_test=y[split:],
    )


def thumbnail(spec: Toy2D, size: int) -> np.ndarray:
    """A (size, size, 3) picture of the points coloured by label (x₂ points up)."""
    data = make(spec)
    pts = np.concatenate([data.points_train, data.points_test])
    labels = np.concatenate([data.y_train, data.y_test])
    if spec.task == "regression":
        t = np.clip(labels, -1.0, 1.0)[:, None]  # blue above 0, orange below, fading to neutral at 0
        mid, neg, pos = (np.array(c, dtype=np.float32) for c in (NEUTRAL_RGB, CLASS_RGB[0], CLASS_RGB[1]))
        cols = np.where(t < 0, mid + (neg - mid) * -t, mid + (pos - mid) * t).round().astype(np.uint8)
    else:
        cols = np.array(CLASS_RGB, dtype=np.uint8)[labels.astype(np.intp) % len(CLASS_RGB)]
    img = np.empty((size, size, 3), dtype=np.uint8)
    img[:] = NEUTRAL_RGB
    ij = np.clip(((pts + DOMAIN) / (2 * DOMAIN) * (size - 2)).astype(int), 0, size - 2)
    for dy in (0, 1):
        for dx in (0, 1):
            img[size - 2 - ij[:, 1] + dy, ij[:, 0] + dx] = cols
    return img


def variants() -> dict[str, Toy2D]:
    """Each named problem at its natural size, noise-free (what a picker shows)."""
    return {name: Toy2D(name=name, classes=3 if name == "spiral3" else 2) for name in TOY2D}


def _input_shape(spec: Toy2D) -> Shape:
    return (len(spec.features),)


register(DataFamily(
    kind="toy2d", title="2-D points",
    doc="TensorFlow Playground's problems: points in the plane, classified or regressed from chosen features.",
    spec=Toy2D, make=make, input_shape=_input_shape, tasks=frozenset({"classification", "regression"}),
    thumbnail=thumbnail, variants=variants,
    presets=("tfp-circle", "xor", "gauss", "spiral", "spiral3", "moons", "plane", "multigauss", "spiral-embedding"),
    plane=Plane(DOMAIN, lambda spec, points: features(points, spec.features)),
))
