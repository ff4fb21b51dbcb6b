"""Images: scikit-learn's bundled handwritten digits (8×8, 10 classes) and generated shapes (28×28, 4 classes),
with a "clutter" variant that puts the same distractor patch in every image. Nothing is downloaded: the digits
ship inside scikit-learn, the shapes come from a seeded generator (`shapes.py`).

Digits can be scaled (``size``, bilinear) to the shapes' 28×28, so that a body trained on shapes fits them.
Inputs are standardised per channel with the training set's mean and standard deviation; `Dataset.meta` keeps
them (`mean`, `std`, each (C,)) so that anything fed to the model later (a digit drawn by hand) goes through
exactly the same steps (`preprocess`). For shapes, `meta` also holds the test images' boxes and masks and the
distractor patch's box, which the saliency checks measure against.
"""
from __future__ import annotations

from functools import cache
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from ..ops.registry import Shape
from ..schema import Strict
from .registry import CLASS_RGB, NEUTRAL_RGB, DataFamily, Dataset, register

ImageName = Literal["digits", "shapes", "shapes_clutter"]
DIGIT_CLASSES = tuple(str(d) for d in range(10))
SHAPE_CLASSES = ("circle", "square", "triangle", "cross")  # shapes.SHAPE_CLASSES (a test checks they agree)
SHAPES_SIZE = 28
N_DIGITS = 1797  # scikit-learn's load_digits


class Images(Strict):
    """Small grey images to classify or to reconstruct: real handwritten digits, or generated shapes."""

    kind: Literal["images"] = "images"
    name: ImageName = "digits"
    task: Literal["classification", "reconstruction"] = Field(
        "classification", description="classification: name each image's class; reconstruction: give the image "
                                      "back through a bottleneck (autoencoders; the classes only colour the codes)")
    samples: int = Field(2000, ge=40, le=20_000,
                         description="number of images, train and test together (digits: at most the 1,797 "
                                     "scikit-learn ships)")
    noise: float = Field(0.0, ge=0.0, le=50.0, description="Gaussian pixel noise in percent of full brightness")
    train_fraction: float = Field(0.7, ge=0.1, le=0.9, description="share of images used for training")
    validation_fraction: float = Field(0.1, ge=0.0, le=0.4,
                                       description="share of images held out to choose when to stop (early "
                                                   "stopping watches their loss); the rest are the test set")
    size: int = Field(0, ge=0, le=64,
                      description="side in pixels the digits are scaled to (bilinear); 0 keeps their own 8. At 28 "
                                  "they match the shapes, so a body trained on shapes fits them")
    seed: int = Field(0, ge=0, le=2**32 - 1)

    @model_validator(mode="after")
    def _digits_size(self) -> Images:
        if self.size and self.name != "digits" and self.size != SHAPES_SIZE:
            raise ValueError(f"size: only the digits can be scaled; the shapes are drawn at {SHAPES_SIZE}")
        if self.name == "digits":
            if "samples" not in self.model_fields_set:  # all of them (frozen: set while being built)
                object.__setattr__(self, "samples", N_DIGITS)
            elif self.samples > N_DIGITS:
                raise ValueError(f"samples: scikit-learn ships {N_DIGITS:,} digits, not {self.samples:,}")
        if self.train_fraction + self.validation_fraction > 0.95 + 1e-9:
            raise ValueError(f"validation_fraction: training ({self.train_fraction:g}) and validation "
                             f"({self.validation_fraction:g}) leave no test set; together they may be at most 0.95")
        return self

    @property
    def n_classes(self) -> int:
        return len(class_names(self))


def class_names(spec: Images) -> tuple[str, ...]:
    return DIGIT_CLASSES if spec.name == "digits" else SHAPE_CLASSES


