"""The trainer: runs minibatch steps, applies commands between steps, yields snapshots. What it records
(history), saves (checkpoint), probes (probing) and how it steps fast (fastpath) live beside it."""
from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch

from ..augment import augment
from ..check import check_spec
from ..datasets import family_of, make_dataset
from ..decoding import feed, has_decoder
from ..errors import EngineError, SessionFileError, SpecError
from ..graph import GraphModule, same_architecture
from ..head import Head
from ..ops import BuildContext
from ..optimizers import make_optimizer, set_lr, update_hyper
from ..pretrained import apply_pretrained
from ..probes import ProbeContext, ProbeRequest, ProbeResult, applicable
from ..schedules import lr_factor
from ..spec import ModelSpec, SessionSpec
from .checkpoint import Checkpoint, clone_state, cpu_copy
from .evaluation import Evaluation
from .fastpath import FiniteCheck, backward, step_function
from .history import EPOCH_KEYS, History
from .probing import ProbeScheduler
from .regularizers import EarlyStopper, penalty
from .snapshot import Configure, EditWeight, Snapshot

_run_ids = iter(range(1, 1 << 62))


class Trainer(Evaluation):
    """Owns one run: model, optimizer, data, history. Drive it with ``run()``; ``post()`` is thread-safe."""

    def __init__(self, spec: SessionSpec, *, probes: bool | Iterable[str] = True,
                 checkpoint: Checkpoint | None = None) -> None:
        """``probes``: True runs every probe that applies, False none, or the names to run (see
        ``want_probes``, which changes them later from any thread)."""
        self.info = check_spec(spec)
        if spec.training.device == "cuda" and not torch.cuda.is_available():
            raise SpecError("training.device", "CUDA is not available on this machine; use cpu")
        self.spec = spec
        self.device = torch.device(spec.training.device)
        self.data = make_dataset(spec.dataset)
        self.head = Head.of(spec)
        self.n_train = len(self.data.y_train)
        self.steps_per_epoch = math.ceil(self.n_train / spec.training.batch_size)
        dev = self.device
        self.x_train = torch.from_numpy(self.data.x_train).to(dev)
        self.x_test = torch.from_numpy(self.data.x_test).to(dev)
        self.t_train = self._targets("train")
        self.t_test = self._targets("test")
        self.y_train = torch.from_numpy(self.data.y_train).to(dev)
        self.y_test = torch.from_numpy(self.data.y_test).to(dev)
        # Evaluation scores every set in one pass: train, validation (image sets split one off), test.
        self.n_val = 0 if self.data.y_val is None else len(self.data.y_val)
        if self.n_val:
            self.x_val = torch.from_numpy(self.data.x_val).to(dev)
            self.t_val = self._targets("val")
            y_val = torch.from_numpy(self.data.y_val).to(dev)
        parts = [(self.x_train, self.y_train), *([(self.x_val, y_val)] if self.n_val else []), (self.x_test, self.y_test)]
        self.x_all = torch.cat([x for x, _ in parts])
        self.y_all = torch.cat([y for _, y in parts])
        # Sequence sets hold out longer inputs than the network trains on, scored apart each epoch.
        self.x_long = None if self.data.x_long is None else torch.from_numpy(self.data.x_long).to(dev)
        self.y_long = None if self.data.y_long is None else torch.from_numpy(self.data.y_long).to(dev)
        if self.y_long is not None:
            self.t_long = self.head.targets(self.data.y_long, dev)
        # An encoder–decoder reads the target so far behind the start token (teacher forcing).
        self.decoder = has_decoder(self.info.nodes.values())
        self.bos = int(self.data.meta.get("bos", 0))
        # Image sets report an epoch's training loss and accuracy as the running mean over its own steps
        # (DataFamily.running_train_metrics); the per-epoch pass then scores only validation and test.
        self.running = family_of(spec.dataset).running_train_metrics
        self.applicable_probes = applicable(self.info, spec.dataset)
        self._wanted = set(self.applicable_probes) if probes is True else set(probes or ())
        self._commands: queue.SimpleQueue[Configure | EditWeight] = queue.SimpleQueue()
        self._lock = threading.Lock()  # held during a step; checkpoints wait for a step boundary
        self.reset()
        if checkpoint is not None:
            self._restore(checkpoint)

    # --- set-up ----------------------------------------------------------------------------------

    def _targets(self, split: str) -> torch.Tensor:
        """What the loss compares a split's outputs with: the labels as the head encodes them, or the data's own
        targets where it has them (a reconstruction's clean pictures)."""
        target = getattr(self.data, f"target_{split}")
        if target is not None:
            return torch.from_numpy(target).to(self.device)
        return self.head.targets(getattr(self.data, f"y_{split}"), self.device)

    def reset(self) -> None:
        """Start over from the same initial weights (the seed decides them)."""
        seed = self.spec.training.seed
        self.dropout_rng = torch.Generator(device=self.device).manual_seed(seed + 1)
        self.shuffle_rng = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]):  # seeded init that leaves the global RNG alone
            torch.manual_seed(seed)
            self.model = GraphModule(self.info, BuildContext(generator=self.dropout_rng))
        self.pretrained = apply_pretrained(self.model, self.spec.model.nodes)  # blocks that start trained
        self.model.to(self.device)
        self.params, self._lr_mults = self.model.trainable(self.spec.model)
        self.model.train()
        self.decay_weights = [w for w in self.model.penalized_parameters() if w.requires_grad]  # not frozen ones
        self._finite = FiniteCheck(self.device)
        self._optimizer: torch.optim.Optimizer | None = None  # built on first use (see `optimizer`)
        self.run_id = next(_run_ids)
        self.step = 0
        self.epoch = 0
        self.batch_index = 0
        self.perm: torch.Tensor | None = None
        self.elapsed = 0.0
        self.status = "ready"
        self.message = ""
        self.history = History()
        self.early = EarlyStopper()
        self.best_weights: dict[str, torch.Tensor] | None = None
        self._epoch_loss = 0.0  # running train metrics: Σ step loss × batch size this epoch
        # and a VAE's Σ data term × batch size, Σ KL × batch size, on the device like the count: no sync per step
        self._epoch_parts = torch.zeros(2, dtype=torch.float64, device=self.device)
        self._epoch_correct = torch.zeros((), dtype=torch.int64, device=self.device)  # no sync per step
        self._lr = -1.0
        self._set_lr()
        ctx = ProbeContext(self.model, self.head, self.data, self.spec.dataset, self.x_train, self.t_train,
                           self.spec.training)
        self.prober = ProbeScheduler(ctx, self.applicable_probes, self.spec.training.probe_every)
        self.prober.want(self._wanted)

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        """The torch optimizer, built on first use: torch's first optimizer imports torch._dynamo (~2 s), which
        an app can then do in its training thread instead of before its window appears."""
        if self._optimizer is None:
            self._optimizer = make_optimizer(self.spec.optimizer, self.params, self._lr_mults)
            self._optimizer_step = step_function(self._optimizer)
            set_lr(self._optimizer, self._lr)
        return self._optimizer

    def _set_lr(self) -> None:
        lr = self.spec.optimizer.lr * lr_factor(self.spec.schedule, self.step, self.steps_per_epoch)
        if lr != self._lr:
            if self._optimizer is not None:
                set_lr(self._optimizer, lr)
            self._lr = lr

    @property
    def lr(self) -> float:
        return self._lr

    # --- commands --------------------------------------------------------------------------------

    def want_probes(self, names: Iterable[str]) -> None:
        """Run these probes from now on (those that do not apply to this run are skipped); any thread."""
        self._wanted = set(names)
        self.prober.want(self._wanted)

    def set_probe_request(self, name: str, request: ProbeRequest) -> None:
        """Ask probe ``name`` about something else from now on (a sample, a method, a class); any thread."""
        self.prober.set_request(name, request)

    @property
    def probes(self) -> dict[str, ProbeResult]:
        """The latest result of each wanted probe."""
        return self.prober.results

    def post(self, command: Configure | EditWeight) -> None:
        """Queue a live change; it takes effect at the next step boundary (safe from any thread). A weight edit
        is checked now (EngineError naming what is wrong), so that a bad one never reaches the training thread."""
        if isinstance(command, EditWeight):
            tensors = dict(self.model.named_parameters())
            if command.param not in tensors:
                raise EngineError("weight edit", f"no parameter {command.param!r} in this network")
            shape = tuple(tensors[command.param].shape)
            if len(command.index) != len(shape) or not all(0 <= i < n for i, n in zip(command.index, shape,
                                                                                       strict=True)):
                raise EngineError("weight edit", f"index {command.index} is outside {command.param} of shape {shape}")
            limit = torch.finfo(tensors[command.param].dtype).max
            if not math.isfinite(command.value) or abs(command.value) > limit:
                raise EngineError("weight edit", f"a weight must be a finite number within ±{limit:.3g}, "
                                                 f"not {command.value}")
        self._commands.put(command)

    def apply_commands(self) -> None:
        """Apply queued commands now (between jobs: nothing else is training)."""
        with self._lock:
            self._drain()

    def configure(self, command: Configure) -> None:
        """Apply a live change now (call between steps, from the training thread)."""
        updates: dict[str, Any] = {}
        if command.optimizer is not None:
            updates["optimizer"] = command.optimizer
        if command.schedule is not None:
            updates["schedule"] = command.schedule
        if command.regularization is not None:
            updates["regularization"] = command.regularization
        old = self.spec.optimizer
        self.spec = self.spec.model_copy(update=updates)
        new = self.spec.optimizer
        if new.kind != old.kind:
            self._optimizer = None  # a new kind starts with fresh state
            self.message = f"optimizer changed to {new.kind}; its state starts fresh"
        self._lr = -1.0
        self._set_lr()
        update_hyper(self.optimizer, new, self._lr)

    def _drain(self) -> None:
        """Apply queued commands (caller holds the lock: a step never sees half a change)."""
        while True:
            try:
                cmd = self._commands.get_nowait()
            except queue.Empty:
                return
            if isinstance(cmd, EditWeight):
                with torch.no_grad():
                    dict(self.model.named_parameters())[cmd.param][cmd.index] = cmd.value
            else:
                self.configure(cmd)

    def set_layout(self, model: ModelSpec) -> None:
        """Take an editor's new block positions (the same architecture): saved with the session, no reset."""
        if not same_architecture(model, self.spec.model):
            raise ValueError("set_layout takes the same architecture; a new one needs a new Trainer")
        with self._lock:
            self.spec = self.spec.model_copy(update={"model": model})

    # --- training --------------------------------------------------------------------------------

    def train_step(self) -> bool:
        """One minibatch step. Returns False (and sets status) when training must stop."""
        with self._lock:
            return self._step()

    def _step(self) -> bool:
        spec = self.spec
        if self.batch_index == 0 or self.perm is None:
            self.perm = torch.randperm(self.n_train, generator=self.shuffle_rng).to(self.device)
        bs = spec.training.batch_size
        idx = self.perm[self.batch_index * bs:(self.batch_index + 1) * bs]
        if spec.schedule.kind != "constant":
            self._set_lr()
        x = self.x_train[idx]
        if x.dim() == 4 and spec.regularization.augment.active:
            x = augment(x, spec.regularization.augment, self.dropout_rng)
        z = self.model(x, self._teacher(x, self.y_train[idx]) if self.decoder else None)
        loss = self.head.loss(z, self.t_train[idx])
        kl = self.model.aux_loss() if self.model.aux_layers else None
        parts = None
        if kl is not None:
            parts = torch.stack((loss, kl)).detach()  # reconstruction (or data) term and KL, read once an epoch
            loss = loss + self.beta * kl  # a VAE's β·KL joins the loss it reports
        value = loss.item()
        if not math.isfinite(value):
            return self._diverged(f"the loss became {value}")
        if self.running:
            self._epoch_loss += value * len(idx)
            if parts is not None:
                self._epoch_parts += parts.double() * len(idx)
            if self.head.task in ("classification", "sequence"):  # a sequence's count is of tokens
                self._epoch_correct += self.head.correct(z.detach(), self.y_train[idx]).sum()
        reg = spec.regularization
        extra = penalty(self.decay_weights, reg.l1, reg.l2) if (reg.l1 or reg.l2) else None
        for p in self.params:
            p.grad = None  # what zero_grad(set_to_none=True) does, without its profiler scope
        backward(loss if extra is None else loss + extra)
        if reg.grad_clip is not None:
            norm = torch.nn.utils.clip_grad_norm_(self.params, reg.grad_clip)
            finite = math.isfinite(norm.item())
        else:
            finite = self._finite([p.grad for p in self.params if p.grad is not None])
        if not finite:
            return self._diverged("a gradient became non-finite")
        if reg.weight_decay:
            with torch.no_grad():
                torch._foreach_mul_(self.decay_weights, 1.0 - self._lr * reg.weight_decay)
        optimizer = self.optimizer
        self._optimizer_step(optimizer)
        self.history.record_step(value)
        self.step += 1
        self.batch_index += 1
        if self.batch_index >= self.steps_per_epoch:
            self.batch_index = 0
            self.epoch += 1
            return self._end_epoch()
        return True

    def _teacher(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """A decoder's input for a training batch: the target so far (teacher forcing), where
        ``training.teacher_forcing`` < 1 with that share of its tokens kept and the rest the network's own answer
        at that step, from a pass with the true ones (a one-pass form of scheduled sampling)."""
        ratio = self.spec.training.teacher_forcing
        if ratio >= 1.0:
            return feed(y, self.bos)
        with torch.no_grad():
            own = self.model(x, feed(y, self.bos)).argmax(-1)
        keep = torch.rand(y.shape, generator=self.dropout_rng, device=y.device) < ratio
        return feed(torch.where(keep, y, own), self.bos)

    def _diverged(self, why: str) -> bool:
        self.status = "diverged"
        self.message = (f"diverged at step {self.step + 1} (epoch {self.epoch + 1}): {why}; "
                        f"try a lower learning rate (now {self._lr:g})")
        return False

    def _end_epoch(self) -> bool:
        m = self._epoch_metrics()
        self.history.record_epoch(m)
        if not math.isfinite(m["train_loss"]):
            return self._diverged(f"the training loss became {m['train_loss']}")
        rule = self.spec.regularization.early_stopping
        if rule is None or (self.model.aux_layers and self.epoch < self.spec.regularization.beta_warmup):
            return True  # while β warms up a VAE's losses weigh its KL ever more: not comparable yet
        improved, stop = self.early.update(rule, m["val_loss" if self.n_val else "test_loss"], self.epoch)
        if improved and rule.restore_best:
            self.best_weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        if stop:
            self.status = "early_stopped"
            self.message = (f"stopped early at epoch {self.epoch}: {self.watched} loss has not improved for {rule.patience} "
                            f"epochs (best {self.early.best:.4g} at epoch {self.early.best_epoch})")
            if rule.restore_best and self.best_weights is not None:
                self.model.load_state_dict(self.best_weights)
                self.message += "; best weights restored"
            return False
        return True

    def run(self, *, steps: int | None = None, epochs: int | None = None, snapshot_every: float = 1 / 30,
            stop: threading.Event | None = None) -> Iterator[Snapshot]:
        """Train until `steps` more steps or `epochs` more epochs (forever if neither), stopping early on
        divergence or early stopping, or at the first step boundary after `stop` is set (from any thread).
        Yields a snapshot at most every `snapshot_every` seconds and at the end.
        Closing the generator stops at the step boundary it is at."""
        end_step = None if steps is None else self.step + steps
        end_epoch = None if epochs is None else self.epoch + epochs
        self.status, self.message = "running", ""
        if self.prober.missing(self.step):
            self.prober.run(self.step)
        last = time.perf_counter()
        t0 = last
        try:
            while True:
                if end_step is not None and self.step >= end_step:
                    break
                if end_epoch is not None and self.epoch >= end_epoch:
                    break
                if stop is not None and stop.is_set():
                    break
                with self._lock:
                    if not self._commands.empty():
                        self._drain()
                    ok = self._step()
                    if self.prober.due(self.step):
                        self.prober.run(self.step)
                    elif self.prober.urgent:
                        self.prober.run_urgent(self.step)
                if not ok:
                    break
                now = time.perf_counter()
                if now - last >= snapshot_every:
                    self.elapsed += now - t0
                    t0 = last = now
                    yield self.snapshot()
            if self.status == "running":
                self.status = "paused" if stop is not None and stop.is_set() else "finished"
            if self.prober.missing(self.step):
                with self._lock:
                    self.prober.run(self.step)
        finally:
            self.elapsed += time.perf_counter() - t0
        yield self.snapshot()

    def probe_now(self) -> dict[str, ProbeResult]:
        """Run every wanted probe on the current model (for views that open between runs)."""
        with self._lock:
            self.prober.run(self.step)
        return self.prober.results

    # --- outputs ---------------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """A snapshot with the history recorded since the previous one."""
        s0, steps, e0, epochs = self.history.delta()
        return Snapshot(self.run_id, self.step, self.epoch, self.status, self.message, self._lr, self.elapsed,
                        s0, steps, e0, epochs, dict(self.prober.results))

    def history_arrays(self) -> dict[str, np.ndarray]:
        return self.history.arrays()

    def checkpoint(self) -> Checkpoint:
        """A consistent copy of the whole state, taken between steps (safe from any thread). Queued commands
        are applied first: they would apply at this step boundary anyway, and the copy should hold them."""
        with self._lock:
            self._drain()
            return Checkpoint(
                spec=self.spec, step=self.step, epoch=self.epoch, batch_index=self.batch_index,
                elapsed=self.elapsed, status=self.status, message=self.message,
                weights=cpu_copy(self.model.state_dict()),
                optimizer=clone_state(self.optimizer.state_dict()),
                rng={"shuffle": self.shuffle_rng.get_state().clone(),
                     "dropout": self.dropout_rng.get_state().clone().cpu(),
                     **({"perm": self.perm.to("cpu", copy=True)} if self.perm is not None else {})},
                early={"best": self.early.best, "best_epoch": self.early.best_epoch, "wait": self.early.wait},
                best_weights=None if self.best_weights is None else cpu_copy(self.best_weights),
                history=self.history.arrays(), epoch_correct=int(self._epoch_correct),
                epoch_parts=tuple(self._epoch_parts.tolist()),
            )

    def _restore(self, c: Checkpoint) -> None:
        try:
            self._load_checkpoint(c)
        except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as exc:
            self.reset()
            why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SessionFileError("saved state", f"does not fit this network ({why})") from None

    def _load_checkpoint(self, c: Checkpoint) -> None:
        if not 0 <= c.batch_index < self.steps_per_epoch:
            raise ValueError(f"batch index {c.batch_index} is outside an epoch of {self.steps_per_epoch} steps")
        history = History(c.history)
        if history.steps() != c.step or any(len(history.series[k]) != c.epoch for k in EPOCH_KEYS):
            raise ValueError("the history does not match the step and epoch counts")
        perm = c.rng.get("perm")
        if perm is not None and not torch.equal(torch.sort(perm.long()).values, torch.arange(self.n_train)):
            raise ValueError("the saved shuffle order is not a permutation of the training set")
        self.model.load_state_dict({k: v.to(self.device) for k, v in c.weights.items()})
        self.optimizer.load_state_dict(c.optimizer)
        self.step, self.epoch, self.batch_index = c.step, c.epoch, c.batch_index
        self.elapsed, self.status, self.message = c.elapsed, c.status, c.message
        self.shuffle_rng.set_state(c.rng["shuffle"])
        self.dropout_rng.set_state(c.rng["dropout"].to(self.dropout_rng.device))
        self.perm = c.rng["perm"].to(self.device) if "perm" in c.rng else None
        self.early = EarlyStopper(float(c.early["best"]), int(c.early["best_epoch"]), int(c.early["wait"]))
        self.best_weights = c.best_weights
        self.history = history
        # The running train metrics of the epoch under way: the loss sum is rebuilt from its recorded steps in
        # the order they were added (so bit for bit), the correct count comes saved.
        if not 0 <= c.epoch_correct <= c.batch_index * self.spec.training.batch_size * self.head.tokens:
            raise ValueError(f"{c.epoch_correct} correct samples cannot come from {c.batch_index} steps")
        self._epoch_loss = 0.0
        if self.running and c.batch_index:
            bs = self.spec.training.batch_size
            for v in history.series["step_loss"].since(history.steps() - c.batch_index):
                self._epoch_loss += float(v) * bs
        self._epoch_correct.fill_(c.epoch_correct)
        self._epoch_parts.copy_(torch.tensor(c.epoch_parts, dtype=torch.float64))
        self._lr = -1.0
        self._set_lr()
        self.prober.results = {}
