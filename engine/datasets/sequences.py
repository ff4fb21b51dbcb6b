"""Sequences: seeded generators of token sequences, for RNN / LSTM / GRU / transformer lessons.

One vocabulary serves inputs and outputs: id 0 is the blank "·" (padding, "nothing here yet"), then the task's
own tokens, and the last id is BOS "▶" (where a decoder's output starts; never in x or y).

* reverse, sort, copy (content tokens "a", "b", …) and add (digits and "+") are ``sequence`` tasks: one output
  token per input position, y (N, T) int64.
* count_zeros (how many "0" tokens), parity (is the number of "1" tokens odd) and brackets (is the "(" ")"
  string balanced) are ``classification`` tasks: y (N,) int64.

Inputs are the token ids as float32, (N, T). Besides the train / validation / test split at ``length``, a held-out
set of longer inputs (``x_long``, ``y_long`` at ``long_length``) tests generalisation in length. `Dataset.meta`
holds ``tokens`` (the display name of every id), ``bos``, ``vocab`` and ``classes``.
"""
from __future__ import annotations

import colorsys
import string
from typing import Literal, get_args

import numpy as np
from pydantic import Field, model_validator

from ..schema import Strict
from .registry import CLASS_RGB, NEUTRAL_RGB, DataFamily, Dataset, register

SequenceName = Literal["reverse", "sort", "copy", "count_zeros", "parity", "brackets", "add"]
SEQUENCE_TASKS = frozenset({"reverse", "sort", "copy", "add"})
BLANK, BOS = "·", "▶"
LETTERS = string.ascii_lowercase + string.ascii_uppercase  # content tokens of reverse / sort / copy
MAX_LENGTH, MAX_LONG = 64, 128
PLUS = 11  # add's "+" id (digits "0".."9" are ids 1..10)


