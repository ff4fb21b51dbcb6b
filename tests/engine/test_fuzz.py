"""Property-based tests (Hypothesis) over session files and specs: whatever a file holds, reading it ends in
the engine's own error or in a session that trains one step and saves. tests/bench/fuzz_sessions.py runs
the same mutations 10,000 times."""
from __future__ import annotations

import functools
import random
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.check import parse_spec
from engine.errors import EngineError
from engine.session import load_session
from engine.train.trainer import Trainer
from tests.conftest import spec_dict
from tests.fuzzing import MUTATORS, base_session, mutate_json, runs

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@functools.cache
def base() -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        return base_session(Path(folder))


@pytest.mark.parametrize("mutator", sorted(MUTATORS))
def test_a_mutated_session_gives_the_engines_error_or_runs(mutator):
    @FUZZ
    @given(seed=st.integers(0, 2**32 - 1))
    def check(seed: int) -> None:
        data = MUTATORS[mutator](random.Random(seed), base())
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "case.dlp"
            path.write_bytes(data)
            try:
                load_session(path)
            except EngineError as exc:
                assert "\n" not in str(exc)
                return
            runs(path, Path(folder) / "again.dlp")  # loaded: it must train a step and save

    check()


@FUZZ
@given(seed=st.integers(0, 2**32 - 1), preset=st.sampled_from(["tfp-circle", "spiral3", "plane"]))
def test_a_mutated_spec_gives_the_engines_error_or_trains(seed, preset):
    doc = mutate_json(random.Random(seed), spec_dict(preset))
    try:
        spec = parse_spec(doc)
        tr = Trainer(spec, probes=False)
    except EngineError:
        return
    for _ in tr.run(steps=1):
        pass
