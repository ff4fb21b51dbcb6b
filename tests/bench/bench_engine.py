"""Benchmark: the engine's epochs/s against a bare torch loop on the same model, data and batches.

Run: python tests/bench/bench_engine.py [--seconds 1] [--rounds 11] [--fastpath]
Prints epochs per second and the ratios engine / bare, without and with probes (targets: ≥ 0.95 with probes
on for the 2-D toys and digits-cnn, headless for reverse-transformer), and the share of wall time the probes
took. The bare loop runs twice: with torch's default optimizer update, and with its fused one (the engine's).
``--fastpath`` also times the engine with torch's plain ``loss.backward()``, ``optimizer.step()`` and a per-tensor finite check, and prints what the fast path buys.
The machines are shared and noisy: rates are per CPU second of this process (other processes' load stretches
wall time, not that), each round runs every loop once, in a rotating order, and the figures are medians over
rounds of the rates and of each round's ratios (a slow spell hits both sides of a ratio).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from engine.optimizers import OPTIMIZERS
from engine.presets import load_preset, mlp
from engine.schedules import Constant
from engine.spec import SessionSpec
from engine.train import fastpath
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
    # reverse-transformer as the bare loop runs it: Adam at the preset's peak rate, constant, no weight decay
    # (the preset's AdamW, decoupled decay and warm-up + cosine schedule are the lesson, not the maths timed)
    reverse = load_preset("reverse-transformer")
    reverse = reverse.model_copy(update={
        "optimizer": OPTIMIZERS["adam"].spec(lr=reverse.optimizer.lr), "schedule": Constant(),
        "regularization": type(reverse.regularization)(),
    })
    return {"tfp-circle": circle, "spiral 8x6": spiral86, "digits-cnn": load_preset("digits-cnn"),
            "reverse-transformer": reverse}


class Tokens(nn.Embedding):
    """Token ids arrive as float32 (the data's dtype) and index the table as integers."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.long())


class AddTable(nn.Module):
    """x + a fixed position table (sinusoidal positions)."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("table", table.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.table[: x.shape[1]]


class PlainBlock(nn.Module):
    """A pre-norm transformer encoder block as plain torch writes it: x + attention(LN(x)), then
    x + W2 gelu(W1 LN(x)), attention through torch's fused ``scaled_dot_product_attention``. (torch's
    ``nn.TransformerEncoderLayer`` computes the same and took ~15 % longer a step here: this is the faster
    reference.)"""

    def __init__(self, ref: nn.Module) -> None:
        super().__init__()
        a = ref.attention
        self.heads = a.heads
        self.q, self.k, self.v, self.out = (nn.Linear(m.in_features, m.out_features) for m in (a.q, a.k, a.v, a.out))
        self.norm1, self.norm2 = nn.LayerNorm(ref.norm1.normalized_shape), nn.LayerNorm(ref.norm2.normalized_shape)
        self.linear1 = nn.Linear(ref.linear1.in_features, ref.linear1.out_features)
        self.linear2 = nn.Linear(ref.linear2.in_features, ref.linear2.out_features)
        state = {k.removeprefix("attention."): v.detach().clone() for k, v in ref.state_dict().items()}
        self.load_state_dict(state)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        h = self.norm1(x)
        q, k, v = (m(h).view(b, t, self.heads, d // self.heads).transpose(1, 2) for m in (self.q, self.k, self.v))
        x = x + self.out(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, t, d))
        return x + self.linear2(F.gelu(self.linear1(self.norm2(x))))


def _plain_copy(ref: Trainer) -> nn.Module:
    """The trainer's chain of layers rebuilt from torch's own modules, with the same initial weights."""
    layers: list[nn.Module] = []
    acts = {"tanh": nn.Tanh, "relu": nn.ReLU}
    for n in ref.info.order:
        m, op = ref.model.layers[n], ref.info.nodes[n].op
        if op == "dense":
            copy: nn.Module = nn.Linear(m.in_features, m.out_features)
        elif op == "conv2d":
            copy = nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding)
        elif op == "max_pool":
            layers.append(nn.MaxPool2d(m.kernel_size, m.stride, m.padding))
            continue
        elif op == "flatten":
            layers.append(nn.Flatten())
            continue
        elif op == "embedding":
            copy = Tokens(m.num_embeddings, m.embedding_dim)
            copy.load_state_dict(m.state_dict())
            layers.append(copy)
            continue
        elif op == "positional":
            assert m.kind == "sinusoidal", m.kind
            layers.append(AddTable(m.table))
            continue
        elif op == "transformer_block":
            assert m.pre and m.act is F.gelu and not m.attention.causal
            layers.append(PlainBlock(m))
            continue
        elif op == "layer_norm":
            copy = nn.LayerNorm(m.normalized_shape, eps=m.eps)
            copy.load_state_dict(m.state_dict())
            layers.append(copy)
            continue
        else:
            continue  # input and output
        copy.load_state_dict({"weight": m.weight.detach().clone(), "bias": m.bias.detach().clone()})
        layers.append(copy)
        activation = getattr(ref.info.nodes[n].params, "activation", "linear")  # a conv's too (it was missed)
        if activation in acts:
            layers.append(acts[activation]())
    plain = nn.Sequential(*layers)
    with torch.no_grad():  # the same maths: the copy computes what the engine's network does
        x = ref.x_train[:64]
        torch.testing.assert_close(plain(x), ref.model(x), atol=1e-5, rtol=1e-5)
    return plain


def bare_loop(spec: SessionSpec, epochs: int, fused: bool = False) -> float:
    """A plain torch loop: torch's modules and optimizer (SGD or Adam, defaults otherwise, or with ``fused``
    its fused update, as the engine takes), the loss as plain torch writes it, the trainer's data and shuffle
    order."""
    ref = Trainer(spec, probes=False)  # only for its data, initial weights and shuffle generator
    model = _plain_copy(ref)
    kind = torch.optim.Adam if spec.optimizer.kind == "adam" else torch.optim.SGD
    opt = kind(model.parameters(), lr=spec.optimizer.lr, **({"fused": True} if fused else {}))
    x, t = ref.x_train, ref.t_train
    cross_entropy = spec.loss == "cross_entropy"
    bs, n = spec.training.batch_size, ref.n_train
    g = torch.Generator().manual_seed(spec.training.seed)
    losses = []
    start = time.process_time()
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g)
        for i in range(0, n, bs):
            idx = perm[i:i + bs]
            opt.zero_grad()
            z = model(x[idx])
            if z.dim() == 3:  # one answer per token: the mean over every token of the batch
                loss = F.cross_entropy(z.reshape(-1, z.shape[-1]), t[idx].reshape(-1))
            elif cross_entropy:
                loss = F.cross_entropy(z, t[idx])
            else:
                loss = F.mse_loss(torch.tanh(z), t[idx])
            loss.backward()
            opt.step()
            losses.append(loss.item())  # any loop that shows a loss curve reads it
    return epochs / (time.process_time() - start)


def engine_loop(spec: SessionSpec, epochs: int, probes: bool, plain: bool = False) -> tuple[float, int, float]:
    """Epochs/s, probe rounds and the probes' share of wall time; ``plain`` turns the fast path off."""
    tr = Trainer(spec, probes=probes)
    saved = fastpath._ENGINE_BACKWARD, fastpath._FUSED_CHECK
    if plain:
        _ = tr.optimizer  # built now (it is lazy), so that its fast step can be replaced
        tr._optimizer_step = fastpath.plain_step
        fastpath._ENGINE_BACKWARD = fastpath._FUSED_CHECK = None
    try:
        start, cpu = time.perf_counter(), time.process_time()
        for _ in tr.run(epochs=epochs):
            pass
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        fastpath._ENGINE_BACKWARD, fastpath._FUSED_CHECK = saved
    assert len(tr.history["step_loss"]) == tr.step  # every step recorded
    return epochs / cpu, tr.prober.rounds, tr.prober.seconds / wall


