"""Convolution-family ops on images (C, H, W): conv, pooling, transposed conv, upsampling."""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from .activations import Activated, PointwiseName
from .registry import (
    MAX_UNITS,
    Family,
    NoParams,
    Op,
    Params,
    Shape,
    ShapeError,
    fmt_shape,
    register,
    register_family,
)

CONVOLUTION = register_family(Family("convolution", "Convolution", "#e6f4ea"))

Kernel = Field(3, ge=1, le=31)


def _image(shape: Shape) -> Shape:
    if len(shape) != 3:
        raise ShapeError(f"expects images (B, C, H, W) but gets {fmt_shape(shape)}: reshape to (C, H, W) first")
    return shape


def conv_size(i: int, k: int, s: int, p: int, d: int = 1) -> int:
    """Output length of a convolution or pooling window: ⌊(i + 2p − d(k − 1) − 1)/s⌋ + 1."""
    return (i + 2 * p - d * (k - 1) - 1) // s + 1


def transpose_size(i: int, k: int, s: int, p: int, out_pad: int, d: int = 1) -> int:
    """Output length of a transposed convolution: s(i − 1) − 2p + d(k − 1) + p_out + 1."""
    return s * (i - 1) - 2 * p + d * (k - 1) + out_pad + 1


def _conv_formula(i: int, k: int, s: int, p: int, d: int) -> str:
    o = conv_size(i, k, s, p, d)
    keff = f"{d}·({k}−1)+1" if d != 1 else f"{k}"
    return f"⌊({i} + 2·{p} − {keff})/{s}⌋ + 1 = {o}"


class Conv2dParams(Params):
    filters: int = Field(8, ge=1, le=4096)
    kernel: int = Kernel
    stride: int = Field(1, ge=1, le=16)
    padding: int = Field(0, ge=0, le=32)
    dilation: int = Field(1, ge=1, le=16)
    groups: int = Field(1, ge=1, le=4096)
    activation: PointwiseName = "linear"
    bias: bool = True


class ActivatedConv(Activated, nn.Conv2d):
    """A 2-D convolution with its own activation, like a dense layer's."""

    def __init__(self, c_in: int, p: Conv2dParams) -> None:
        super().__init__(c_in, p.filters, p.kernel, p.stride, p.padding, p.dilation, p.groups, p.bias)
        self.set_activation(p.activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, filters, H', W')
        return self.activate(super().forward(x))


def _conv_shape(p: Conv2dParams, shapes: list[Shape]) -> Shape:
    c, h, w = _image(shapes[0])
    if c % p.groups or p.filters % p.groups:
        raise ShapeError(f"has {p.groups} groups, which must divide both its {c} input channels and "
                         f"{p.filters} filters")
    oh, ow = (conv_size(i, p.kernel, p.stride, p.padding, p.dilation) for i in (h, w))
    if oh < 1 or ow < 1:
        raise ShapeError(f"kernel {p.kernel} (dilation {p.dilation}) does not fit a {h}×{w} image with padding "
                         f"{p.padding}: add padding or use a smaller kernel")
    return (p.filters, oh, ow)


