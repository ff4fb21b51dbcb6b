"""Benchmark: the engine's epochs/s against a bare torch loop on the same model, data and batches.

Run: python tests/bench/bench_engine.py [--seconds 3] [--rounds 5]
Prints a table of epochs per second and the ratio engine / bare (target ≥ 0.95 with probes on).
Rounds alternate between the two loops and the median is reported: the machines are shared and noisy.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from engine.presets import load_preset, mlp
from engine.spec import SessionSpec
from engine.train.trainer import Trainer


def cases() -> dict[str, SessionSpec]:
    circle = load_preset("tfp-circle")
    spiral = load_preset("spiral")
    dataset = spiral.dataset.model_copy(update={"features": ("x1", "x2")})
    model = mlp([8] * 6, "tanh", "tanh", init="uniform")
    spiral86 = spiral.model_copy(update={
        "name": "spiral 8×6", "dataset": dataset, "model": type(spiral.model).model_validate(model),
        "optimizer": circle.optimizer, "loss": "mse",
    })
    return {"tfp-circle": circle, "spiral 8x6": spiral86}


def bare_loop(spec: SessionSpec, epochs: int) -> float:
    """A plain torch loop: nn.Sequential, torch's SGD defaults, the trainer's data and shuffle order."""
    ref = Trainer(spec, probes=False)  # only for its data, initial weights and shuffle generator
    layers: list[nn.Module] = []
    for n in ref.info.order:
        m = ref.model.layers[n]
        if ref.info.nodes[n].op == "dense":
            lin = nn.Linear(m.in_features, m.out_features)
            lin.load_state_dict({"weight": m.weight.detach().clone(), "bias": m.bias.detach().clone()})
            layers.append(lin)
            if m.activation == "tanh":
                layers.append(nn.Tanh())
    model = nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=spec.optimizer.lr)
    x, t = ref.x_train, ref.t_train
    bs, n = spec.training.batch_size, ref.n_train
    g = torch.Generator().manual_seed(spec.training.seed)
    losses = []
    start = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g)
        for i in range(0, n, bs):
            idx = perm[i:i + bs]
            opt.zero_grad()
            loss = F.mse_loss(torch.tanh(model(x[idx])), t[idx])
            loss.backward()
            opt.step()
            losses.append(loss.item())  # any loop that shows a loss curve reads it
    return epochs / (time.perf_counter() - start)


def engine_loop(spec: SessionSpec, epochs: int, probes: bool) -> tuple[float, int, float]:
    """Epochs/s, probes run, and the share of wall time the probes took."""
    tr = Trainer(spec, probes=probes)
    start = time.perf_counter()
    for _ in tr.run(epochs=epochs):
        pass
    wall = time.perf_counter() - start
    assert len(tr.history["step_loss"]) == tr.step  # every step recorded
    return epochs / wall, tr._probe_count, tr._probe_seconds / wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="target seconds per measurement")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)  # one training thread: two stalled in some runs on these 2-core machines
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread, {args.rounds} rounds, median epochs/s")
    print(f"{'case':<12} {'bare':>9} {'engine':>9} {'ratio':>6} {'+probes':>9} {'ratio':>6} {'probes':>7} {'probe time':>10}")
    for name, spec in cases().items():
        calib = bare_loop(spec, 5)
        epochs = max(5, int(calib * args.seconds))
        bare, plain, probed, counts, shares = [], [], [], [], []
        for _ in range(args.rounds):
            bare.append(bare_loop(spec, epochs))
            plain.append(engine_loop(spec, epochs, probes=False)[0])
            rate, count, share = engine_loop(spec, epochs, probes=True)
            probed.append(rate)
            counts.append(count)
            shares.append(share)
        b, e, p = statistics.median(bare), statistics.median(plain), statistics.median(probed)
        print(f"{name:<12} {b:9.1f} {e:9.1f} {e / b:6.3f} {p:9.1f} {p / b:6.3f} {statistics.median(counts):7.0f} "
              f"{statistics.median(shares):10.1%}")
    print("target: engine with probes ≥ 0.95× bare")


if __name__ == "__main__":
    main()
