"""The sequence family: each task's labels follow its rule, seeded generation is exact, bad specs name the field."""
from __future__ import annotations

import time

import numpy as np
import pytest
from pydantic import ValidationError

from engine.check import parse_spec
from engine.datasets import FAMILIES, make_dataset
from engine.datasets.sequences import Sequences, thumbnail, variants
from engine.errors import SpecError
from engine.schema import validate_strict
from engine.spec import SessionSpec, migrate
from tests.conftest import spec_dict

NAMES = ["reverse", "sort", "copy", "count_zeros", "parity", "brackets", "add"]


def spec_for(name: str, **kw) -> Sequences:
    return Sequences(name=name, samples=600, long_samples=100, **kw)


def every_split(d):
    """(x, y) of train, validation, test and the longer set."""
    return [(d.x_train, d.y_train), (d.x_val, d.y_val), (d.x_test, d.y_test), (d.x_long, d.y_long)]


def token_ids(d, name: str) -> int:
    return d.meta["tokens"].index(name)


def balanced(row: np.ndarray, open_id: int, close_id: int) -> bool:
    depth = 0
    for t in row:
        depth += 1 if t == open_id else -1 if t == close_id else 0
        if depth < 0:
            return False
    return depth == 0


def decode_number(ids, d) -> int:
    names = d.meta["tokens"]
    return int("".join(names[int(i)] for i in ids if names[int(i)] != "·") or "0")


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_arrays_bit_for_bit_and_another_seed_differs(name):
    spec = spec_for(name, seed=5)
    a, b = make_dataset(spec), make_dataset(spec)
    other = make_dataset(spec.model_copy(update={"seed": 6}))
    for (xa, ya), (xb, yb), (xo, _) in zip(every_split(a), every_split(b), every_split(other), strict=True):
        assert xa.tobytes() == xb.tobytes() and ya.tobytes() == yb.tobytes()
        assert xa.tobytes() != xo.tobytes()


def test_the_longer_sets_size_leaves_the_main_split_alone():
    a = make_dataset(spec_for("reverse"))
    b = make_dataset(spec_for("reverse").model_copy(update={"long_samples": 300}))
    assert a.x_train.tobytes() == b.x_train.tobytes() and len(b.x_long) == 300


@pytest.mark.parametrize("name", NAMES)
def test_shapes_dtypes_ids_and_meta(name):
    spec = spec_for(name)
    d = make_dataset(spec)
    family = FAMILIES["sequences"]
    assert spec.task in family.tasks
    assert (len(d.x_train), len(d.x_val), len(d.x_test)) == (480, 60, 60)
    assert d.x_train.shape[1:] == family.input_shape(spec) == (spec.length,)
    assert d.x_long.shape == (100, spec.long_length) and spec.long_length > spec.length
    tokens = d.meta["tokens"]
    assert d.meta["vocab"] == spec.vocab == len(tokens) and d.meta["bos"] == spec.vocab - 1
    assert tokens[0] == "·" and tokens[-1] == "▶" and all(1 <= len(t) <= 2 for t in tokens)
    assert len(set(tokens)) == len(tokens)
    assert len(d.meta["classes"]) == spec.n_classes
    for x, y in every_split(d):
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert np.array_equal(x, x.round()) and x.min() >= 1 and x.max() < d.meta["bos"]  # no blanks, no BOS
        if spec.task == "sequence":
            assert y.shape == x.shape and spec.n_classes == spec.vocab
            assert y.min() >= 0 and y.max() < d.meta["bos"]
        else:
            assert y.shape == (len(x),) and 0 <= y.min() and y.max() < spec.n_classes


def test_reverse_sort_and_copy_follow_their_rules():
    for name in ("reverse", "sort", "copy"):
        d = make_dataset(spec_for(name, symbols=5, delay=3))
        assert d.meta["tokens"][1:6] == ("a", "b", "c", "d", "e")
        for x, y in every_split(d):
            x = x.astype(np.int64)
            assert set(np.unique(x)) == {1, 2, 3, 4, 5}
            for row, target in zip(x, y, strict=True):
                if name == "reverse":
                    assert list(target) == list(reversed(row.tolist()))
                elif name == "sort":
                    assert list(target) == sorted(row.tolist())
                else:
                    assert list(target) == [0, 0, 0] + row.tolist()[:-3]


def test_count_zeros_counts_the_zero_token():
    spec = spec_for("count_zeros", symbols=4, length=20, long_length=30)
    d = make_dataset(spec)
    assert spec.n_classes == 31 and d.meta["classes"][0] == "0" and d.meta["classes"][-1] == "30"
    zero = token_ids(d, "0")
    for x, y in every_split(d):
        assert np.array_equal(y, [list(row).count(zero) for row in x.astype(int)])
    counts = np.concatenate([d.y_train, d.y_test])
    assert 3 < counts.mean() < 7  # about a quarter of 20 tokens


