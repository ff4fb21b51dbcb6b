"""Datasets. The 2-D toy problems follow TensorFlow Playground's generators on [-6, 6]²."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .layers import Shape
from .spec import DatasetSpec, Toy2D

DOMAIN = 6.0  # points and probes live on [-DOMAIN, DOMAIN]²
Generator2D = Callable[[np.random.Generator, int, float, int], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Dataset:
    """Generated data, already split; ``x_*`` are feature matrices, ``points_*`` the raw (x1, x2)."""

    spec: DatasetSpec
    points_train: np.ndarray  # (N, 2) float32
    points_test: np.ndarray  # (M, 2) float32
    x_train: np.ndarray  # (N, F) float32
    x_test: np.ndarray  # (M, F) float32
    y_train: np.ndarray  # (N,) int64 class index, or float32 target in [-1, 1]
    y_test: np.ndarray


def input_shape(spec: DatasetSpec) -> Shape:
    return (len(spec.features),)


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


def make_dataset(spec: DatasetSpec) -> Dataset:
    """Generate the dataset for a spec: same spec and seed, same arrays, bit for bit."""
    return _make_toy2d(spec)


def _make_toy2d(spec: Toy2D) -> Dataset:
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


def grid_points(resolution: int) -> np.ndarray:
    """(resolution², 2) raw points covering the domain row by row, x1 fastest; row 0 is x2 = −DOMAIN."""
    axis = np.linspace(-DOMAIN, DOMAIN, resolution, dtype=np.float32)
    x1, x2 = np.meshgrid(axis, axis)
    return np.stack([x1.ravel(), x2.ravel()], axis=1)
