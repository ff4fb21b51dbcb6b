"""The probe registry: a probe computes named arrays from (model, data, request), with no Qt, for the views
to draw and for scripts and tests to check (``python -m engine probe``). Adding a probe is one module that
registers a ``Probe`` and one test; the trainer runs whichever probes the views ask for."""
from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..decoding import feed, has_decoder

if TYPE_CHECKING:
    from ..datasets import Dataset
    from ..graph import GraphInfo, GraphModule
    from ..head import Head


@dataclass(frozen=True)
class ProbeRequest:
    """What the caller asks about beyond the model: one sample, one layer (each probe says which it takes)."""

    sample: int | None = None
    layer: str | None = None
    samples: tuple[int, int] | None = None  # a range [start, stop) of samples, for probes about many
    method: str | None = None  # how to compute it, where a probe offers several (saliency)
    target: int | None = None  # the class to explain (default: the predicted one)
    split: str = "test"  # which samples: "test" (the held-out set), "train", or "long" (longer held-out sequences)
    eps: float | None = None  # the size of an adversarial step, in pixel units (a share of full brightness)
    pixels: tuple[float, ...] | None = None  # a picture of the model's input size in [0, 1], row by row (drawn)
    points: tuple[float, ...] | None = None  # points in a layer's space (a latent code), D values each, row by row
    size: int | None = None  # a grid's side (the manifold's mosaic)
    width: int | None = None  # beam search's width (decoding a sequence with method "beam")
    temperature: float | None = None  # softmax temperature when decoding (1: the network's own probabilities)


@dataclass
class ProbeContext:
    """What probes compute from. Forward passes are cached per input for one round of probes."""

    model: GraphModule
    head: Head
    data: Dataset
    dataset_spec: Any
    x_train: torch.Tensor  # the training inputs, on the model's device
    t_train: torch.Tensor  # the training targets as the loss expects them
    settings: Any  # the session's Training settings (probe_grid, neuron_grid, ...)
    _cache: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    _constants: dict[str, torch.Tensor] = field(default_factory=dict)
    memory: dict[str, Any] = field(default_factory=dict)  # what a probe keeps between rounds (the last PCA axes)

    def constant(self, key: str, make: Callable[[], torch.Tensor]) -> torch.Tensor:
        """An input that stays the same for the whole run (a probe grid), made on first use only."""
        if key not in self._constants:
            self._constants[key] = make()
        return self._constants[key]

    @torch.no_grad()
    def forward_all(self, key: str, x: torch.Tensor | Callable[[], torch.Tensor],
                    extras: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """Every node's output for ``x`` in eval mode, computed once per round under ``key`` (``extras``: what an
        encoder–decoder's decoder reads, see ``feed``)."""
        if key not in self._cache:
            inputs = x() if callable(x) else x
            with self.model.evaluating():
                self._cache[key] = self.model.forward_all(inputs, extras)
        return self._cache[key]

    def labels(self, split: str) -> torch.Tensor:
        """A split's labels on the model's device (a sequence task's target tokens), made once a run."""
        dev = self.x_train.device
        return self.constant(f"y_{split}", lambda: torch.from_numpy(getattr(self.data, f"y_{split}")).to(dev))

    def feed(self, split: str, start: int = 0, stop: int | None = None) -> dict[str, torch.Tensor] | None:
        """What an encoder–decoder's decoder reads for a split's rows: their targets so far behind the start
        token (teacher forcing); None for other networks."""
        if not has_decoder(self.model.info.nodes.values()):
            return None
        return feed(self.labels(split)[start:stop], int(self.data.meta.get("bos", 0)))

    def inputs(self, split: str) -> torch.Tensor:
        """A split's model inputs on the model's device: the training tensor, or the test set's (or a sequence
        set's longer held-out one, "long"), made once a run. KeyError naming the split where there is none."""
        if split == "train":
            return self.x_train
        dev = self.x_train.device
        if split not in ("test", "long") or getattr(self.data, f"x_{split}") is None:
            raise KeyError(f"split {split!r}: this data has " + ("train, test and long" if self.data.x_long
                                                                   is not None else "train and test"))
        return self.constant(f"x_{split}", lambda: torch.from_numpy(getattr(self.data, f"x_{split}")).to(dev))

    def forward_rows(self, split: str, start: int = 0, stop: int | None = None) -> dict[str, torch.Tensor]:
        """Every node's output for a split's rows START:STOP (all by default), once per round however many
        probes ask (predictions, embedding and manifold share the test set's pass)."""
        x = self.inputs(split)
        stop = len(x) if stop is None else stop
        whole = start == 0 and stop == len(x)
        return self.forward_all(f"{split}[{start}:{stop}]", x if whole else x[start:stop],
                                self.feed(split, start, stop))

    def fresh(self) -> ProbeContext:
        """The same context with an empty cache (the model has changed since)."""
        self._cache = {}
        return self


@dataclass(frozen=True)
class ProbeResult:
    """One probe's arrays at one step: owned numpy copies, never mutated, so snapshots may share them."""

    name: str
    step: int
    arrays: dict[str, np.ndarray]
    serial: int = 0  # unique per computation: a model edited between steps is probed again at the same step


@dataclass(frozen=True)
class Probe:
    """One probe: which models and data it applies to, and how it computes its arrays."""

    name: str
    doc: str
    applies: Callable[[GraphInfo, Any], bool]  # (model graph, dataset spec) -> bool
    compute: Callable[[ProbeContext, ProbeRequest], dict[str, np.ndarray]]
    takes: frozenset[str] = frozenset()  # which ProbeRequest fields it reads ("sample", "layer")


PROBES: dict[str, Probe] = {}


def register(probe: Probe) -> Probe:
    if probe.name in PROBES:
        raise ValueError(f"probe {probe.name} is registered twice")
    PROBES[probe.name] = probe
    return probe


_SERIALS = itertools.count(1)


def applicable(info: GraphInfo, dataset_spec: Any) -> list[str]:
    """The names of the probes that apply to this model and dataset, in registration order."""
    return [name for name, p in PROBES.items() if p.applies(info, dataset_spec)]


def run_probe(ctx: ProbeContext, name: str, step: int, request: ProbeRequest | None = None) -> ProbeResult:
    """Compute one probe now (callers hold the model still: between steps). A network built for its training
    length (a learned position table, a flatten) cannot read the longer held-out sequences: asked about them,
    the probe's KeyError names the split, as for any request it cannot answer (a view then falls back)."""
    request = request or ProbeRequest()
    try:
        arrays = PROBES[name].compute(ctx, request)
    except (RuntimeError, ValueError, IndexError) as exc:
        if request.split != "long":
            raise
        raise KeyError(f"split 'long': this network cannot read the longer sequences ({str(exc).strip()[:120]})"
                       ) from None
    return ProbeResult(name, step, arrays, next(_SERIALS))


def own(t: torch.Tensor) -> np.ndarray:
    """An owned float32 numpy copy of a tensor (``Tensor.numpy()`` shares storage)."""
    return np.ascontiguousarray(t.detach().to("cpu", torch.float32).numpy()).copy()
