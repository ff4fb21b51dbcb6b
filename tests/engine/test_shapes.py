"""The shapes generator: seeded, exact ground truth (boxes, masks), distinguishable classes, an honest distractor."""
from __future__ import annotations

import numpy as np
import pytest

from engine.datasets.shapes import SHAPE_CLASSES, ShapeSet, make_shapes

FIELDS = ("images", "labels", "boxes", "masks")


def shapes(seed: int = 0, n: int = 200, **kwargs) -> ShapeSet:
    return make_shapes(np.random.default_rng(seed), n, **kwargs)


def pixel_bbox(on: np.ndarray) -> tuple[int, int, int, int]:
    """End-exclusive x0, y0, x1, y1 of the True pixels of a (H, W) array."""
    ys, xs = np.nonzero(on)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


@pytest.mark.parametrize("clutter", [False, True])
def test_same_seed_same_arrays_bit_for_bit(clutter):
    a, b = shapes(7, noise=0.2, clutter=clutter), shapes(7, noise=0.2, clutter=clutter)
    for field in FIELDS:
        assert getattr(a, field).tobytes() == getattr(b, field).tobytes(), field
    other = shapes(8, noise=0.2, clutter=clutter)
    for field in FIELDS:
        assert getattr(a, field).tobytes() != getattr(other, field).tobytes(), field


def test_uses_only_the_given_rng():
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    shapes(1, noise=0.3, clutter=True)
    assert np.array_equal(np.random.get_state()[1], before)


@pytest.mark.parametrize("size", [16, 28, 40])
def test_dtypes_shapes_and_range(size):
    s = shapes(3, n=50, size=size)
    assert s.images.shape == (50, 1, size, size) and s.images.dtype == np.float32
    assert s.labels.shape == (50,) and s.labels.dtype == np.int64
    assert s.boxes.shape == (50, 4) and s.boxes.dtype == np.int64
    assert s.masks.shape == (50, size, size) and s.masks.dtype == np.bool_
    assert s.patch_box is None
    assert s.images.min() == 0.0 and s.images.max() == 1.0
    # bright shape on a dark background: every clean image has fully covered pixels and empty corners
    assert (s.images.reshape(50, -1).max(axis=1) == 1.0).all()
    assert (s.images[:, 0, [0, 0, -1, -1], [0, -1, 0, -1]] == 0.0).all()
    assert set(np.unique(s.labels)) <= set(range(len(SHAPE_CLASSES)))


@pytest.mark.parametrize("n, expected", [(1, [1, 0, 0, 0]), (10, [3, 3, 2, 2]), (400, [100] * 4), (7, [2, 2, 2, 1])])
def test_labels_are_balanced_with_the_remainder_to_the_first_classes(n, expected):
    labels = shapes(5, n=n).labels
    assert np.bincount(labels, minlength=len(SHAPE_CLASSES)).tolist() == expected


def test_labels_come_in_a_random_order():
    labels = shapes(5, n=400).labels
    assert not np.array_equal(labels, np.sort(labels))
    assert not np.array_equal(labels, shapes(6, n=400).labels)


def test_boxes_are_tight_and_masks_are_half_coverage():
    size = 28
    s = shapes(11, n=400, size=size)
    clean = s.images[:, 0]
    for k in range(len(s.labels)):
        # noise 0: the image is the clean coverage, so its non-zero pixels are exactly the pixels the shape touches
        assert pixel_bbox(clean[k] > 0) == tuple(s.boxes[k]), k
        x0, y0, x1, y1 = s.boxes[k]
        outside = np.ones((size, size), dtype=bool)
        outside[y0:y1, x0:x1] = False
        assert not s.masks[k][outside].any(), k
        assert s.masks[k].any(), k
    assert np.array_equal(s.masks, clean >= 0.5)
    # the whole shape is inside the image with at least one empty pixel all round
    assert (s.boxes[:, :2] >= 1).all() and (s.boxes[:, 2:] <= size - 1).all()
    assert (s.boxes[:, 2:] > s.boxes[:, :2]).all()


def test_sizes_and_rotations_vary():
    s = shapes(2, n=400)
    widths = s.boxes[:, 2] - s.boxes[:, 0]
    assert widths.max() - widths.min() >= 6
    assert len(np.unique(s.masks.sum(axis=(1, 2)))) > 100


@pytest.mark.parametrize("clutter", [False, True])
def test_noise_leaves_the_ground_truth_alone(clutter):
    clean = shapes(4, n=300, clutter=clutter)
    noisy = shapes(4, n=300, noise=0.25, clutter=clutter)
    assert np.array_equal(clean.labels, noisy.labels)
    assert np.array_equal(clean.boxes, noisy.boxes)
    assert np.array_equal(clean.masks, noisy.masks)
    assert not np.array_equal(clean.images, noisy.images)
    assert noisy.images.dtype == np.float32
    assert noisy.images.min() >= 0.0 and noisy.images.max() <= 1.0
    diff = noisy.images - clean.images
    # noise on every pixel, about the asked standard deviation (clipping at 0 and 1 only shrinks it)
    assert (diff != 0).mean() > 0.4
    assert 0.08 < diff.std() < 0.25


