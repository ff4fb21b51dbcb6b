"""Vision-transformer ops: cutting an image (C, H, W) into a sequence of patch vectors (T, dim)."""
from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from .registry import Op, Params, Shape, ShapeError, fmt_shape, register


class PatchEmbeddingParams(Params):
    patch: int = Field(7, ge=1, le=64, description="side of each square patch, in pixels")
    dim: int = Field(32, ge=1, le=4096, description="length of each patch's vector")
    class_token: bool = Field(True, description="prepend a learned [class] token at step 0")


class PatchEmbedding(nn.Module):
    """Cuts the image into non-overlapping patch × patch squares and maps each, through one shared linear map,
    to a vector: a convolution whose kernel and stride are both the patch side. The patches become a sequence
    in reading order (left to right, then top to bottom); a learned class token may go first."""

    def __init__(self, channels: int, p: PatchEmbeddingParams) -> None:
        super().__init__()
        self.proj = nn.Conv2d(channels, p.dim, p.patch, stride=p.patch)
        self.cls = nn.Parameter(torch.randn(1, 1, p.dim) * 0.02) if p.class_token else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, [1 +] P, dim)
        y = self.proj(x).flatten(2).transpose(1, 2)  # (B, dim, H/p, W/p) -> (B, P, dim), row-major patches
        if self.cls is None:
            return y
        return torch.cat([self.cls.expand(y.shape[0], -1, -1), y], dim=1)


def _grid(p: PatchEmbeddingParams, shapes: list[Shape]) -> tuple[int, int, int]:
    """(C, rows, columns) of the patch grid, or the error naming the sizes that do not divide."""
    if len(shapes[0]) != 3:
        raise ShapeError(f"expects images (B, C, H, W) but gets {fmt_shape(shapes[0])}: reshape to (C, H, W) first")
    c, h, w = shapes[0]
    if h % p.patch or w % p.patch:
        sides = [d for d in range(1, min(h, w) + 1) if h % d == 0 and w % d == 0]
        fits = ", ".join(str(d) for d in sides[:-1]) + (" or " if len(sides) > 1 else "") + str(sides[-1])
        raise ShapeError(f"cuts {p.patch}×{p.patch} patches, which must divide the {h}×{w} image: "
                         f"pick a patch side of {fits}")
    return c, h // p.patch, w // p.patch


def _shape(p: PatchEmbeddingParams, shapes: list[Shape]) -> Shape:
    _, rows, cols = _grid(p, shapes)
    return (rows * cols + int(p.class_token), p.dim)


def _count(p: PatchEmbeddingParams, shapes: list[Shape]) -> int:
    c = shapes[0][0]
    return p.dim * c * p.patch**2 + p.dim + (p.dim if p.class_token else 0)


def _explain(p: PatchEmbeddingParams, shapes: list[Shape]) -> str:
    _, h, w = shapes[0]
    rows, cols = h // p.patch, w // p.patch
    steps = f"{rows}·{cols} = {rows * cols} patches" + (f" + 1 class token = {rows * cols + 1} steps"
                                                        if p.class_token else "")
    return f"{h}/{p.patch} = {rows} rows, {w}/{p.patch} = {cols} columns\n{steps}"


register(Op(
    name="patch_embedding", family="sequence", key_params=("patch", "dim"),
    doc="Vision-transformer input: cuts the image into patch×patch squares, maps each to a learned vector "
        "(read left to right, top to bottom), and puts a learned class token first for the classifier to read.",
    params=PatchEmbeddingParams, inputs=(1, 1), shape=_shape,
    build=lambda p, s, ctx: PatchEmbedding(s[0][0], p), count=_count, penalized=("proj.weight",),
    explain=_explain,
))
