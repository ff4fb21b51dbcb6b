"""Decoding a per-token network's answer: greedy, beam search and sampling, with a softmax temperature.

A network with a ``decoder_input`` block (an encoder–decoder) writes its answer one token at a time: step t
reads the input and the answer so far behind the start token ▶ (``shift``), and the block is run again for
every step (its causal attention or recurrence keeps step t from seeing later steps, so running the whole
length each time gives the same answer at t as a cached decoder would, only slower: T passes of a short
sequence). A network without one answers every position at once; its positions are independent, so the most
likely answer is each position's most likely token, and beam search finds exactly that.

Scores are log-probabilities of the whole answer under softmax(z / temperature): with temperature 1, the
network's own. Callers put the model in eval mode and turn gradients off.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F

from .graph import GraphModule

Method = Literal["greedy", "beam", "sample"]
DECODER = "decoder_input"


@dataclass(frozen=True)
class Decoded:
    tokens: torch.Tensor  # (B, T) int64: the answer
    logprob: torch.Tensor  # (B,) float: its log-probability under softmax(z / temperature)


def has_decoder(nodes: Iterable[Any]) -> bool:
    """The network writes its answer token by token: one of its blocks (a spec's nodes, a checked graph's or a
    run's, anything with an ``op``) is a ``decoder_input``."""
    return any(node.op == DECODER for node in nodes)


def shift(answer: torch.Tensor, bos: int) -> torch.Tensor:
    """What the decoder reads: ▶ then the answer up to its second-last token, (B, T) as float ids."""
    start = torch.full_like(answer[:, :1], bos)
    return torch.cat([start, answer[:, :-1]], dim=1).float()


def feed(answer: torch.Tensor, bos: int) -> dict[str, torch.Tensor]:
    """The extras a decoder network runs with when ``answer`` is the answer so far (teacher forcing: the target)."""
    return {DECODER: shift(answer, bos)}


def decode(model: GraphModule, x: torch.Tensor, bos: int, method: Method = "greedy", *, width: int = 4,
           temperature: float = 1.0, generator: torch.Generator | None = None) -> Decoded:
    """The network's answer for inputs ``x`` (B, T): greedy, beam search of ``width`` beams, or sampled."""
    if not temperature > 0:
        raise ValueError(f"temperature must be above 0, not {temperature}")
    if not has_decoder(model.info.nodes.values()):
        logp = F.log_softmax(model(x) / temperature, dim=-1)  # (B, T, V): positions are independent
        if method == "sample":
            tokens = torch.multinomial(logp.exp().flatten(0, 1), 1, generator=generator).view(logp.shape[:2])
        else:
            tokens = logp.argmax(-1)
        return Decoded(tokens, logp.gather(-1, tokens[..., None])[..., 0].sum(1))
    if method == "beam":
        return _beam(model, x, bos, width, temperature)
    return _stepwise(model, x, bos, temperature, generator if method == "sample" else None, method == "sample")


def _step_logp(model: GraphModule, x: torch.Tensor, answer: torch.Tensor, bos: int, t: int,
               temperature: float) -> torch.Tensor:
    """log softmax(z / temperature) of step t given the answer so far: (B, V)."""
    z = model(x, feed(answer, bos))
    return F.log_softmax(z[:, t] / temperature, dim=-1)


def _stepwise(model: GraphModule, x: torch.Tensor, bos: int, temperature: float,
              generator: torch.Generator | None, sample: bool) -> Decoded:
    b, steps = x.shape[0], x.shape[1]
    answer = torch.zeros(b, steps, dtype=torch.long, device=x.device)
    total = torch.zeros(b, device=x.device)
    for t in range(steps):
        logp = _step_logp(model, x, answer, bos, t, temperature)
        tok = torch.multinomial(logp.exp(), 1, generator=generator)[:, 0] if sample else logp.argmax(-1)
        answer[:, t] = tok
        total += logp.gather(1, tok[:, None])[:, 0]
    return Decoded(answer, total)


def _beam(model: GraphModule, x: torch.Tensor, bos: int, width: int, temperature: float) -> Decoded:
    """Beam search: keep the ``width`` most likely answers so far at every step, extend each by every token,
    keep the best ``width`` again. All inputs' beams run as one batch of B·width."""
    if width < 1:
        raise ValueError(f"beam width must be at least 1, not {width}")
    b, steps = x.shape[0], x.shape[1]
    xs = x.repeat_interleave(width, dim=0)  # (B·K, T)
    answers = torch.zeros(b * width, steps, dtype=torch.long, device=x.device)
    scores = torch.full((b, width), float("-inf"), device=x.device)
    scores[:, 0] = 0.0  # one live beam to start: the others would repeat it
    for t in range(steps):
        logp = _step_logp(model, xs, answers, bos, t, temperature)  # (B·K, V)
        v = logp.shape[1]
        cand = (scores[:, :, None] + logp.view(b, width, v)).view(b, width * v)
        k = min(width, width * v)
        top, index = cand.topk(k, dim=1)  # (B, K): the best extensions
        beam, token = index // v, index % v
        rows = (torch.arange(b, device=x.device)[:, None] * width + beam).view(-1)
        answers = answers[rows].clone()
        answers[:, t] = token.view(-1)
        scores = top
    best = scores.argmax(1)
    rows = torch.arange(b, device=x.device) * width + best
    return Decoded(answers[rows], scores.gather(1, best[:, None])[:, 0])
