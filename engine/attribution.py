"""Saliency maps and FGSM adversarial examples for image classifiers, through Captum.

A model here is any ``nn.Module`` mapping a float batch (B, C, H, W) to logits (B, K). Every function runs it in
eval mode and leaves no trace: each submodule's own training flag is restored (even on error), parameter ``.grad``s
and ``requires_grad`` are untouched (Captum differentiates with ``torch.autograd.grad``, which accumulates nothing),
Captum removes its hooks, the caller's ``x`` is never modified, and results are detached.

Milliseconds per call on a LeNet-sized CNN (1×28×28: conv5→6, pool, conv5→16, pool, 400-120-84-10; Grad-CAM on the
second conv), ``torch.set_num_threads(1)``, defaults (samples=16, steps=32), median of 40 calls; the range covers runs
on a busy 2-core machine with and without a LeNet training loop running beside it:

=====================  ===========  ============
call                   1 sample     16 samples
=====================  ===========  ============
gradient               1–4          4–9
smoothgrad             5–14         55–145
integrated_gradients   9–23         105–235
gradcam                1–3          3–7
fgsm                   1–4          4–8
predict                0.5–1        1–2
=====================  ===========  ============

Cost grows with samples × draws (smoothgrad) and samples × steps (integrated gradients). For a live view refreshing
once a second while training shares the CPU (say at most a tenth of that second): gradient, gradcam, fgsm and predict
fit easily even for 16 samples; smoothgrad fits for one sample and is borderline for 16; integrated gradients fits
for one sample but takes a fifth of the second for 16, so compute it on demand or with fewer steps.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam, NoiseTunnel, Saliency
from captum.robust import FGSM
from torch import nn

METHODS: tuple[str, ...] = ("gradient", "smoothgrad", "integrated_gradients", "gradcam")


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Run ``model`` in eval mode, then give every submodule back its own training flag (not just the top one's).

    Captum runs a model in whatever mode it finds it, so dropout and batch statistics would leak into the maps."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, flag in flags:
            m.training = flag


def _check_target(x: torch.Tensor, target: torch.Tensor) -> None:
    if x.ndim == 0 or target.ndim != 1 or target.shape[0] != x.shape[0]:
        batch = x.shape[0] if x.ndim else "B"
        raise ValueError(f"target must have shape ({batch},), one class per sample; got {tuple(target.shape)}")


def _gradcam(model: nn.Module, layer: nn.Module | None, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if layer is None:
        raise ValueError("gradcam needs a layer: a conv-like submodule of the model")
    if not any(m is layer for m in model.modules()):
        raise ValueError("gradcam's layer must be a submodule of the model")
    if x.ndim != 4:
        raise ValueError(f"gradcam needs x of shape (B, C, H, W); got {tuple(x.shape)}")
    cam = LayerGradCam(model, layer).attribute(x, target=target, relu_attributions=True)
    if not isinstance(cam, torch.Tensor) or cam.ndim != 4:
        shape = tuple(cam.shape) if isinstance(cam, torch.Tensor) else type(cam).__name__
        raise ValueError(f"gradcam's layer must output (B, C', h, w) like a conv layer; its map has shape {shape}")
    cam = LayerAttribution.interpolate(cam, tuple(x.shape[2:]), interpolate_mode="bilinear")
    # Grad-CAM's map has one channel; copy it over the input's channels so every method returns x's shape.
    return cam.expand(-1, x.shape[1], -1, -1).contiguous()


def attribute(model: nn.Module, x: torch.Tensor, target: torch.Tensor, method: str, *,
              layer: nn.Module | None = None, samples: int = 16, noise: float = 0.15, steps: int = 32,
              seed: int = 0) -> torch.Tensor:
    """Attribution of each input pixel to the `target` class (B,) int64, the same shape as x (B, C, H, W).

    ``gradient``: |∂logit/∂x| (Captum ``Saliency``). ``smoothgrad``: that averaged over ``samples`` noisy copies,
    noise std = ``noise`` × (x.max() − x.min()), drawn from a generator seeded with ``seed`` (the caller's RNG state
    is kept). ``integrated_gradients``: signed, zero baseline, ``steps`` steps. ``gradcam``: ReLU'd Grad-CAM on
    ``layer`` (required), bilinearly upsampled to (H, W) and repeated over the C channels.
    """
    if method not in METHODS:
        raise ValueError(f"unknown attribution method {method!r}; expected one of {', '.join(METHODS)}")
    _check_target(x, target)
    if samples < 1 or steps < 1 or not noise >= 0:
        raise ValueError(f"samples and steps must be ≥ 1 and noise ≥ 0; got {samples}, {steps}, {noise}")
    target = target.to(device=x.device, dtype=torch.long)
    # A fresh leaf: Captum sets requires_grad on what it is given (and warns if it had to), so never hand it x.
    inputs = x.detach().clone().requires_grad_(True)
    with _eval_mode(model):
        if method == "gradient":
            out = Saliency(model).attribute(inputs, target=target, abs=True)
        elif method == "smoothgrad":
            stdev = float(noise * (x.max() - x.min()).item())
            # NoiseTunnel draws from torch's global generator: fork it (CPU only) so the seed fixes the draws
            # and the caller's RNG stream is left exactly where it was.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                out = NoiseTunnel(Saliency(model)).attribute(
                    inputs.detach(), nt_type="smoothgrad", nt_samples=samples, stdevs=stdev, target=target, abs=True)
        elif method == "integrated_gradients":
            out = IntegratedGradients(model).attribute(inputs, baselines=torch.zeros_like(inputs), target=target,
                                                       n_steps=steps)
        else:
            out = _gradcam(model, layer, inputs, target)
    assert isinstance(out, torch.Tensor)
    return out.detach()


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float,
         loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None, *,
         clamp: tuple[float, float] | None = None) -> torch.Tensor:
    """x moved by eps in the sign of the loss gradient (cross-entropy on logits by default). eps=0 returns x exactly.

    ``loss(logits, y)`` may return a scalar or one loss per sample; the sign of the gradient of its sum is used.
    ``clamp=(lo, hi)`` bounds the result; without it nothing is clamped.
    """
    if not eps >= 0:
        raise ValueError(f"eps must be ≥ 0; got {eps}")
    if clamp is not None and not clamp[0] <= clamp[1]:
        raise ValueError(f"clamp must be (lo, hi) with lo ≤ hi; got {clamp}")
    if eps == 0:  # Captum would compute x + 0·sign(g), which is not bit-exact (−0.0 + 0.0 = +0.0)
        return x.detach().clone()
    loss_fn = loss if loss is not None else lambda logits, labels: F.cross_entropy(logits, labels, reduction="none")

    def summed(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        # Captum differentiates each element of a 1-D loss and sums; a scalar loss has to become shape (1,).
        return loss_fn(logits, labels).sum().reshape(1)

    lo, hi = clamp if clamp is not None else (float("-inf"), float("inf"))
    attack = FGSM(model, loss_func=summed, lower_bound=lo, upper_bound=hi)
    # Captum leaves inputs whose |grad| ≤ 1e-6 unmoved; a confident model's gradients are often that small, and
    # FGSM is x + eps·sign(grad) everywhere, so switch that threshold off (sign(0) = 0 still leaves those pixels).
    attack.zero_thresh = 0.0
    inputs = x.detach().clone().requires_grad_(True)
    with _eval_mode(model):
        out = attack.perturb(inputs, epsilon=float(eps), target=y)
    assert isinstance(out, torch.Tensor)
    return out.detach()


def predict(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(predicted class (B,) int64, softmax probabilities (B, K)) in eval mode, without gradients."""
    # Plain torch: Captum attributes and attacks but has nothing for a forward pass.
    with _eval_mode(model), torch.no_grad():
        probs = torch.softmax(model(x), dim=1)
    return probs.argmax(dim=1), probs
