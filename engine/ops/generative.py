"""Generative ops: the VAE's reparameterisation, which leaves its KL term for the trainer to weigh by β
(``regularization.beta``, which changes live) and add to the loss."""
from __future__ import annotations

import torch
from torch import nn

from .registry import BuildContext, Family, Op, Params, Shape, ShapeError, fmt_shape, register, register_family

GENERATIVE = register_family(Family("generative", "Generative", "#fde8ef"))


class ReparamParams(Params):
    pass  # β, the KL term's weight, is the session's regularization.beta: it changes without a reset


class Reparameterize(nn.Module):
    """z = μ + σ·ε with ε ~ N(0, I) while training (μ in eval mode); keeps KL(q(z|x) ‖ N(0, I)) averaged over
    the batch in ``aux`` and per sample in ``aux_rows``."""

    def __init__(self, generator: torch.Generator | None) -> None:
        super().__init__()
        self.generator = generator
        self.aux: torch.Tensor | None = None
        self.aux_rows: torch.Tensor | None = None

    def forward(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:  # (B, d), (B, d) -> (B, d)
        # KL(N(μ, σ²) ‖ N(0, 1)) = −½ Σ (1 + log σ² − μ² − σ²), summed over d, averaged over the batch.
        rows = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(-1)
        self.aux_rows = rows
        self.aux = rows.mean()
        if not self.training:
            return mu
        eps = torch.empty_like(mu).normal_(generator=self.generator)
        return mu + torch.exp(0.5 * logvar) * eps


def _reparam_shape(p: ReparamParams, shapes: list[Shape]) -> Shape:
    mu, logvar = shapes
    if mu != logvar:
        raise ShapeError(f"needs μ and log σ² of one shape but gets {fmt_shape(mu)} and {fmt_shape(logvar)}")
    return mu


def _build(p: ReparamParams, s: list[Shape], ctx: BuildContext) -> nn.Module:
    return Reparameterize(ctx.generator)


register(Op(
    name="reparam", family="generative", key_params=(), modal=True, aux_loss=True,
    doc="VAE sampling z = μ + σ·ε (the reparameterisation trick); β·KL to N(0, I) joins the loss (β: Training panel).",
    params=ReparamParams, inputs=(2, 2), ports=("mu", "logvar"), shape=_reparam_shape, build=_build,
    explain=lambda p, s: "KL = −½ Σ(1 + log σ² − μ² − σ²), averaged over the batch",
))
