"""A sequence set's predictions: for a range of examples of a split, the input tokens, the target and the
network's answer with how sure it was of each token. An encoder–decoder WRITES its answer token by token
(`engine.decoding`: greedy, beam search or sampling, at a softmax temperature); an encoder-only per-token network
answers every position at once (its most likely token at each); a classifier of sequences (count zeros, parity,
brackets) answers one class per example. Registered as the ``predictions`` probe's sequence half (images.py
dispatches here), so the CLI's ``--probe predictions`` covers both.
"""
from __future__ import annotations

import math
from typing import Any, cast

import numpy as np
import torch

from ..datasets import family_of
from ..decoding import Method, decode, feed, has_decoder
from .registry import ProbeContext, ProbeRequest, own

SHOWN = 32  # examples by default: the split's first
MAX_ROWS = 64  # at most this many a request: one cheap pass (or one beam search) over short sequences
METHODS = ("greedy", "beam", "sample")
ALIASES = {"sampling": "sample"}
DEFAULT_WIDTH, MAX_WIDTH = 4, 16
DEFAULT_TEMPERATURE, MAX_TEMPERATURE = 1.0, 100.0
SAMPLE_SEED = 0  # sampling draws from a generator seeded afresh each time: the same model gives the same answer
TAKES = frozenset({"samples", "split", "method", "width", "temperature"})


def is_sequences(dataset_spec: Any) -> bool:
    return family_of(dataset_spec).kind == "sequences"


def decoding_options(request: ProbeRequest) -> tuple[str, int, float]:
    """(method, beam width, temperature) of a request, defaults filled in; KeyError naming the option that is
    out of range (the CLI names --method, --width or --temperature from it)."""
    method = ALIASES.get(request.method or "greedy", request.method or "greedy")
    if method not in METHODS:
        # "sampling", not "sample": the CLI names the option a message mentions first, and --sample comes first
        raise KeyError(f"unknown decoding method {method!r} (known: greedy, beam, sampling)")
    width = DEFAULT_WIDTH if request.width is None else request.width
    if not 1 <= width <= MAX_WIDTH:
        raise KeyError(f"beam width must be from 1 to {MAX_WIDTH}, not {width}")
    temperature = DEFAULT_TEMPERATURE if request.temperature is None else float(request.temperature)
    if not (math.isfinite(temperature) and 0 < temperature <= MAX_TEMPERATURE):
        raise KeyError(f"temperature must be above 0 and at most {MAX_TEMPERATURE:g}, not {request.temperature}")
    return method, width, temperature


def example_range(request: ProbeRequest, n: int) -> tuple[int, int]:
    """The examples [start, stop) asked for: ``samples``, else the split's first SHOWN."""
    if request.samples is None:
        return 0, min(SHOWN, n)
    start, stop = request.samples
    if not 0 <= start < stop <= n:
        raise KeyError(f"samples {start}:{stop} are outside the {request.split} split (0:{n})")
    if stop - start > MAX_ROWS:
        raise KeyError(f"samples {start}:{stop} asks for {stop - start} examples; at most {MAX_ROWS} at a time")
    return start, stop


def _binary_one(ctx: ProbeContext, z: torch.Tensor) -> torch.Tensor:
    """A one-unit head's probability of class 1, as its activation and loss read it (decided at z = 0)."""
    head = ctx.head
    if head.activation == "sigmoid" or (head.activation == "linear" and head.loss_name == "bce"):
        return torch.sigmoid(z)
    if head.activation == "tanh":
        return (torch.tanh(z) + 1) / 2
    return ((z + 1) / 2).clamp(0, 1) if head.pm1 else z.clamp(0, 1)  # linear with squared error