def test_parity_is_the_number_of_ones_mod_two():
    d = make_dataset(spec_for("parity", symbols=9))  # symbols is ignored
    assert d.meta["tokens"] == ("·", "0", "1", "▶") and d.meta["classes"] == ("even", "odd")
    one = token_ids(d, "1")
    for x, y in every_split(d):
        assert np.array_equal(y, [list(row).count(one) % 2 for row in x.astype(int)])
    assert 0.4 < d.y_train.mean() < 0.6


def test_brackets_labels_are_balance_and_the_unbalanced_ones_are_hard():
    spec = Sequences(name="brackets", length=12, long_length=20, samples=2000, long_samples=400)
    d = make_dataset(spec)
    assert d.meta["classes"] == ("unbalanced", "balanced")
    o, c = token_ids(d, "("), token_ids(d, ")")
    for x, y in every_split(d):
        rows = x.astype(int)
        assert np.array_equal(y, [int(balanced(r, o, c)) for r in rows])
        assert 0.4 < y.mean() < 0.6
        bad = rows[y == 0]
        equal = (bad == o).sum(axis=1) == (bad == c).sum(axis=1)
        assert 0.4 < equal.mean()  # a good share can't be told by counting: same counts, yet unbalanced
        assert not np.all(bad[equal][:, 0] == c)  # and not just by the first bracket
    assert len(np.unique(d.x_train[d.y_train == 1], axis=0)) > 100  # many different balanced strings


def test_add_writes_the_sum_right_aligned():
    spec = spec_for("add", length=9, long_length=15)
    d = make_dataset(spec)
    assert d.meta["tokens"] == ("·", *"0123456789", "+", "▶") and spec.vocab == 13
    plus = token_ids(d, "+")
    for x, y in every_split(d):
        n = (x.shape[1] - 1) // 2
        assert np.all(x[:, n] == plus) and np.all(np.delete(x, n, axis=1) != plus)
        assert np.all(y[:, :n] == 0) and np.all(y[:, n:] > 0)
        for row, target in zip(x.astype(int), y, strict=True):
            a, b = decode_number(row[:n], d), decode_number(row[n + 1:], d)
            assert decode_number(target, d) == a + b
    spec7 = Sequences(name="add")  # an odd length by default
    assert spec7.length == 7 and spec7.long_length % 2 == 1


def test_fifty_thousand_samples_are_quick():
    spec = Sequences(name="brackets", samples=50_000, length=32, long_samples=10_000)
    start = time.perf_counter()
    make_dataset(spec)
    assert time.perf_counter() - start < 1.0


def test_defaults_and_long_length():
    s = Sequences()
    assert (s.name, s.length, s.long_length, s.symbols, s.delay, s.samples) == ("reverse", 8, 12, 8, 2, 4000)
    assert s.task == "sequence" and s.vocab == 10
    assert Sequences(length=40).long_length == 60  # 1.5 × length when not given
    assert Sequences(name="brackets", length=10).long_length % 2 == 0
    d = make_dataset(Sequences(samples=200, long_length=0))
    assert d.x_long is None and d.y_long is None
    d = make_dataset(Sequences(samples=200, validation_fraction=0.0))
    assert d.x_val is None and len(d.x_train) + len(d.x_test) == 200


@pytest.mark.parametrize(("fields", "field"), [
    ({"name": "copy", "length": 4, "delay": 4}, "delay"),
    ({"name": "add", "length": 8}, "length"),
    ({"name": "add", "length": 7, "long_length": 12}, "long_length"),
    ({"name": "brackets", "length": 7}, "length"),
    ({"name": "brackets", "length": 8, "long_length": 13}, "long_length"),
    ({"length": 8, "long_length": 8}, "long_length"),
    ({"train_fraction": 0.9, "validation_fraction": 0.2}, "validation_fraction"),
    ({"symbols": 1}, "symbols"),
    ({"length": 65}, "length"),
    ({"samples": 10}, "samples"),
    ({"name": "fizzbuzz"}, "name"),
])
def test_bad_specs_name_the_field(fields, field):
    with pytest.raises(ValidationError, match=field):
        validate_strict(Sequences, {"kind": "sequences", **fields})
    with pytest.raises(SpecError, match=field):
        parse_spec(spec_dict("moons", dataset={"kind": "sequences", **fields}))


def test_the_session_spec_takes_a_sequence_dataset():
    data = spec_dict("moons", dataset={"kind": "sequences", "name": "parity", "length": 10})
    spec = validate_strict(SessionSpec, migrate(data))
    assert isinstance(spec.dataset, Sequences) and spec.dataset.length == 10
    assert FAMILIES["sequences"].running_train_metrics and next(iter(FAMILIES)) == "toy2d"


def test_variants_and_thumbnails():
    specs = variants()
    assert set(specs) == set(NAMES)
    for name, spec in specs.items():
        assert spec.name == name and spec.length <= 16
        for size in (48, 96):
            picture = thumbnail(spec, size)
            assert picture.shape == (size, size, 3) and picture.dtype == np.uint8
            assert len(np.unique(picture.reshape(-1, 3), axis=0)) > 2
        assert thumbnail(spec, 48).tobytes() == thumbnail(spec, 48).tobytes()
