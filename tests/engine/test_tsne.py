"""t-SNE on demand (engine.projection.tsne): progress reported and cancel honoured, deterministic for a seed,
separate clusters kept apart, a start from given positions."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from engine.projection import pca, tsne


def blobs(n: int = 40, d: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three Gaussian blobs far apart in d dimensions, n points each, and their labels."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, d)) * 20
    labels = np.repeat(np.arange(3), n)
    return (centres[labels] + rng.normal(size=(3 * n, d))).astype(np.float32), labels


def test_three_separate_blobs_stay_separate_and_progress_reaches_one():
    x, labels = blobs()
    seen: list[float] = []
    y = tsne(x, progress=lambda f: seen.append(f) or True, iterations=250)
    assert y is not None and y.shape == (len(x), 2) and y.dtype == np.float32 and np.isfinite(y).all()
    assert seen[0] == 0.0 and seen[-1] == 1.0 and len(seen) > 10
    assert all(a <= b for a, b in itertools.pairwise(seen))  # it only moves forward
    centres = np.stack([y[labels == k].mean(axis=0) for k in range(3)])
    spread = max(np.linalg.norm(y[labels == k] - centres[k], axis=1).max() for k in range(3))
    gaps = [np.linalg.norm(centres[i] - centres[j]) for i in range(3) for j in range(i + 1, 3)]
    assert min(gaps) > 2 * spread  # every blob's farthest point is nearer its own centre than to another blob


def test_a_progress_that_says_stop_cancels_and_gives_none():
    x, _ = blobs()
    calls: list[float] = []

    def stop_after_three(f: float) -> bool:
        calls.append(f)
        return len(calls) < 3

    assert tsne(x, progress=stop_after_three) is None
    assert len(calls) == 3  # stopped at once: no further iterations reported
    assert tsne(x, progress=lambda f: False) is None  # refused before any work


def test_the_same_seed_gives_the_same_map_and_another_seed_another():
    x, _ = blobs(n=30)
    a = tsne(x, seed=3, iterations=100)
    b = tsne(x, seed=3, iterations=100)
    c = tsne(x, seed=4, iterations=100)
    assert a is not None and b is not None and c is not None
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_a_start_from_given_positions_keeps_the_picture_s_orientation():
    x, labels = blobs()
    start = pca(x).points
    y = tsne(x, initial=start, iterations=250)
    mirrored = tsne(x, initial=start * np.array([-1.0, 1.0]), iterations=250)
    assert y is not None and mirrored is not None
    # the blobs' centres lie on the same side as where they started: the map follows its start
    for k in range(3):
        on = labels == k
        assert np.sign(y[on, 0].mean() - y[:, 0].mean()) == np.sign(start[on, 0].mean() - start[:, 0].mean())
        assert np.sign(mirrored[on, 0].mean() - mirrored[:, 0].mean()) == -np.sign(y[on, 0].mean() - y[:, 0].mean())


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="N ≥ 5"):
        tsne(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="initial positions"):
        tsne(np.zeros((10, 4)), initial=np.zeros((9, 2)))
