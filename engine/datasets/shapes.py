"""Seeded 28×28 grey images of four filled shapes (circle, square, triangle, cross) for CNN and saliency lessons.

Each image holds one bright shape (about 1) on a dark (0) background, at a random centre, size and rotation,
anti-aliased by 4×4 supersampling. Every shape comes with its tight pixel box and its half-coverage mask, so a
saliency map can be scored against where the shape really is. With ``clutter`` a fixed checkerboard patch sits in
the top-left corner of every image, away from every shape: it carries no class information, so a model that
looks at it is visibly wrong.

Rendering is vectorised over samples: every edge test is a sum of an x-only and a y-only term, so each sub-pixel
costs one broadcast compare. Measured: 2,000 images at 28×28 (noise 0.1) in 0.10–0.15 s (median of 5 runs) on a
shared 2-core machine.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SHAPE_CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "cross")

_SS = 4  # sub-pixels per pixel along each axis
_RADIUS = (0.22, 0.38)  # circumscribed radius as a share of the image size
_PERIOD = (0.0, math.pi / 2, 2 * math.pi / 3, math.pi / 2)  # rotational symmetry period per class
_CROSS_HALF_WIDTH = 1.0 / 3.0  # cross: bar half-width / arm half-length (bars a third of the extent wide)
_CHUNK = 1 << 21  # sub-pixels rendered per block (bounds memory for any n and size)


@dataclass(frozen=True)
class ShapeSet:
    """Images and the ground truth of where each shape is."""

    images: np.ndarray  # (n, 1, size, size) float32 in [0, 1]
    labels: np.ndarray  # (n,) int64, index into SHAPE_CLASSES
    boxes: np.ndarray  # (n, 4) int64 x0, y0, x1, y1, end-exclusive, tight around pixels the clean shape touches
    masks: np.ndarray  # (n, size, size) bool, pixels the shape covers at least half
    patch_box: np.ndarray | None  # (4,) int64 box of the distractor patch, or None without clutter


def patch_layout(size: int) -> tuple[np.ndarray, np.ndarray]:
    """The distractor: a (p, p) float32 checkerboard of 0/1 and its (4,) int64 box, one pixel in from the top left."""
    p = max(3, size // 7)
    patch = (np.add.outer(np.arange(p), np.arange(p)) % 2 == 0).astype(np.float32)
    return patch, np.array([1, 1, 1 + p, 1 + p], dtype=np.int64)


def _validate(rng: object, n: object, size: object, noise: object) -> None:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 16:
        raise ValueError(f"size must be an integer >= 16, got {size!r}")
    if isinstance(noise, bool) or not isinstance(noise, int | float | np.integer | np.floating) \
            or not 0.0 <= float(noise) <= 1.0:
        raise ValueError(f"noise must be a number in [0, 1], got {noise!r}")


def _inside(kind: int, dx: np.ndarray, dy: np.ndarray, r: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """(m, Y, X) bool: which sub-pixels lie in the shape. dx (m, X), dy (m, Y) are offsets from the centres.

    Every test has the form x-term <= limit - y-term, so it is one broadcast compare of two small arrays; no
    full-size float array is ever made.
    """
    r = r[:, None]
    if kind == 0:  # circle of radius r
        return (dx * dx)[:, None, :] <= (r * r - dy * dy)[:, :, None]

    def terms(angle: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # distance along a direction = x-term + y-term
        c, s = np.cos(angle).astype(np.float32), np.sin(angle).astype(np.float32)
        return (dx * c[:, None])[:, None, :], (dy * s[:, None])[:, :, None]

    def slab(angle: np.ndarray, t: np.ndarray) -> np.ndarray:  # |distance along angle| <= t
        x, y = terms(angle)
        return (x <= t[:, :, None] - y) & (x >= -t[:, :, None] - y)

    if kind == 2:  # equilateral triangle: three edges at the inradius r / 2
        out = None
        for k in range(3):
            x, y = terms(theta + k * 2 * math.pi / 3)
            edge = x <= (r / 2)[:, :, None] - y
            out = edge if out is None else out & edge
        return out
    if kind == 1:  # square with its corners on the circumscribed circle
        h = r / math.sqrt(2.0)
        return slab(theta, h) & slab(theta + math.pi / 2, h)
    # cross: arm half-length a, bar half-width w = a / 3, corners (a, w) on the circumscribed circle
    a = r / math.sqrt(1.0 + _CROSS_HALF_WIDTH**2)
    w = a * _CROSS_HALF_WIDTH
    return (slab(theta, a) & slab(theta + math.pi / 2, w)) | (slab(theta, w) & slab(theta + math.pi / 2, a))


def _render(labels: np.ndarray, cx: np.ndarray, cy: np.ndarray, r: np.ndarray, theta: np.ndarray,
            size: int) -> np.ndarray:
    """(n, size, size) uint8: how many of the _SS² sub-pixels of each pixel the shape covers."""
    n = len(labels)
    counts = np.empty((n, size, size), dtype=np.uint8)
    sub = (np.arange(size * _SS, dtype=np.float32) + 0.5) / _SS  # sub-pixel centres; pixel i spans [i, i + 1)
    block = max(1, _CHUNK // (size * _SS) ** 2)
    for kind in range(len(SHAPE_CLASSES)):
        idx = np.flatnonzero(labels == kind)
        for start in range(0, len(idx), block):
            j = idx[start:start + block]
            dx = sub[None, :] - cx[j, None].astype(np.float32)
            dy = sub[None, :] - cy[j, None].astype(np.float32)
            inside = _inside(kind, dx, dy, r[j].astype(np.float32), theta[j])
            counts[j] = _pool(inside.view(np.uint8), size)
    return counts


def _pool(sub: np.ndarray, size: int) -> np.ndarray:
    """Sum (m, size·_SS, size·_SS) uint8 over each _SS × _SS cell (explicit adds: much faster than .sum on axes)."""
    rows = sub.reshape(len(sub), size, _SS, size * _SS)
    acc = rows[:, :, 0].copy()
    for k in range(1, _SS):
        acc += rows[:, :, k]
    cols = acc.reshape(len(sub), size, size, _SS)
    out = cols[..., 0].copy()
    for k in range(1, _SS):
        out += cols[..., k]
    return out


def _boxes(touched: np.ndarray) -> np.ndarray:
    """(n, 4) int64 end-exclusive bounding boxes of the True pixels of (n, H, W) (each image has some)."""
    cols, rows = touched.any(axis=1), touched.any(axis=2)
    w, h = cols.shape[1], rows.shape[1]
    x0, y0 = cols.argmax(axis=1), rows.argmax(axis=1)
    x1, y1 = w - cols[:, ::-1].argmax(axis=1), h - rows[:, ::-1].argmax(axis=1)
    return np.stack([x0, y0, x1, y1], axis=1).astype(np.int64)


def make_shapes(rng: np.random.Generator, n: int, size: int = 28, noise: float = 0.0,
                clutter: bool = False) -> ShapeSet:
    """``n`` images of filled shapes, balanced over SHAPE_CLASSES in a random order, drawn from ``rng`` only.

    Each shape lies wholly inside the image with at least a pixel to spare, and with ``clutter`` at least a pixel
    away from the distractor patch's box. ``noise`` is the standard deviation of Gaussian noise added to every
    pixel (patch included) before clipping to [0, 1]; boxes and masks describe the clean shape.
    """
    _validate(rng, n, size, noise)
    n, size, noise = int(n), int(size), float(noise)

    counts_per_class = np.full(len(SHAPE_CLASSES), n // len(SHAPE_CLASSES))
    counts_per_class[: n % len(SHAPE_CLASSES)] += 1
    labels = rng.permutation(np.repeat(np.arange(len(SHAPE_CLASSES), dtype=np.int64), counts_per_class))

    patch, patch_box = patch_layout(size)
    gap = int(patch_box[2]) + 1  # first column (or row) a clutter-mode shape may touch
    r_hi = min(_RADIUS[1] * size, (size - 1 - gap) / 2) if clutter else _RADIUS[1] * size
    r = rng.uniform(_RADIUS[0] * size, r_hi, n)
    theta = rng.uniform(0.0, 1.0, n) * np.asarray(_PERIOD)[labels]
    u1, u2, u3 = rng.uniform(0.0, 1.0, (3, n))
    lo, hi = 1.0 + r, size - 1.0 - r  # the circumscribed circle stays in [1, size - 1]
    if clutter:
        # Centres uniform on an L: the square [lo, hi]² minus the corner where the circle could reach the patch
        # (cx - r < gap and cy - r < gap). Strip A: cx >= gap + r, any cy; strip B: cx < gap + r, cy >= gap + r.
        c = gap + r
        in_a = u3 < (hi - lo) / (hi - lo + c - lo)
        cx = np.where(in_a, c + u1 * (hi - c), lo + u1 * (c - lo))
        cy = np.where(in_a, lo + u2 * (hi - lo), c + u2 * (hi - c))
    else:
        cx, cy = lo + u1 * (hi - lo), lo + u2 * (hi - lo)

    counts = _render(labels, cx, cy, r, theta, size)
    images = counts.astype(np.float32) * np.float32(1.0 / _SS**2)
    boxes = _boxes(counts > 0)
    masks = counts >= (_SS**2 + 1) // 2
    if clutter:
        x0, y0, x1, y1 = (int(v) for v in patch_box)
        images[:, y0:y1, x0:x1] = patch
    if noise > 0.0:
        images += rng.standard_normal(images.shape, dtype=np.float32) * np.float32(noise)
        np.clip(images, 0.0, 1.0, out=images)
    return ShapeSet(images=images[:, None], labels=labels, boxes=boxes, masks=masks,
                    patch_box=patch_box if clutter else None)
