"""Probe scheduling: run the probes someone asked for, spaced so they cost a small share of training time."""
from __future__ import annotations

import logging
import threading
import time

from ..probes import PROBES, ProbeContext, ProbeRequest, ProbeResult, run_probe

log = logging.getLogger(__name__)

PROBE_BUDGET = 0.03  # automatic probes take at most this share of training time
PROBE_MIN_INTERVAL = 1 / 12  # and come at most 12 times a second: each one is redrawn by several views


class ProbeScheduler:
    """Holds which probes are wanted (settable from any thread) and when the next round is due."""

    def __init__(self, ctx: ProbeContext, applicable: list[str], every: int) -> None:
        self.ctx = ctx
        self.applicable = applicable
        self.every = every  # steps between rounds; 0 = automatic, by time budget
        self._wanted: frozenset[str] = frozenset()
        self._requests: dict[str, ProbeRequest] = {}  # per probe, what a view asks about (a sample, a method)
        self.urgent: frozenset[str] = frozenset()  # asked about something new: answered at the next boundary
        self._lock = threading.Lock()
        self.results: dict[str, ProbeResult] = {}
        self._next_step = 0
        self._next_time = 0.0  # perf_counter time before which automatic rounds wait
        self.seconds = 0.0
        self.rounds = 0

    def want(self, names: set[str] | frozenset[str]) -> None:
        """Ask for these probes from now on (names that do not apply are ignored); safe from any thread."""
        unknown = set(names) - set(PROBES)
        if unknown:
            raise KeyError(f"unknown probe {min(unknown)} (known: {', '.join(PROBES)})")
        with self._lock:
            self._wanted = frozenset(n for n in names if n in self.applicable)

    def set_request(self, name: str, request: ProbeRequest) -> None:
        """Ask one probe about something else from now on (the selected sample, another method); its result
        is dropped, so the next step boundary computes it again. Safe from any thread."""
        with self._lock:
            self._requests[name] = request
            self.results = {n: r for n, r in self.results.items() if n != name}
            self.urgent = self.urgent | {name}

    def request(self, name: str) -> ProbeRequest:
        return self._requests.get(name) or ProbeRequest()

    @property
    def wanted(self) -> frozenset[str]:
        return self._wanted

    def missing(self, step: int) -> bool:
        """True when a wanted probe has no result for this step."""
        return any(n not in self.results or self.results[n].step != step for n in self._wanted)

    def due(self, step: int) -> bool:
        return bool(self._wanted) and step >= self._next_step and time.perf_counter() >= self._next_time

    def _compute(self, name: str, step: int) -> ProbeResult | None:
        """One probe for its request; a request the run cannot answer (a layer or a code width of another
        network, kept from an earlier run) is dropped for the probe's default. A probe that fails on the model
        as it is (non-finite weights after a divergence) is left out of this round and logged: a picture is
        never worth stopping a run or a window for."""
        request = self._requests.get(name)
        try:
            try:
                return run_probe(self.ctx, name, step, request)
            except KeyError:
                if request is None:
                    raise
                with self._lock:
                    if self._requests.get(name) is request:
                        del self._requests[name]
                return run_probe(self.ctx, name, step, None)
        except (KeyError, ValueError, RuntimeError, ArithmeticError) as exc:
            log.warning("probe %s left out at step %d: %s", name, step, str(exc).splitlines()[0] if str(exc) else
                        type(exc).__name__)
            return None

    def _merge(self, names: frozenset[str], step: int) -> dict[str, ProbeResult]:
        """The results with this round's of ``names`` (a probe that failed keeps no stale result)."""
        fresh = {n: self._compute(n, step) for n in names}
        kept = {n: r for n, r in self.results.items() if n not in fresh}
        return kept | {n: r for n, r in fresh.items() if r is not None}

    def run_urgent(self, step: int) -> None:
        """Answer the probes asked about something new since the last round, now rather than at the next round
        (a click that decodes a latent point is answered within a frame); the caller holds the model still."""
        with self._lock:
            names, self.urgent = self.urgent & self._wanted, frozenset()
        if names:
            self.ctx.fresh()
            self.results = self._merge(names, step)

    def run(self, step: int) -> None:
        """One round of every wanted probe (the caller holds the model still)."""
        self.urgent = frozenset()
        names = self._wanted
        if not names:
            return
        t = time.perf_counter()
        self.ctx.fresh()
        self.results = {n: r for n, r in self._merge(names, step).items() if n in names}
        spent = time.perf_counter() - t
        self.seconds += spent
        self.rounds += 1
        every = self.every
        if every == 0:
            # Space rounds in time so they cost ≤ PROBE_BUDGET of it, however fast or slow the steps are. A
            # slow one-off (the first call warms torch up) should not hold the next back: use the mean if
            # lower, and never wait more than a second.
            cost = min(spent, self.seconds / self.rounds)
            self._next_time = time.perf_counter() + min(max(cost / PROBE_BUDGET, PROBE_MIN_INTERVAL), 1.0)
            every = 1
        self._next_step = step + every
