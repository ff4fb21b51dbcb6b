"""Does a saved run fit its spec? A loaded file must be a file that runs: every tensor, optimizer entry and
number the next step and the next save will use is checked here against a reference built from the spec
(the same network, a fresh optimizer after one step), so a file ``info`` calls good trains and saves."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from .check import check_spec
from .datasets import make_dataset
from .errors import SessionFileError
from .graph import GraphModule
from .ops import BuildContext
from .optimizers import make_optimizer
from .spec import SessionSpec

RNG_STATE = torch.Generator().get_state()  # a CPU generator's state: the shape and dtype every saved one has


@dataclass(frozen=True)
class Reference:
    """What a spec's run holds, by name: weights, optimizer state per parameter, groups, data sizes."""

    weights: dict[str, tuple[tuple[int, ...], torch.dtype]]
    state: dict[int, dict[str, tuple[tuple[int, ...], torch.dtype] | type | None]]  # tensor (shape, dtype) or scalar type
    groups: list[dict[str, Any]]
    n_train: int
    steps_per_epoch: int
    device: str

    def weight_bytes(self) -> int:
        return sum(math.prod(s) * torch.empty(0, dtype=d).element_size() for s, d in self.weights.values())

    def state_bytes(self) -> int:
        return sum(math.prod(v[0]) * torch.empty(0, dtype=v[1]).element_size()
                   for entries in self.state.values() for v in entries.values() if isinstance(v, tuple))


def reference(spec: SessionSpec) -> Reference:
    """Build the spec's network and optimizer aside (the global RNG untouched) and describe their state."""
    info = check_spec(spec)
    with torch.random.fork_rng(devices=[]):
        model = GraphModule(info, BuildContext(generator=torch.Generator()))
    weights = {k: (tuple(v.shape), v.dtype) for k, v in model.state_dict().items()}
    params, mults = model.trainable(spec.model)
    opt = make_optimizer(spec.optimizer, params, mults)
    for p in params:
        p.grad = torch.zeros_like(p)
    opt.step()  # one step, so every state entry the optimizer keeps exists
    sd = opt.state_dict()
    state = {pid: {k: (tuple(v.shape), v.dtype) if isinstance(v, torch.Tensor) else (None if v is None else type(v))
                   for k, v in entries.items()} for pid, entries in sd["state"].items()}
    n_train = len(make_dataset(spec.dataset).y_train)
    return Reference(weights, state, sd["param_groups"], n_train, math.ceil(n_train / spec.training.batch_size),
                     spec.training.device)


def check_tensors(name: str, member: str, tensors: dict[str, torch.Tensor],
                  expected: dict[str, tuple[tuple[int, ...], torch.dtype]]) -> None:
    """The member holds exactly the expected tensors, each of the expected shape and dtype. Values may be
    non-finite: a run's own state can overflow (Adam's second moment, a batch norm's variance) and training
    then reports the divergence; nothing crashes."""
    missing, extra = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
    if missing or extra:
        what = f"lacks {missing[0]}" if missing else f"has {extra[0]}, which this network does not"
        raise SessionFileError(name, f"member {member} does not fit the network: it {what}")
    for key, t in sorted(tensors.items()):  # sorted: the same file gives the same message
        shape, dtype = expected[key]
        if tuple(t.shape) != shape or t.dtype != dtype:
            raise SessionFileError(name, f"member {member}: {key} is {t.dtype} {tuple(t.shape)}, the network "
                                         f"needs {dtype} {shape}")


def check_optimizer(name: str, ref: Reference, state: dict[int, dict[str, Any]]) -> None:
    """Each saved entry is for a parameter of this network and holds what this optimizer keeps for it."""
    for pid, entries in sorted(state.items()):  # sorted: the same file gives the same message
        if pid not in ref.state:
            raise SessionFileError(name, f"optimizer state names parameter {pid}; the network has {len(ref.state)}")
        want = ref.state[pid]
        if set(entries) != set(want):
            raise SessionFileError(name, f"optimizer state for parameter {pid} holds {sorted(entries)}, but the "
                                         f"spec's optimizer keeps {sorted(want)}")
        for key, value in entries.items():
            spec = want[key]
            where = f"optimizer state {pid}.{key}"
            if isinstance(spec, tuple):
                if not isinstance(value, torch.Tensor) or tuple(value.shape) != spec[0] or value.dtype != spec[1]:
                    got = f"{value.dtype} {tuple(value.shape)}" if isinstance(value, torch.Tensor) else type(value).__name__
                    raise SessionFileError(name, f"{where} is {got}, the optimizer needs {spec[1]} {spec[0]}")
            elif spec is None:
                if value is not None:
                    raise SessionFileError(name, f"{where} must be empty (null)")
            elif type(value) is not spec or (isinstance(value, float) and not math.isfinite(value)):
                raise SessionFileError(name, f"{where} must be a finite {spec.__name__}, got {value!r}")


def check_rng(name: str, ref: Reference, rng: dict[str, torch.Tensor]) -> None:
    """Generator states a generator accepts, and the epoch's order a permutation of the training set."""
    extra = sorted(set(rng) - {"shuffle", "dropout", "perm"})
    if extra or not {"shuffle", "dropout"} <= set(rng):
        raise SessionFileError(name, "member rng.safetensors must hold shuffle, dropout and (optionally) perm")
    # The shuffle generator is always a CPU one; the dropout generator lives on the training device.
    for key in ("shuffle", "dropout") if ref.device == "cpu" else ("shuffle",):
        t = rng[key]
        if t.dtype != RNG_STATE.dtype or t.shape != RNG_STATE.shape:
            raise SessionFileError(name, f"member rng.safetensors: {key} is not a generator state")
        try:
            torch.Generator().set_state(t)
        except (RuntimeError, ValueError) as exc:
            raise SessionFileError(name, f"member rng.safetensors: {key} is not a generator state ({exc})") from None
    perm = rng.get("perm")
    if perm is not None and (perm.dtype != torch.int64 or perm.shape != (ref.n_train,)
                             or not torch.equal(torch.sort(perm).values, torch.arange(ref.n_train))):
        raise SessionFileError(name, f"member rng.safetensors: perm is not an order of the {ref.n_train} "
                                     "training samples")