def _classes(ctx: ProbeContext, split: str, start: int, stop: int) -> dict[str, np.ndarray]:
    """A classifier of sequences: one class per example."""
    z = ctx.forward_rows(split, start, stop)[ctx.model.info.output_id]
    if ctx.head.activation == "softmax":
        confidence, outputs = torch.softmax(z, dim=-1).max(dim=-1)
    else:
        one = _binary_one(ctx, z[:, 0])
        outputs = (z[:, 0] > 0).long()
        confidence = torch.where(outputs == 1, one, 1 - one)
    return {"outputs": outputs.cpu().numpy().astype(np.int64), "confidence": own(confidence),
            "class_names": np.array([str(c) for c in ctx.data.meta["classes"]])}


def _tokens(ctx: ProbeContext, split: str, start: int, stop: int, x: torch.Tensor, method: str, width: int,
            temperature: float) -> dict[str, np.ndarray]:
    """A per-token network's answer: decoded (an encoder–decoder writes it token by token) with each token's
    probability under the network's own softmax (temperature 1), given the answer before it."""
    model, bos = ctx.model, int(ctx.data.meta["bos"])
    generator = None
    if method == "sample":
        generator = torch.Generator(device=x.device).manual_seed(SAMPLE_SEED)
    with torch.no_grad(), model.evaluating():
        answer = decode(model, x, bos, cast(Method, method), width=width, temperature=temperature,
                        generator=generator)
        if has_decoder(model.info.nodes.values()):
            z = model(x, feed(answer.tokens, bos))  # step t read the answer's tokens before t, as it wrote them
        else:
            z = ctx.forward_rows(split, start, stop)[model.info.output_id]  # shared with the round's other probes
    confidence = torch.softmax(z, dim=-1).gather(-1, answer.tokens[..., None])[..., 0]
    return {"outputs": answer.tokens.cpu().numpy().astype(np.int64), "confidence": own(confidence),
            "logprob": own(answer.logprob)}


def sequence_predictions(ctx: ProbeContext, request: ProbeRequest) -> dict[str, np.ndarray]:
    """For the examples ``samples`` (default the first 32) of ``split`` (test, train or long): ``rows`` (n,)
    their indices, ``inputs`` (n, T) token ids, ``targets`` and ``outputs`` (n, T) tokens for a per-token task or
    (n,) classes for a classifier, ``correct`` (bools, the same shape), ``confidence`` (the network's softmax
    probability of each output token or class), ``token_names`` (V,), ``token_accuracy`` and
    ``sequence_accuracy`` (scalars: tokens right, and examples right in every token; for a classifier both are
    the share of examples classified right), for a per-token task ``logprob`` (n,) (the answer's
    log-probability under softmax(z / temperature)) and for a classifier ``class_names``; ``split`` and
    ``method`` (0-d strings: what was answered, "class" for a classifier)."""
    method, width, temperature = decoding_options(request)
    split = request.split
    x_all = ctx.inputs(split)
    start, stop = example_range(request, len(x_all))
    x = x_all[start:stop]
    targets = ctx.labels(split)[start:stop].cpu().numpy().astype(np.int64)
    sequence = ctx.head.task == "sequence"
    if not sequence and method != "greedy":
        raise KeyError(f"method {method!r}: a classifier of sequences answers its likeliest class; only a "
                       "per-token task's answer is decoded by a method other than greedy")
    try:
        out = (_tokens(ctx, split, start, stop, x, method, width, temperature) if sequence
               else _classes(ctx, split, start, stop))
    except (RuntimeError, ValueError, IndexError):
        if split != "long":
            raise
        raise KeyError(f"split 'long': this network is built for its training length ({ctx.data.x_test.shape[1]} "
                       f"tokens: a learned position table or a flatten fixes it) and cannot read the longer "
                       f"sequences ({x.shape[1]} tokens)") from None
    correct = out["outputs"] == targets
    exact = correct.all(axis=1) if sequence else correct
    return {"rows": np.arange(start, stop, dtype=np.int64),
            "inputs": x.cpu().numpy().astype(np.int64), "targets": targets, **out, "correct": correct,
            "token_names": np.array([str(t) for t in ctx.data.meta["tokens"]]),
            "token_accuracy": np.float32(correct.mean()), "sequence_accuracy": np.float32(exact.mean()),
            "split": np.array(split), "method": np.array(method if sequence else "class")}
