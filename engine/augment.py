"""Data augmentation for image batches, as a regularizer: random shifts and rotations (one affine warp per
image), left–right flips, cutout and pixel noise, drawn from the trainer's own generator so that a run
resumes bit for bit. Applied to training batches only, between the batch's selection and the forward pass."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .spec import Augment


def augment(x: torch.Tensor, a: Augment, g: torch.Generator) -> torch.Tensor:
    """A new (B, C, H, W) batch with ``a``'s random changes (``x`` is left alone)."""
    b, _c, h, w = x.shape
    dev = x.device
    if a.shift or a.rotation:
        angle = (torch.rand(b, generator=g, device=dev) * 2 - 1) * math.radians(a.rotation)
        move = (torch.rand(b, 2, generator=g, device=dev) * 2 - 1) * a.shift
        cos, sin = angle.cos(), angle.sin()
        # affine_grid maps output to input in [-1, 1] coordinates: a pixel is 2/size of them
        theta = torch.stack([torch.stack([cos, -sin, move[:, 0] * 2 / w], 1),
                             torch.stack([sin, cos, move[:, 1] * 2 / h], 1)], 1)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if a.flip:
        mirror = torch.rand(b, generator=g, device=dev) < 0.5
        x = torch.where(mirror[:, None, None, None], x.flip(-1), x)
    if a.cutout:
        cy = torch.randint(0, h, (b, 1, 1), generator=g, device=dev)
        cx = torch.randint(0, w, (b, 1, 1), generator=g, device=dev)
        ys, xs = torch.arange(h, device=dev)[None, :, None], torch.arange(w, device=dev)[None, None, :]
        half = a.cutout / 2
        hole = ((ys - cy).abs() < half) & ((xs - cx).abs() < half)  # (B, H, W)
        background = x.amin(dim=(2, 3), keepdim=True)  # each image's darkest value: "blank" after standardising
        x = torch.where(hole[:, None], background, x)
    if a.noise:
        x = x + a.noise * torch.randn(x.shape, generator=g, device=dev, dtype=x.dtype)
    return x