@cache
def _digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 digits as (N, 1, 8, 8) floats in [0, 1] and int64 labels (read once)."""
    from sklearn.datasets import load_digits  # imported here: scikit-learn takes a second to import

    d = load_digits()
    images = (d.images.astype(np.float32) / 16.0)[:, None]
    images.setflags(write=False)
    labels = d.target.astype(np.int64)
    labels.setflags(write=False)
    return images, labels


def native_side(spec: Images) -> int:
    """The side the set's images come in: 8 for scikit-learn's digits, 28 for the generated shapes."""
    return 8 if spec.name == "digits" else SHAPES_SIZE


def side(spec: Images) -> int:
    """The side the model sees: ``size`` where set, else the native one."""
    return spec.size or native_side(spec)


def rescale(images: np.ndarray, side: int) -> np.ndarray:
    """(N, C, h, w) images in [0, 1] to (N, C, side, side): bilinear (antialiased when shrinking), as torch's
    ``interpolate`` does it. The data pipeline and a drawing made at the native size both come through here."""
    import torch
    import torch.nn.functional as F

    if images.shape[-1] == side and images.shape[-2] == side:
        return images
    t = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    out = F.interpolate(t, size=(side, side), mode="bilinear", align_corners=False,
                        antialias=side < images.shape[-1])
    return np.ascontiguousarray(out.clamp_(0.0, 1.0).numpy())


def raw_images(spec: Images) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """(images (N, C, H, W) in [0, 1] at the model's side, labels (N,), per-image extras) in a seeded random
    order. Rescaled digits keep their own 8×8 pictures in the extras as ``native``."""
    rng = np.random.default_rng(spec.seed)
    if spec.name == "digits":
        images, labels = _digits()
        order = rng.permutation(len(images))[:spec.samples]
        x = images[order]
        if spec.noise:
            x = np.clip(x + rng.normal(0.0, spec.noise / 100.0, x.shape).astype(np.float32), 0.0, 1.0)
        x = np.ascontiguousarray(x)
        if side(spec) != native_side(spec):
            return rescale(x, side(spec)), labels[order].copy(), {"native": x}
        return x, labels[order].copy(), {}
    from .shapes import make_shapes

    s = make_shapes(rng, spec.samples, SHAPES_SIZE, spec.noise / 100.0, clutter=spec.name == "shapes_clutter")
    extras = {"boxes": s.boxes, "masks": s.masks}
    if s.patch_box is not None:
        extras["patch_box"] = np.broadcast_to(s.patch_box, (len(s.labels), 4))
    return s.images.astype(np.float32), s.labels.astype(np.int64), extras


def preprocess(raw: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Images in [0, 1], (N, C, H, W), to model inputs: per-channel standardisation with the training set's
    statistics. The data pipeline and a hand-drawn digit both come through here."""
    return np.ascontiguousarray((raw - mean[None, :, None, None]) / std[None, :, None, None], dtype=np.float32)


def split_sizes(spec: Images) -> tuple[int, int, int]:
    """(train, validation, test) image counts."""
    n_train = int(spec.samples * spec.train_fraction)
    n_val = int(spec.samples * spec.validation_fraction)
    return n_train, n_val, spec.samples - n_train - n_val


def make(spec: Images) -> Dataset:
    """Generate or load, split into train / validation / test, standardise: same spec and seed, same arrays,
    bit for bit."""
    images, labels, extras = raw_images(spec)
    n_train, n_val, _ = split_sizes(spec)
    split = n_train + n_val
    train = images[:n_train]
    mean = train.mean(axis=(0, 2, 3)).astype(np.float32)
    std = np.maximum(train.std(axis=(0, 2, 3)), 1e-6).astype(np.float32)
    meta: dict[str, object] = {"mean": mean, "std": std, "classes": class_names(spec),
                               "raw_test": images[split:]}
    for key, value in extras.items():
        meta[key + "_test"] = np.asarray(value[split:])
    if "patch_box_test" in meta:
        meta["patch_box"] = extras["patch_box"][0]
    val = {"x_val": preprocess(images[n_train:split], mean, std), "y_val": labels[n_train:split]} if n_val else {}
    if spec.task == "reconstruction":  # the target is the picture itself, in [0, 1]
        flat = np.ascontiguousarray(images.reshape(len(images), -1), dtype=np.float32)
        val |= {"target_train": flat[:n_train], "target_test": flat[split:],
                **({"target_val": flat[n_train:split]} if n_val else {})}
    return Dataset(spec=spec, x_train=preprocess(train, mean, std), x_test=preprocess(images[split:], mean, std),
                   y_train=labels[:n_train], y_test=labels[split:], meta=meta, **val)


def thumbnail(spec: Images, size: int) -> np.ndarray:
    """A (size, size, 3) picture: a 3×3 grid of the set's first images, grey on the neutral background with a
    class-coloured frame."""
    preview = spec.model_copy(update={"samples": max(40, min(spec.samples, 40))})
    images, labels, _ = raw_images(preview)
    img = np.empty((size, size, 3), dtype=np.uint8)
    img[:] = NEUTRAL_RGB
    cell = size // 3
    for k in range(min(9, len(images))):
        r, c = divmod(k, 3)
        pic = images[k, 0]
        ys = np.linspace(0, pic.shape[0] - 1, cell - 2).round().astype(int)
        small = pic[np.ix_(ys, ys)]
        y0, x0 = r * cell, c * cell
        img[y0:y0 + cell, x0:x0 + cell] = CLASS_RGB[int(labels[k]) % len(CLASS_RGB)]
        img[y0 + 1:y0 + cell - 1, x0 + 1:x0 + cell - 1] = (255 * (1.0 - small[..., None])).astype(np.uint8)
    return img


def variants() -> dict[str, Images]:
    return {"digits": Images(name="digits"), "shapes": Images(name="shapes"),
            "shapes_clutter": Images(name="shapes_clutter")}


def _input_shape(spec: Images) -> Shape:
    return (1, side(spec), side(spec))


register(DataFamily(
    kind="images", title="Images",
    doc="Handwritten digits (8×8, scikit-learn's bundled set) and generated shapes (28×28) to classify or to "
        "reconstruct through an autoencoder.",
    spec=Images, make=make, input_shape=_input_shape, tasks=frozenset({"classification", "reconstruction"}),
    thumbnail=thumbnail, variants=variants, running_train_metrics=True,
    presets=("digits-mlp", "digits-cnn", "shapes-cnn", "shapes-resnet", "shapes-clutter-cnn", "digits-transfer",
             "digits-ae-2d", "digits-vae-2d", "digits-vae-8d", "digits-denoise", "shapes-conv-ae", "shapes-vit"),
))
