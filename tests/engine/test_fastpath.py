"""The fast paths give exactly what torch's plain calls give, and step aside whenever torch is being watched."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn.modules import module as torch_module
from torch.optim import optimizer as torch_optimizer

from engine import graph, optimizers
from engine.graph import GraphModule
from engine.optimizers import FUSED, OPTIMIZERS, make_optimizer
from engine.presets import load_preset
from engine.train import fastpath
from engine.train.fastpath import FiniteCheck, backward, plain_step, step_function
from engine.train.trainer import Trainer


def small_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2))


def state_tensors(opt: torch.optim.Optimizer) -> list[tuple[str, torch.Tensor]]:
    return [(f"{i}.{k}", v) for i, s in opt.state_dict()["state"].items() for k, v in s.items()
            if isinstance(v, torch.Tensor)]


@pytest.mark.parametrize("kind", list(OPTIMIZERS))
def test_a_fused_update_follows_torchs_default_rule(kind, monkeypatch):
    """Where torch has a fused kernel the engine takes it, and 200 steps of it land where torch's default
    update does, up to float rounding; the others keep the default."""
    fused_model = small_model()
    default_model = copy.deepcopy(fused_model)
    spec = OPTIMIZERS[kind].spec()
    fused_opt = make_optimizer(spec, list(fused_model.parameters()))
    assert bool(fused_opt.defaults.get("fused")) == (kind in FUSED)
    monkeypatch.setattr(optimizers, "FUSED", frozenset())
    default_opt = make_optimizer(spec, list(default_model.parameters()))
    assert not default_opt.defaults.get("fused")
    g = torch.Generator().manual_seed(1)
    for _ in range(200):
        x, t = torch.randn(8, 3, generator=g), torch.randn(8, 2, generator=g)
        for model, opt in ((fused_model, fused_opt), (default_model, default_opt)):
            opt.zero_grad()
            nn.functional.mse_loss(model(x), t).backward()
            opt.step()
    moved = 0.0
    for a, b, c in zip(fused_model.parameters(), default_model.parameters(), small_model().parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
        moved = max(moved, (b - c).abs().max().item())
    assert moved > 1e-2  # the weights did move: the agreement is not two idle optimizers


@pytest.mark.parametrize("kind", list(OPTIMIZERS))
def test_every_optimizer_steps_bit_identically(kind):
    fast_model = small_model()
    plain_model = copy.deepcopy(fast_model)
    spec = OPTIMIZERS[kind].spec()
    fast_opt = make_optimizer(spec, list(fast_model.parameters()))
    plain_opt = make_optimizer(spec, list(plain_model.parameters()))
    step = step_function(fast_opt)
    assert step is not plain_step  # the fast path is taken where nothing watches
    g = torch.Generator().manual_seed(1)
    for _ in range(200):
        x, t = torch.randn(8, 3, generator=g), torch.randn(8, 2, generator=g)
        for model, opt in ((fast_model, fast_opt), (plain_model, plain_opt)):
            for p in model.parameters():
                p.grad = None
            loss = nn.functional.mse_loss(model(x), t)
            if opt is fast_opt:
                backward(loss)
                step(opt)
            else:
                loss.backward()
                opt.step()
    for (name, a), b in zip(fast_model.named_parameters(), plain_model.parameters(), strict=True):
        assert torch.equal(a, b), name
        assert torch.equal(a.grad, b.grad), f"{name}.grad"
    fast_state, plain_state = state_tensors(fast_opt), state_tensors(plain_opt)
    assert [k for k, _ in fast_state] == [k for k, _ in plain_state]
    for (name, a), (_, b) in zip(fast_state, plain_state, strict=True):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("where", ["optimizer pre", "optimizer post", "global pre", "global post"])
def test_a_step_hook_gets_the_plain_step_and_runs(where):
    model = small_model()
    opt = make_optimizer(OPTIMIZERS["adam"].spec(), list(model.parameters()))
    calls: list[str] = []
    hook = lambda *args: calls.append(where)
    register = {"optimizer pre": opt.register_step_pre_hook, "optimizer post": opt.register_step_post_hook,
                "global pre": torch_optimizer.register_optimizer_step_pre_hook,
                "global post": torch_optimizer.register_optimizer_step_post_hook}[where]
    handle = register(hook)
    try:
        step = step_function(opt)
        assert step is plain_step
        nn.functional.mse_loss(model(torch.ones(2, 3)), torch.zeros(2, 2)).backward()
        step(opt)
        assert calls == [where]
    finally:
        handle.remove()
    assert step_function(opt) is not plain_step  # hooks gone, the fast path is back


GRADS = {
    "finite": [torch.randn(4, 3), torch.randn(3), torch.zeros(2)],
    "inf": [torch.randn(4, 3), torch.tensor([0.0, float("inf"), 1.0]), torch.zeros(2)],
    "-inf": [torch.tensor([[float("-inf")]]), torch.randn(3)],
    "nan": [torch.randn(4, 3), torch.randn(3), torch.tensor([0.0, float("nan")])],
    "empty": [],
}


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "per-tensor"])
@pytest.mark.parametrize("case", list(GRADS))
def test_finite_check_agrees_with_isfinite(case, fused, monkeypatch):
    if not fused:
        monkeypatch.setattr(fastpath, "_FUSED_CHECK", None)
    check = FiniteCheck(torch.device("cpu"))
    grads = [g.clone() for g in GRADS[case]]
    expected = all(bool(g.isfinite().all()) for g in grads)
    assert check(grads) == expected
    if expected:
        assert all(torch.equal(a, b) for a, b in zip(grads, GRADS[case], strict=True))  # left as they were
    # A find does not stick: the next check of finite gradients says finite.
    assert check(GRADS["finite"]) is True
    assert check(grads) == expected


def test_backward_falls_back_and_refuses_as_torch_does(monkeypatch):
    w = torch.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="only for scalar outputs"):
        backward(w * 2)  # a non-scalar needs an explicit gradient, as with loss.backward()
    monkeypatch.setattr(fastpath, "_ENGINE_BACKWARD", None)
    backward((w * w).sum())
    assert torch.equal(w.grad, torch.full((3,), 2.0))


def test_a_chain_with_a_forward_hook_calls_its_layers():
    tr = Trainer(load_preset("tfp-circle"), probes=False)
    model: GraphModule = tr.model
    assert model._chain is not None
    x = tr.x_train[:10]
    assert graph._direct_calls(model._chain)
    direct = model(x)
    seen: list[str] = []
    handles = [model._chain[0].register_forward_hook(lambda m, i, o: seen.append("layer")),
               torch_module.register_module_forward_hook(lambda m, i, o: seen.append("global"))]
    try:
        assert not graph._direct_calls(model._chain)
        assert torch.equal(model(x), direct)
    finally:
        for h in handles:
            h.remove()
    assert seen.count("layer") == 1 and seen.count("global") == len(model._chain) + 1  # the model and its layers


def test_training_with_and_without_the_fast_paths_is_bit_identical(monkeypatch):
    fast = Trainer(load_preset("spiral"), probes=False)
    list(fast.run(epochs=3))
    monkeypatch.setattr(fastpath, "_ENGINE_BACKWARD", None)
    monkeypatch.setattr(fastpath, "_FUSED_CHECK", None)
    handles = [torch_optimizer.register_optimizer_step_pre_hook(lambda *args: None),
               torch_module.register_module_forward_pre_hook(lambda *args: None)]
    try:
        plain = Trainer(load_preset("spiral"), probes=False)
        list(plain.run(epochs=3))
        assert plain._optimizer_step is plain_step
    finally:
        for h in handles:
            h.remove()
    assert fast.history["step_loss"] == plain.history["step_loss"]
    for (name, a), b in zip(fast.model.state_dict().items(), plain.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