class Sequences(Strict):
    """Token sequences to transform (reverse, sort, copy, add) or to classify (count zeros, parity, brackets)."""

    kind: Literal["sequences"] = "sequences"
    name: SequenceName = Field(
        "reverse", description="reverse: the input backwards; sort: the input in ascending order; copy: the input "
                               "again, delay steps later; add: the digits of a+b; count_zeros: how many '0' tokens; "
                               "parity: is the number of '1' tokens odd; brackets: is the '(' ')' string balanced")
    length: int = Field(8, ge=2, le=MAX_LENGTH,
                        description="tokens per training, validation and test input (add: odd, 2n+1 for two n-digit "
                                    "numbers, 7 if not given; brackets: even)")
    long_length: int = Field(12, ge=0, le=MAX_LONG,
                             description="tokens per input of the held-out longer set that tests generalisation in "
                                         "length; 0: no such set. Longer than length (if not given: the larger of "
                                         "12 and 1.5 × length); odd for add, even for brackets")
    symbols: int = Field(8, ge=2, le=50,
                         description="content symbols the inputs draw from, uniformly (reverse, sort, copy: 'a', "
                                     "'b', …; count_zeros: the digits '0', '1', …). parity, brackets and add fix "
                                     "their own (0/1, ( and ), the digits and +) and ignore it")
    delay: int = Field(2, ge=1, le=MAX_LENGTH - 1,
                       description="copy only: how many steps later each token comes back (blanks before it); "
                                   "shorter than length. The other tasks ignore it")
    samples: int = Field(4000, ge=100, le=50_000,
                         description="number of sequences at length: train, validation and test together")
    long_samples: int = Field(500, ge=10, le=10_000, description="number of sequences in the longer held-out set")
    train_fraction: float = Field(0.8, ge=0.1, le=0.9, description="share of sequences used for training")
    validation_fraction: float = Field(0.1, ge=0.0, le=0.4,
                                       description="share of sequences held out to choose when to stop (early "
                                                   "stopping watches their loss); the rest are the test set")
    seed: int = Field(0, ge=0, le=2**32 - 1)

    @model_validator(mode="after")
    def _lengths(self) -> Sequences:
        # The model is frozen: defaults that depend on other fields are set through object.__setattr__ while
        # it is being built (as Images does for its sample count).
        given = self.model_fields_set
        if self.name == "add" and "length" not in given:
            object.__setattr__(self, "length", 7)
        if "long_length" not in given:
            long = min(MAX_LONG, max(12, self.length + self.length // 2))
            if (self.name == "add" and long % 2 == 0) or (self.name == "brackets" and long % 2):
                long = long + 1 if long < MAX_LONG else long - 1
            object.__setattr__(self, "long_length", long)
        for field in ("length", "long_length"):
            value = getattr(self, field)
            if field == "long_length" and value == 0:
                continue
            if self.name == "add" and (value % 2 == 0 or value < 3):
                raise ValueError(f"{field}: add writes two n-digit numbers as a+b, 2n+1 tokens, so it must be odd "
                                 f"and at least 3, not {value}")
            if self.name == "brackets" and value % 2:
                raise ValueError(f"{field}: an odd number of brackets is never balanced; it must be even, "
                                 f"not {value}")
        if self.long_length and self.long_length <= self.length:
            raise ValueError(f"long_length: the held-out inputs must be longer than length ({self.length}), not "
                             f"{self.long_length}; 0 for none")
        if self.name == "copy" and self.delay >= self.length:
            raise ValueError(f"delay: the copy must come back inside the input, so delay must be shorter than "
                             f"length ({self.length}), not {self.delay}")
        if self.train_fraction + self.validation_fraction > 0.95 + 1e-9:
            raise ValueError(f"validation_fraction: training ({self.train_fraction:g}) and validation "
                             f"({self.validation_fraction:g}) leave no test set; together they may be at most 0.95")
        return self

    @property
    def task(self) -> Literal["sequence", "classification"]:
        return "sequence" if self.name in SEQUENCE_TASKS else "classification"

    @property
    def vocab(self) -> int:
        """Token ids an embedding needs: the blank, every id that can appear in x, and BOS (the last)."""
        return len(tokens(self))

    @property
    def n_classes(self) -> int:
        if self.task == "sequence":
            return self.vocab
        if self.name == "count_zeros":
            return max(self.length, self.long_length) + 1
        return 2


def tokens(spec: Sequences) -> tuple[str, ...]:
    """The display name of every token id, 0 (blank) to vocab - 1 (BOS)."""
    if spec.name == "parity":
        content: tuple[str, ...] = ("0", "1")
    elif spec.name == "brackets":
        content = ("(", ")")
    elif spec.name == "add":
        content = (*(str(d) for d in range(10)), "+")
    elif spec.name == "count_zeros":
        content = tuple(str(d) for d in range(spec.symbols))
    else:
        content = tuple(LETTERS[:spec.symbols])
    return (BLANK, *content, BOS)


def class_names(spec: Sequences) -> tuple[str, ...]:
    if spec.task == "sequence":
        return tokens(spec)
    if spec.name == "parity":
        return ("even", "odd")
    if spec.name == "brackets":
        return ("unbalanced", "balanced")
    return tuple(str(k) for k in range(spec.n_classes))


# --- generators: each returns (x (n, T) int64 token ids, y) ---------------------------------------

def _dyck(rng: np.random.Generator, n: int, length: int) -> np.ndarray:
    """(n, length) steps, +1 for "(" and -1 for ")", of uniformly random balanced strings (the cycle lemma: of
    the rotations of m+1 ups and m downs exactly one keeps every prefix sum positive; drop its first up)."""
    m = length // 2
    steps = np.tile(np.r_[np.ones(m + 1, np.int64), -np.ones(m, np.int64)], (n, 1))
    steps = rng.permuted(steps, axis=1)
    heights = np.concatenate([np.zeros((n, 1), np.int64), np.cumsum(steps[:, :-1], axis=1)], axis=1)
    last_min = 2 * m - np.argmin(heights[:, ::-1], axis=1)
    idx = (last_min[:, None] + np.arange(1, 2 * m + 1)) % (2 * m + 1)
    return np.take_along_axis(steps, idx, axis=1)


def _pick(rng: np.random.Generator, allowed: np.ndarray) -> np.ndarray:
    """One random allowed column per row (every row has one)."""
    return np.argmax(np.where(allowed, rng.random(allowed.shape), -1.0), axis=1)


def _brackets(rng: np.random.Generator, n: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Half balanced, half near misses: two thirds of the unbalanced ones swap a "(" with a later ")" so that
    the depth goes negative while the counts stay equal (counting alone cannot tell them), a third flip one."""
    steps = _dyck(rng, n, length)
    balanced = rng.random(n) < 0.5
    swap = rng.random(n) < 2 / 3
    rows = np.arange(n)
    # swap: a point p (not the last) where the depth is at most 1, a "(" at or before it and a ")" after it;
    # the swap lowers the depth between them by 2, so at p it goes below zero
    depth = np.cumsum(steps, axis=1)
    cols = np.arange(length)
    p = _pick(rng, (depth <= 1) & (cols < length - 1))
    i = _pick(rng, (steps == 1) & (cols <= p[:, None]))
    j = _pick(rng, (steps == -1) & (cols > p[:, None]))
    swapped = steps.copy()
    swapped[rows, i], swapped[rows, j] = steps[rows, j], steps[rows, i]
    flipped = steps.copy()
    t = rng.integers(0, length, n)
    flipped[rows, t] = -flipped[rows, t]
    out = np.where(balanced[:, None], steps, np.where(swap[:, None], swapped, flipped))
    return np.where(out > 0, 1, 2), balanced.astype(np.int64)


def _add(rng: np.random.Generator, n: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Two m-digit numbers (leading zeros allowed) as "a+b", most significant digit first; the target is the
    sum's m+1 digits at the end, blanks before."""
    m = (length - 1) // 2
    a, b = rng.integers(0, 10, (n, m)), rng.integers(0, 10, (n, m))
    total = np.zeros((n, m + 1), np.int64)
    carry = np.zeros(n, np.int64)
    for k in range(m - 1, -1, -1):  # from the least significant digit
        s = a[:, k] + b[:, k] + carry
        total[:, k + 1], carry = s % 10, s // 10
    total[:, 0] = carry
    x = np.concatenate([a + 1, np.full((n, 1), PLUS, np.int64), b + 1], axis=1)
    y = np.zeros((n, length), np.int64)
    y[:, m:] = total + 1
    return x, y


def generate(spec: Sequences, rng: np.random.Generator, n: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """n inputs of ``length`` tokens (int64 ids) and their labels."""
    if spec.name == "brackets":
        return _brackets(rng, n, length)
    if spec.name == "add":
        return _add(rng, n, length)
    if spec.name == "parity":
        x = rng.integers(1, 3, (n, length))
        return x, ((x == 2).sum(axis=1) % 2).astype(np.int64)
    x = rng.integers(1, spec.symbols + 1, (n, length))
    if spec.name == "count_zeros":
        return x, (x == 1).sum(axis=1).astype(np.int64)
    if spec.name == "reverse":
        return x, np.ascontiguousarray(x[:, ::-1])
    if spec.name == "sort":
        return x, np.sort(x, axis=1)
    y = np.zeros_like(x)  # copy
    y[:, spec.delay:] = x[:, :-spec.delay]
    return x, y


def split_sizes(spec: Sequences) -> tuple[int, int, int]:
    """(train, validation, test) sequence counts."""
    n_train = int(spec.samples * spec.train_fraction)
    n_val = int(spec.samples * spec.validation_fraction)
    return n_train, n_val, spec.samples - n_train - n_val


def make(spec: Sequences) -> Dataset:
    """Generate and split: same spec and seed, same arrays, bit for bit. The longer set has its own stream, so
    its size does not change the main split."""
    main, long = (np.random.default_rng(s) for s in np.random.SeedSequence(spec.seed).spawn(2))
    x, y = generate(spec, main, spec.samples, spec.length)
    x = x.astype(np.float32)
    n_train, n_val, _ = split_sizes(spec)
    split = n_train + n_val
    names = tokens(spec)
    meta = {"tokens": names, "bos": len(names) - 1, "vocab": len(names), "classes": class_names(spec)}
    extra: dict[str, np.ndarray] = {}
    if n_val:
        extra |= {"x_val": x[n_train:split], "y_val": y[n_train:split]}
    if spec.long_length:
        xl, yl = generate(spec, long, spec.long_samples, spec.long_length)
        extra |= {"x_long": xl.astype(np.float32), "y_long": yl}
    return Dataset(spec=spec, x_train=x[:n_train], y_train=y[:n_train], x_test=x[split:], y_test=y[split:],
                   meta=meta, **extra)


def _palette(vocab: int) -> np.ndarray:
    """(vocab, 3) uint8 colours by token id: white for the blank, then hues around the wheel."""
    n = max(vocab - 2, 1)
    cols = [(255, 255, 255)] + [tuple(round(255 * c) for c in colorsys.hsv_to_rgb(k / n, 0.65, 0.9))
                                 for k in range(vocab - 1)]
    return np.array(cols, dtype=np.uint8)


def thumbnail(spec: Sequences, size: int) -> np.ndarray:
    """A (size, size, 3) picture: a few inputs as rows of cells coloured by token id, each above its target row
    (sequence tasks) or beside a class-coloured cell (classification), on the neutral background."""
    rng = np.random.default_rng(spec.seed)
    img = np.empty((size, size, 3), dtype=np.uint8)
    img[:] = NEUTRAL_RGB
    palette = _palette(spec.vocab)
    width = max(1, min(spec.length, 16, size))
    if spec.task == "sequence":
        x, y = generate(spec, rng, 3, spec.length)
        rows = [r for k in range(3) for r in (palette[x[k, :width]], palette[y[k, :width]], None)][:-1]
        cols = width
    else:
        x, y = generate(spec, rng, 5, spec.length)
        label = np.array(CLASS_RGB, dtype=np.uint8)[y % len(CLASS_RGB)]
        rows = [r for k in range(5) for r in (np.concatenate([palette[x[k, :width]], label[k:k + 1]]), None)][:-1]
        cols = width + 1
    cell = max(1, size // (max(len(rows), cols + 1) + 1))  # a margin all round
    y0 = (size - cell * len(rows)) // 2
    x0 = (size - cell * cols) // 2
    for r, row in enumerate(rows):
        if row is None:
            continue
        for c, rgb in enumerate(row):
            if spec.task == "classification" and c == width:
                c += 0.5  # the label sits half a cell apart
            left = x0 + int(c * cell)
            img[y0 + r * cell + (cell > 2):y0 + (r + 1) * cell, left + (cell > 2):left + cell] = rgb
    return img


def variants() -> dict[str, Sequences]:
    """One of each task at its short default length."""
    return {name: Sequences(name=name) for name in get_args(SequenceName)}


register(DataFamily(
    kind="sequences", title="Sequences",
    doc="Token sequences to transform (reverse, sort, copy with a delay, add two numbers) or to classify (count "
        "the zeros, parity, balanced brackets), with a held-out set of longer inputs to test generalisation in "
        "length. For RNNs, LSTMs, GRUs and transformers.",
    spec=Sequences, make=make, input_shape=lambda s: (s.length,), tasks=frozenset({"sequence", "classification"}),
    thumbnail=thumbnail, variants=variants, running_train_metrics=True,
    presets=("reverse-transformer", "sort-transformer", "count-zeros-rnn", "count-zeros-lstm", "parity-gru",
             "reverse-seq2seq-attention"),
))