def measure(spec: SessionSpec, seconds: float, rounds: int, fast: bool) -> dict[str, list[float]]:
    """Per round: every loop's epochs/s, run in a rotating order, plus the probes' rounds and time share."""
    loops: dict[str, Callable[[int], tuple[float, int, float]]] = {
        "bare": lambda e: (bare_loop(spec, e), 0, 0.0),
        "fused": lambda e: (bare_loop(spec, e, fused=True), 0, 0.0),
        "engine": lambda e: engine_loop(spec, e, probes=False),
        "probes": lambda e: engine_loop(spec, e, probes=True),
    }
    if fast:
        loops["plain"] = lambda e: engine_loop(spec, e, probes=False, plain=True)
    for run in loops.values():  # warm-up: first calls pay for lazy imports and allocator growth
        run(3)
    epochs = max(5, round(bare_loop(spec, 10) * seconds))
    names = list(loops)
    out: dict[str, list[float]] = {k: [] for k in [*names, "rounds", "share"]}
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            rate, count, share = loops[name](epochs)
            out[name].append(rate)
            if name == "probes":
                out["rounds"].append(count)
                out["share"].append(share)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.0, help="target seconds per measurement")
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--fastpath", action="store_true", help="also time the engine without the fast path")
    ap.add_argument("--case", choices=list(cases()), nargs="*", default=list(cases()), help="which cases to run")
    args = ap.parse_args()
    torch.set_num_threads(1)  # one training thread: two stalled in some runs on these 2-core machines
    med = statistics.median
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread, {args.rounds} rounds, medians")
    head = (f"{'case':<19} {'bare ep/s':>9} {'fused':>6} {'engine':>7} {'/bare':>6} {'/fused':>6} {'+probes':>8} "
            f"{'/bare':>6} {'/fused':>6} {'probe rounds':>12} {'probe time':>10}")
    print(head + (f" {'plain':>8} {'fast path buys':>14}" if args.fastpath else ""))
    for name, spec in cases().items():
        if name not in args.case:
            continue
        m = measure(spec, args.seconds, args.rounds, args.fastpath)
        ratio = {(k, ref): med(a / b for a, b in zip(m[k], m[ref], strict=True))
                 for k in ("engine", "probes") for ref in ("bare", "fused")}
        line = (f"{name:<19} {med(m['bare']):9.2f} {med(m['fused']):6.2f} {med(m['engine']):7.2f} "
                f"{ratio['engine', 'bare']:6.3f} {ratio['engine', 'fused']:6.3f} {med(m['probes']):8.2f} "
                f"{ratio['probes', 'bare']:6.3f} {ratio['probes', 'fused']:6.3f} {med(m['rounds']):12.0f} "
                f"{med(m['share']):10.1%}")
        if args.fastpath:
            gain = med(a / b - 1 for a, b in zip(m["engine"], m["plain"], strict=True))
            line += f" {med(m['plain']):8.2f} {gain:14.1%}"
        print(line)
    print("bare: torch's default optimizer update (a loop over the tensors on CPU); fused: its fused kernel, "
          "which the engine takes")
    print("targets: the 2-D toys and digits-cnn with probes ≥ 0.95× bare; reverse-transformer headless (the engine "
          "column, as `python -m engine train` runs) ≥ 0.95× bare")


if __name__ == "__main__":
    main()