def _conv_count(p: Conv2dParams, s: list[Shape]) -> int:
    c = s[0][0]
    return p.filters * (c // p.groups) * p.kernel**2 + (p.filters if p.bias else 0) + (p.activation == "prelu")


register(Op(
    name="conv2d", family="convolution", key_params=("filters", "kernel", "stride", "activation"),
    doc="2-D convolution: each filter slides a k×k window over the image (stride, padding, dilation, groups).",
    params=Conv2dParams, inputs=(1, 1), shape=_conv_shape,
    build=lambda p, s, ctx: ActivatedConv(s[0][0], p), count=_conv_count, penalized=("weight",),
    explain=lambda p, s: "H: " + _conv_formula(s[0][1], p.kernel, p.stride, p.padding, p.dilation)
    + "\nW: " + _conv_formula(s[0][2], p.kernel, p.stride, p.padding, p.dilation),
))


class PoolParams(Params):
    kernel: int = Field(2, ge=1, le=31)
    stride: int | None = Field(None, ge=1, le=31, description="None = the kernel size")
    padding: int = Field(0, ge=0, le=15)

    @model_validator(mode="after")
    def _half_kernel(self) -> PoolParams:
        if self.padding * 2 > self.kernel:
            raise ValueError("padding must be at most half the kernel")
        return self


def _pool_shape(p: PoolParams, shapes: list[Shape]) -> Shape:
    c, h, w = _image(shapes[0])
    s = p.stride or p.kernel
    oh, ow = conv_size(h, p.kernel, s, p.padding), conv_size(w, p.kernel, s, p.padding)
    if oh < 1 or ow < 1:
        raise ShapeError(f"window {p.kernel} does not fit a {h}×{w} image")
    return (c, oh, ow)


def _pool_explain(p: PoolParams, s: list[Shape]) -> str:
    st = p.stride or p.kernel
    return f"H: {_conv_formula(s[0][1], p.kernel, st, p.padding, 1)}\nW: {_conv_formula(s[0][2], p.kernel, st, p.padding, 1)}"


class MaxPool(nn.MaxPool2d):
    """torch's MaxPool2d; without gradients (evaluation, probes) it pools in channels-last order, which torch's
    CPU kernel does 2–3× faster for these small images (the same maxima, bit for bit: tested). With gradients
    the usual layout is kept: there the backward pass would give the saving back."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4 and not torch.is_grad_enabled() and x.device.type == "cpu":
            return super().forward(x.contiguous(memory_format=torch.channels_last)).contiguous()
        return super().forward(x)


register(Op(
    name="max_pool", family="convolution", key_params=("kernel",), doc="Keeps the largest value in each window (downsamples).",
    params=PoolParams, inputs=(1, 1), shape=_pool_shape, explain=_pool_explain,
    build=lambda p, s, ctx: MaxPool(p.kernel, p.stride or p.kernel, p.padding),
))
register(Op(
    name="avg_pool", family="convolution", key_params=("kernel",), doc="Averages each window (downsamples); padding counts as zeros.",
    params=PoolParams, inputs=(1, 1), shape=_pool_shape, explain=_pool_explain,
    build=lambda p, s, ctx: nn.AvgPool2d(p.kernel, p.stride or p.kernel, p.padding),
))


class GlobalAvgPool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C)
        return x.mean(dim=(2, 3))


register(Op(
    name="global_avg_pool", family="convolution", doc="Averages each channel over the whole image: (C, H, W) → (C,).",
    params=NoParams, inputs=(1, 1), shape=lambda p, s: (_image(s[0])[0],), build=lambda p, s, ctx: GlobalAvgPool(),
))


class ConvTransposeParams(Params):
    filters: int = Field(8, ge=1, le=4096)
    kernel: int = Field(2, ge=1, le=31)
    stride: int = Field(2, ge=1, le=16)
    padding: int = Field(0, ge=0, le=32)
    output_padding: int = Field(0, ge=0, le=15)
    dilation: int = Field(1, ge=1, le=16)
    activation: PointwiseName = "linear"
    bias: bool = True

    @model_validator(mode="after")
    def _out_pad(self) -> ConvTransposeParams:
        if self.output_padding >= max(self.stride, self.dilation):
            raise ValueError("output_padding must be smaller than the stride or the dilation")
        return self


class ActivatedConvTranspose(Activated, nn.ConvTranspose2d):
    def __init__(self, c_in: int, p: ConvTransposeParams) -> None:
        super().__init__(c_in, p.filters, p.kernel, p.stride, p.padding, p.output_padding, bias=p.bias,
                         dilation=p.dilation)
        self.set_activation(p.activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, filters, H', W')
        return self.activate(super().forward(x))


def _tconv_shape(p: ConvTransposeParams, shapes: list[Shape]) -> Shape:
    _, h, w = _image(shapes[0])
    oh, ow = (transpose_size(i, p.kernel, p.stride, p.padding, p.output_padding, p.dilation) for i in (h, w))
    if oh < 1 or ow < 1:
        raise ShapeError(f"padding {p.padding} removes the whole {h}×{w} output: lower the padding")
    if oh > MAX_UNITS or ow > MAX_UNITS:
        raise ShapeError(f"would make a {oh}×{ow} image")
    return (p.filters, oh, ow)


def _tconv_formula(i: int, p: ConvTransposeParams) -> str:
    o = transpose_size(i, p.kernel, p.stride, p.padding, p.output_padding, p.dilation)
    k = f"{p.dilation}·({p.kernel}−1)+1" if p.dilation != 1 else f"{p.kernel}"
    return f"{p.stride}·({i} − 1) + {k} − 2·{p.padding} + {p.output_padding} = {o}"


register(Op(
    name="conv_transpose2d", family="convolution", key_params=("filters", "kernel", "stride"),
    doc="Transposed convolution: spreads each input pixel over a k×k window, upsampling by the stride.",
    params=ConvTransposeParams, inputs=(1, 1), shape=_tconv_shape,
    build=lambda p, s, ctx: ActivatedConvTranspose(s[0][0], p),
    count=lambda p, s: s[0][0] * p.filters * p.kernel**2 + (p.filters if p.bias else 0) + (p.activation == "prelu"),
    penalized=("weight",),
    explain=lambda p, s: f"H: {_tconv_formula(s[0][1], p)}\nW: {_tconv_formula(s[0][2], p)}",
))


class UpsampleParams(Params):
    scale: int = Field(2, ge=1, le=16)
    mode: Literal["nearest", "bilinear"] = "nearest"


class Upsample(nn.Module):
    def __init__(self, p: UpsampleParams) -> None:
        super().__init__()
        self.scale, self.mode = p.scale, p.mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C, sH, sW)
        align = False if self.mode == "bilinear" else None
        return F.interpolate(x, scale_factor=self.scale, mode=self.mode, align_corners=align)


def _up_shape(p: UpsampleParams, shapes: list[Shape]) -> Shape:
    c, h, w = _image(shapes[0])
    return (c, h * p.scale, w * p.scale)


register(Op(
    name="upsample", family="convolution", key_params=("scale", "mode"), doc="Enlarges the image by an integer factor (nearest or bilinear).",
    params=UpsampleParams, inputs=(1, 1), shape=_up_shape, build=lambda p, s, ctx: Upsample(p),
    explain=lambda p, s: f"{s[0][1]}·{p.scale} = {s[0][1] * p.scale}, {s[0][2]}·{p.scale} = {s[0][2] * p.scale}",
))
