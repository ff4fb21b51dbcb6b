"""Generative ops: the VAE's reparameterisation, which adds its KL term to the loss."""
from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from .registry import BuildContext, Family, Op, Params, Shape, ShapeError, fmt_shape, register, register_family

GENERATIVE = register_family(Family("generative", "Generative", "#fde8ef"))


class ReparamParams(Params):
    beta: float = Field(1.0, ge=0.0, le=100.0, description="weight of the KL term in the loss")


class Reparameterize(nn.Module):
    """z = μ + σ·ε with ε ~ N(0, I) while training (μ in eval mode); keeps β·KL(q(z|x) ‖ N(0, I)) in ``aux``."""

    def __init__(self, beta: float, generator: torch.Generator | None) -> None:
        super().__init__()
        self.beta = beta
        self.generator = generator
        self.aux: torch.Tensor | None = None

    def forward(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:  # (B, d), (B, d) -> (B, d)
        # KL(N(μ, σ²) ‖ N(0, 1)) = −½ Σ (1 + log σ² − μ² − σ²), summed over d, averaged over the batch.
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(-1).mean()
        self.aux = self.beta * kl
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
    return Reparameterize(p.beta, ctx.generator)


register(Op(
    name="reparam", family="generative", key_params=("beta",), modal=True, aux_loss=True,
    doc="VAE sampling z = μ + σ·ε (the reparameterisation trick); adds β·KL to N(0, I) to the loss.",
    params=ReparamParams, inputs=(2, 2), ports=("mu", "logvar"), shape=_reparam_shape, build=_build,
    explain=lambda p, s: "KL = −½ Σ(1 + log σ² − μ² − σ²), averaged over the batch",
))