def test_classes_differ_in_how_much_of_their_box_they_fill():
    # Mask area / box area. For a continuous shape in its axis-aligned bounding box: a circle fills pi/4 = 0.785
    # at any rotation; a square rotated by t fills 1 / (1 + sin 2t), between 1/2 and 1 with mean 2/pi = 0.64 for
    # t uniform on [0, pi/2); a plus with bars a third of its extent wide fills 5/9 = 0.56 (upright) to 0.63 (45°);
    # and ANY triangle fills at most half of its bounding box. Pixels shave a little off every class (the box
    # counts every touched pixel), but the gaps are far wider than that:
    s = shapes(9, n=800)
    fill = s.masks.sum(axis=(1, 2)) / np.prod(s.boxes[:, 2:] - s.boxes[:, :2], axis=1)
    by_class = {name: fill[s.labels == k] for k, name in enumerate(SHAPE_CLASSES)}
    # every circle fills more of its box than any triangle
    assert by_class["circle"].min() > by_class["triangle"].max()
    assert by_class["triangle"].max() < 0.6
    # only a square can (nearly) fill its box: when it stands upright
    assert by_class["square"].max() > 0.85
    assert by_class["square"].max() > max(by_class[c].max() for c in ("circle", "triangle", "cross")) + 0.03
    # on average: circle > square > cross > triangle
    means = [by_class[c].mean() for c in ("circle", "square", "cross", "triangle")]
    assert means == sorted(means, reverse=True)
    assert min(np.diff(means)) < -0.03


def test_clutter_patch_is_the_same_everywhere_and_apart_from_every_shape():
    size = 28
    s = shapes(13, n=400, size=size, clutter=True)
    assert s.patch_box is not None and s.patch_box.shape == (4,) and s.patch_box.dtype == np.int64
    px0, py0, px1, py1 = (int(v) for v in s.patch_box)
    assert 0 <= px0 < px1 <= size and 0 <= py0 < py1 <= size
    patch = s.images[:, 0, py0:py1, px0:px1]
    # identical in every image, whatever the class, and a real 0/1 pattern
    assert (patch == patch[0]).all()
    assert set(np.unique(patch[0]).tolist()) == {0.0, 1.0}
    # boxes never intersect the patch box, with at least one empty pixel between
    x0, y0, x1, y1 = s.boxes.T
    apart = (x0 >= px1 + 1) | (y0 >= py1 + 1) | (x1 + 1 <= px0) | (y1 + 1 <= py0)
    assert apart.all()
    # outside the patch the image is the clean shape alone, and its box is still tight
    outside = s.images[:, 0].copy()
    outside[:, py0:py1, px0:px1] = 0.0
    for k in range(len(s.labels)):
        assert pixel_bbox(outside[k] > 0) == tuple(s.boxes[k]), k
    assert np.array_equal(s.masks, outside >= 0.5)
    # clutter still balances the classes and places shapes all over the rest of the image
    assert np.bincount(s.labels).tolist() == [100] * 4
    assert (x0 < px1 + 1).any() and (y0 < py1 + 1).any()


def test_without_clutter_there_is_no_patch_box():
    assert shapes(0, n=8).patch_box is None
    assert shapes(0, n=8, clutter=False, noise=0.1).patch_box is None


@pytest.mark.parametrize("kwargs, name", [
    ({"n": 0}, "n"), ({"n": -3}, "n"), ({"n": 2.5}, "n"),
    ({"n": 8, "size": 15}, "size"), ({"n": 8, "size": 0}, "size"), ({"n": 8, "size": 28.0}, "size"),
    ({"n": 8, "noise": -0.1}, "noise"), ({"n": 8, "noise": 1.5}, "noise"), ({"n": 8, "noise": float("nan")}, "noise"),
])
def test_bad_arguments_raise_value_error_naming_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name} "):
        make_shapes(np.random.default_rng(0), **kwargs)


def test_rng_must_be_a_generator():
    with pytest.raises(TypeError, match="^rng "):
        make_shapes(0, 8)  # type: ignore[arg-type]


def test_edge_arguments_are_accepted():
    s = make_shapes(np.random.default_rng(0), 1, size=16, noise=1.0, clutter=True)
    assert s.images.shape == (1, 1, 16, 16)
    assert s.images.min() >= 0.0 and s.images.max() <= 1.0
