"""FGSM adversarial examples for image classifiers: the selected test image pushed by ε in the direction that
raises its loss most, and the test accuracy clean and under that attack.

ε is in raw pixel units (a fraction of full brightness), so the same slider means the same thing for any dataset.
In the model's standardised units that is ε/std per channel, and the raw image's [0, 1] becomes a per-channel box
[(0 − mean)/std, (1 − mean)/std], which neither `attribution.fgsm`'s scalar ε nor its scalar clamp can express.
So the attack runs on the model with the standardisation put in front of it, on raw images: sign(∂loss/∂raw) =
sign(∂loss/∂standardised) (std > 0), so x_raw + ε·sign(g) clamped to [0, 1] *is* the step of ε/std per channel,
clamped per channel, in standardised units; and ε = 0 gives the raw image back bit for bit.

Cost on digits-cnn (1×8×8, conv 16 and 32 filters; 300 test images + the selected one in one batch: one FGSM
gradient and one forward pass of clean and attacked together), one torch thread, median of 40 calls on a loaded
2-core machine: 15–21 ms alone, 30–60 ms with a training loop running beside it in the same interpreter. The trainer
spaces probe rounds to keep them under 3 % of training time (and at most a second apart).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..attribution import fgsm, predict
from .images import _images, _rows, _test
from .registry import Probe, ProbeContext, ProbeRequest, own, register

DEFAULT_EPS = 0.1  # raw pixel units: a tenth of full brightness
MAX_TEST = 300  # test images attacked for the accuracies: the first ones, or all when there are fewer


class _Standardised(nn.Module):
    """The model fed raw images in [0, 1]: ``(raw − mean)/std`` per channel, as the data pipeline does."""

    def __init__(self, model: nn.Module, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", mean.reshape(1, -1, 1, 1))
        self.register_buffer("std", std.reshape(1, -1, 1, 1))

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        return self.model((raw - self.mean) / self.std)


def _eps(request: ProbeRequest) -> float:
    """The request's ε (raw pixel units), checked: 0 ≤ ε ≤ 1, else KeyError."""
    value = DEFAULT_EPS if request.eps is None else request.eps
    try:
        eps = float(value)
    except (TypeError, ValueError):
        eps = float("nan")
    if not 0.0 <= eps <= 1.0:  # NaN fails too
        raise KeyError(f"eps {value!r} is outside 0 … 1 (a fraction of full brightness, in raw pixel units)")
    return eps


def adversarial(ctx: ProbeContext, request: ProbeRequest) -> dict[str, np.ndarray]:
    """FGSM with ``eps`` (raw pixel units, default 0.1, 0 ≤ ε ≤ 1) against the true label (cross-entropy), the
    result clamped to [0, 1]. For the selected test image (``sample``): ``input``, ``perturbed`` (C, H, W, raw),
    ``perturbation`` (perturbed − input), ``label``, ``prediction``, ``prediction_adv`` (0-d int64),
    ``probabilities``, ``probabilities_adv`` (K,). Over the first 300 test images (all of them when there are
    fewer): ``accuracy`` and ``accuracy_adv`` (0-d float32); ``eps`` (0-d float32) and ``row`` (the sample's
    index). The model is left as it was (`attribution.fgsm` restores modes and accumulates no gradients)."""
    eps = _eps(request)
    if request.split != "test":
        raise KeyError(f"the attack is on test images; split {request.split!r} is not offered")
    x_all, y_all = _test(ctx)
    row = int(_rows(request, len(x_all))[0])
    meta, dev = ctx.data.meta, x_all.device

    def tensor(key: str) -> torch.Tensor:  # made once a run
        return ctx.constant(f"adversarial.{key}", lambda: torch.as_tensor(np.asarray(meta[key], dtype=np.float32),
                                                                           device=dev))

    raw_all, mean, std = tensor("raw_test"), tensor("mean"), tensor("std")
    m = min(len(x_all), MAX_TEST)
    # One batch: the test images scored and the selected one last (eval mode: each image's gradient is its own).
    raw = torch.cat([raw_all[:m], raw_all[row:row + 1]])
    y = torch.cat([y_all[:m], y_all[row:row + 1]]).long()
    model = _Standardised(ctx.model, mean, std)
    adv = fgsm(model, raw, y, eps, clamp=(0.0, 1.0))
    both, probs_both = predict(model, torch.cat([raw, adv]))  # one forward pass: clean, then attacked
    (pred, pred_adv), (probs, probs_adv) = both.split(len(raw)), probs_both.split(len(raw))
    test = y[:m]
    return {
        "input": own(raw[-1]), "perturbed": own(adv[-1]), "perturbation": own(adv[-1] - raw[-1]),
        "label": np.array(int(y[-1]), dtype=np.int64), "prediction": np.array(int(pred[-1]), dtype=np.int64),
        "prediction_adv": np.array(int(pred_adv[-1]), dtype=np.int64),
        "probabilities": own(probs[-1]), "probabilities_adv": own(probs_adv[-1]),
        "accuracy": np.array((pred[:m] == test).float().mean().item(), dtype=np.float32),
        "accuracy_adv": np.array((pred_adv[:m] == test).float().mean().item(), dtype=np.float32),
        "eps": np.array(eps, dtype=np.float32), "row": np.array(row, dtype=np.int64),
    }


register(Probe("adversarial", "FGSM adversarial example of the selected test image (ε in raw pixel units) and the "
               "test accuracy clean and under attack", _images, adversarial,
               takes=frozenset({"sample", "eps", "split"})))
