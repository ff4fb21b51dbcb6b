from __future__ import annotations

import numpy as np
import pytest

from engine.datasets import make_dataset
from engine.datasets.toy2d import DOMAIN, Toy2D, features
from engine.probes.boundary import grid_points

NAMES = ["circle", "xor", "gauss", "spiral", "moons", "spiral3", "plane", "multigauss"]


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_arrays_bit_for_bit(name):
    spec = Toy2D(name=name, noise=20, seed=7, classes=4 if name == "spiral3" else 2)
    a, b = make_dataset(spec), make_dataset(spec)
    for field in ("x_train", "x_test", "y_train", "y_test"):
        assert getattr(a, field).tobytes() == getattr(b, field).tobytes()
    other = make_dataset(spec.model_copy(update={"seed": 8}))
    assert a.x_train.tobytes() != other.x_train.tobytes()


@pytest.mark.parametrize("name", NAMES)
def test_sizes_split_and_domain(name):
    spec = Toy2D(name=name, samples=300, train_fraction=0.3, features=("x1", "x2", "x1_x2"))
    d = make_dataset(spec)
    assert len(d.x_train) == 90 and len(d.x_test) == 210
    assert d.x_train.shape == (90, 3) and d.x_train.dtype == np.float32
    assert np.abs(np.concatenate([d.points_train, d.points_test])).max() <= DOMAIN + 1e-6 or name == "gauss"
    if spec.task == "classification":
        assert set(np.unique(d.y_train)) <= {0, 1} and d.y_train.dtype == np.int64
        both = np.concatenate([d.y_train, d.y_test])
        assert 0.4 < both.mean() < 0.6  # balanced classes
    else:
        assert d.y_train.dtype == np.float32


def test_circle_labels_follow_radius_without_noise():
    d = make_dataset(Toy2D(name="circle"))
    r = np.hypot(d.points_train[:, 0], d.points_train[:, 1])
    assert np.all((r < 2.5) == (d.y_train == 1))
    assert r.max() <= 5.0 + 1e-5


def test_xor_labels_follow_quadrant_without_noise():
    d = make_dataset(Toy2D(name="xor"))
    p = d.points_train
    assert np.all((p[:, 0] * p[:, 1] >= 0) == (d.y_train == 1))
    assert np.abs(p).min() >= 0.3 - 1e-6  # kept off the axes by TensorFlow Playground's padding


def test_plane_target_is_scaled_sum():
    d = make_dataset(Toy2D(name="plane", samples=1200))
    np.testing.assert_allclose(d.y_train, (d.points_train[:, 0] + d.points_train[:, 1]) / 10, rtol=1e-5, atol=1e-6)


def test_multigauss_targets_peak_at_centres():
    d = make_dataset(Toy2D(name="multigauss", samples=1200))
    assert d.y_train.min() >= -1 and d.y_train.max() <= 1
    assert d.y_train.min() < -0.8 and d.y_train.max() > 0.8


def test_spiral3_has_k_balanced_classes():
    d = make_dataset(Toy2D(name="spiral3", classes=5, samples=500))
    counts = np.bincount(np.concatenate([d.y_train, d.y_test]))
    assert counts.tolist() == [100] * 5


def test_noise_changes_points_or_labels():
    clean = make_dataset(Toy2D(name="gauss", noise=0))
    noisy = make_dataset(Toy2D(name="gauss", noise=50))
    assert noisy.points_train.std() > clean.points_train.std()


def test_features_and_grid():
    pts = np.array([[1.0, 2.0], [-0.5, 3.0]], dtype=np.float32)
    f = features(pts, ("x1", "x2", "x1_sq", "x2_sq", "x1_x2", "sin_x1", "sin_x2"))
    np.testing.assert_allclose(f[0], [1, 2, 1, 4, 2, np.sin(1), np.sin(2)], rtol=1e-6)
    g = grid_points(5, DOMAIN)
    assert g.shape == (25, 2) and g[0].tolist() == [-DOMAIN, -DOMAIN] and g[1, 0] > g[0, 0] and g[5, 1] > g[0, 1]


def test_default_sizes_follow_tensorflow_playground():
    assert Toy2D(name="circle").samples == 500
    assert Toy2D(name="plane").samples == 1200 and Toy2D(name="multigauss").samples == 1200
    assert Toy2D(name="plane", samples=300).samples == 300
