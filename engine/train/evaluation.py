"""How a run is scored: each epoch's losses and accuracies on the training, validation and test sets, with a
VAE's β·KL in its losses and the reconstruction and KL parts apart. A part of the Trainer (``Trainer`` mixes
it in), kept here so the stepping loop reads on its own."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from ..decoding import decode, feed

if TYPE_CHECKING:
    from ..graph import GraphModule
    from ..head import Head
    from ..spec import SessionSpec

# The per-epoch evaluation goes through the network in chunks of at least EVAL_MIN_ROWS samples and about
# EVAL_CHUNK_BYTES of input: digits-cnn's full-set pass took 51 ms as one batch of 1,797 and 29 ms in chunks
# of 256 (its activations then stay in cache); a 2-D toy set is one chunk.
EVAL_MIN_ROWS = 256
EVAL_CHUNK_BYTES = 64 * 1024
# An encoder–decoder's training accuracy per epoch is that of what it writes (greedy, one pass per token) for
# this many training sequences: its running accuracy over the epoch's steps would count teacher-forced answers.
DECODED_TRAIN_ROWS = 512


class Evaluation:
    """The Trainer's scoring: it reads the run's model, head, data tensors and epoch counters."""

    spec: SessionSpec
    model: GraphModule
    head: Head
    epoch: int
    batch_index: int
    steps_per_epoch: int
    n_train: int
    n_val: int
    running: bool
    x_all: torch.Tensor
    y_all: torch.Tensor
    x_long: torch.Tensor | None
    y_long: torch.Tensor | None
    t_long: torch.Tensor
    decoder: bool
    bos: int
    t_train: torch.Tensor
    t_val: torch.Tensor
    t_test: torch.Tensor
    _epoch_loss: float
    _epoch_parts: torch.Tensor
    _epoch_correct: torch.Tensor

    @property
    def beta(self) -> float:
        """The KL term's weight now: ``regularization.beta``, risen linearly over ``beta_warmup`` epochs."""
        return self.spec.regularization.beta_at(self.epoch + self.batch_index / self.steps_per_epoch)

    def _forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The model's outputs for ``x`` in eval mode (the caller turns gradients off), and a VAE's KL per
        sample (else None). An encoder–decoder reads the targets ``y`` so far (teacher forcing). Image sets go
        in chunks: chunks that stay in cache run a full-set pass ~1.8× faster than one big batch."""
        rows = max(EVAL_MIN_ROWS, EVAL_CHUNK_BYTES // max(x[0].numel() * x.element_size(), 1))
        outs, kls = [], []
        with self.model.evaluating():
            for i in range(0, len(x), rows):
                extras = feed(y[i:i + rows], self.bos) if self.decoder and y is not None else None
                outs.append(self.model(x[i:i + rows], extras))
                kls.append(self.model.aux_rows() if self.model.aux_layers else None)
        kl = None if kls[0] is None else torch.cat(kls) if len(kls) > 1 else kls[0]
        return (torch.cat(outs) if len(outs) > 1 else outs[0]), kl

    def _scores(self, out: tuple[torch.Tensor, torch.Tensor | None], first: int) -> dict[str, float]:
        """Losses (and accuracies) from ``out``, `_forward`'s for ``x_all[first:]``: every set it covers,
        training only when it starts at 0. A VAE's losses include β·KL; its parts are reported apart."""
        z, kl = out
        n, v = self.n_train - first, self.n_train + self.n_val - first  # where validation and test start in z

        def loss(a: int, b: int | None, t: torch.Tensor, key: str) -> None:
            data = self.head.loss(z[a:b], t)
            if kl is None:
                out[key] = data.item()
                return
            part = kl[a:b].mean()
            out[key] = (data + self.beta * part).item()
            if key == "train_loss":
                out["kl"] = part.item()
                if self.head.task == "reconstruction":
                    out["recon_loss"] = data.item()

        out: dict[str, float] = {}
        loss(v, None, self.t_test, "test_loss")
        if first == 0:
            loss(0, n, self.t_train, "train_loss")
            if kl is None and self.head.task == "reconstruction":
                out["recon_loss"] = out["train_loss"]  # no KL term: the loss is all reconstruction
        if self.n_val:
            loss(n, v, self.t_val, "val_loss")
        if self.head.task in ("classification", "sequence"):
            correct = self._correct(z, self.x_all[first:], self.y_all[first:])
            out["test_accuracy"] = correct[v:].mean().item()
            if first == 0:
                out["train_accuracy"] = correct[:n].mean().item()
            if self.n_val:
                out["val_accuracy"] = correct[n:v].mean().item()
            if self.head.task == "sequence":
                out["test_sequence_accuracy"] = correct[v:].all(1).float().mean().item()
        return out

    def _correct(self, z: torch.Tensor | None, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Which answers (tokens, for a sequence task) are right, as floats: an encoder–decoder's from what it
        writes itself (greedy, token by token), not from its teacher-forced outputs ``z``."""
        if self.decoder:
            with self.model.evaluating():
                return (decode(self.model, x, self.bos).tokens == y).float()
        assert z is not None
        return self.head.correct(z, y).float()

    def _long_scores(self) -> dict[str, float]:
        """Loss and accuracy on the longer held-out sequences, where the data has them and the network can read
        them (a learned position table or a flatten fixes the length: then none)."""
        if self.x_long is None or self.y_long is None:
            return {}
        try:
            z, _ = self._forward(self.x_long, self.y_long)
            correct = self._correct(z, self.x_long, self.y_long)
        except (RuntimeError, ValueError, IndexError):
            self.x_long = None  # the network is built for its training length
            return {}
        out = {"long_loss": self.head.loss(z, self.t_long).item(),
               "long_accuracy": correct.mean().item()}
        if self.head.task == "sequence":
            out["long_sequence_accuracy"] = correct.all(1).float().mean().item()
        return {k: v for k, v in out.items() if math.isfinite(v)}

    @torch.inference_mode()  # faster than no_grad for these passes; nothing they make is trained on
    def evaluate(self) -> dict[str, float]:
        """Full-set train, validation (where the data has one) and test loss, and accuracy, in eval mode, from
        one forward pass; and the longer held-out sequences' scores."""
        return self._scores(self._forward(self.x_all, self.y_all), 0) | self._long_scores()

    @torch.inference_mode()
    def _epoch_metrics(self) -> dict[str, float]:
        """The finished epoch's metrics: `evaluate`, or with running train metrics the epoch's own mean loss and
        accuracy over its steps plus a pass over validation and test only."""
        if not self.running:
            return self.evaluate()
        n = self.n_train
        out = self._scores(self._forward(self.x_all[n:], self.y_all[n:]), n) | self._long_scores()
        out["train_loss"] = self._epoch_loss / n
        if self.decoder:  # what it writes itself, as its other accuracies, on the first training sequences
            k = min(n, DECODED_TRAIN_ROWS)
            out["train_accuracy"] = self._correct(None, self.x_all[:k], self.y_all[:k]).mean().item()
        elif self.head.task in ("classification", "sequence"):
            out["train_accuracy"] = int(self._epoch_correct) / (n * self.head.tokens)
        if self.model.aux_layers:
            recon, kl = self._epoch_parts.tolist()
            out["kl"] = kl / n
            if self.head.task == "reconstruction":
                out["recon_loss"] = recon / n
        elif self.head.task == "reconstruction":
            out["recon_loss"] = out["train_loss"]  # no KL term: the loss is all reconstruction
        self._epoch_loss = 0.0
        self._epoch_parts.zero_()
        self._epoch_correct.zero_()
        return out

    @property
    def watched(self) -> str:
        """The set early stopping watches: validation where the data has one, else test (2-D toys)."""
        return "validation" if self.n_val else "test"

