"""Colours: TensorFlow Playground's orange (−) / blue (+) diverging map and class colours, as numpy LUTs, and the
categorical palette that tells layers apart."""
from __future__ import annotations

import colorsys

import numpy as np

NEGATIVE = (245, 147, 34)  # orange: class 0, negative values
NEUTRAL = (232, 234, 235)
POSITIVE = (8, 119, 189)  # blue: class 1, positive values
CLASS_COLORS = np.array([NEGATIVE, POSITIVE, (76, 175, 80), (171, 71, 188), (229, 57, 53), (96, 125, 139)],
                        dtype=np.float32)
# Maps drawn under data points are painted at this opacity over white, as TensorFlow Playground paints its
# heatmaps: a point at full colour then stands out even where the map has saturated to the point's own class.
BACKGROUND_ALPHA = 160 / 255
# Tableau 10, made for telling lines apart, with its two lightest (yellow, grey) last: they read worst on white.
LAYER_COLORS = ((78, 121, 167), (242, 142, 43), (225, 87, 89), (118, 183, 178), (89, 161, 79), (176, 122, 161),
                (255, 157, 167), (156, 117, 95), (237, 201, 72), (186, 176, 172))


def _diverging(n: int = 256) -> np.ndarray:
    t = np.linspace(-1.0, 1.0, n, dtype=np.float32)[:, None]
    neg, mid, pos = (np.array(c, dtype=np.float32) for c in (NEGATIVE, NEUTRAL, POSITIVE))
    lut = np.where(t < 0, mid + (neg - mid) * -t, mid + (pos - mid) * t)
    return lut.round().astype(np.uint8)  # (n, 3)


def lighten(rgb: np.ndarray) -> np.ndarray:
    """Colours (…, 3) as they look painted at `BACKGROUND_ALPHA` over white (uint8)."""
    rgb = np.asarray(rgb, dtype=np.float32)
    return (rgb * BACKGROUND_ALPHA + 255 * (1 - BACKGROUND_ALPHA)).round().astype(np.uint8)


DIVERGING = _diverging()
LIGHT_DIVERGING = lighten(DIVERGING)  # precomputed: the output view indexes it every frame


def diverging_index(values: np.ndarray, scale: float) -> np.ndarray:
    """Values in [−scale, scale] (clipped; NaN as 0) as indices into a diverging LUT."""
    v = np.nan_to_num(np.asarray(values, dtype=np.float32) / scale, nan=0.0)
    return ((np.clip(v, -1.0, 1.0) + 1.0) * 0.5 * (len(DIVERGING) - 1)).round().astype(np.intp)


def class_palette(n: int) -> np.ndarray:
    """(n, 3) uint8 colours for n classes: the class colours, four more from the layer palette, then hues spread
    by the golden angle (neighbours stay apart)."""
    base = [*(tuple(int(v) for v in c) for c in CLASS_COLORS), *(LAYER_COLORS[i] for i in (3, 7, 6, 8))]
    if n <= len(base):
        return np.array(base[:max(n, 1)], dtype=np.uint8)
    hues = (np.arange(n) * 0.618034) % 1.0
    return (np.array([colorsys.hsv_to_rgb(h, 0.7, 0.85) for h in hues]) * 255).round().astype(np.uint8)


def diverging_rgb(values: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Values in [−scale, scale] (clipped) as (…, 3) uint8 colours; NaN shows as neutral."""
    return DIVERGING[diverging_index(values, scale)]


def output_rgb(output: np.ndarray, activation: str, discretize: bool = False, light: bool = True) -> np.ndarray:
    """The head's output on the grid (C, G, G) as an RGB image (G, G, 3): the decision boundary's colours,
    lightened (`BACKGROUND_ALPHA`) so the data points drawn over it keep their full colour; ``light=False``
    for a map with no points over it (the Network view's thumbnails, drawn at full strength like its neurons)."""
    if output.shape[0] > 1 and activation == "softmax":
        k = output.shape[0]
        if k == 2:  # two-class softmax reads as p(class 1) − p(class 0)
            return output_rgb(output[1:2] - output[0:1], "tanh", discretize, light)
        cls = output.argmax(axis=0)
        conf = np.ones_like(cls, dtype=np.float32) if discretize else (output.max(axis=0) - 1 / k) / (1 - 1 / k)
        base = CLASS_COLORS[cls % len(CLASS_COLORS)]
        mix = np.clip(conf, 0, 1)[..., None] * 0.85
        rgb = np.array(NEUTRAL, dtype=np.float32) * (1 - mix) + base * mix
        return lighten(rgb) if light else rgb.round().astype(np.uint8)
    v = output[0]
    if activation == "sigmoid":
        v = v * 2 - 1
    if discretize:
        v = np.sign(v)
    return (LIGHT_DIVERGING if light else DIVERGING)[diverging_index(v, 1.0)]


def neuron_rgb(values: np.ndarray, discretize: bool = False) -> np.ndarray:
    """One hidden unit's output over the plane (G, G) as a lightened RGB image (G, G, 3), on the Network view's
    scale: bounded activations keep their natural ±1, unbounded ones (ReLU, …) are scaled to their own peak."""
    v = np.asarray(values, dtype=np.float32)
    if discretize:
        v = np.sign(v)
    return LIGHT_DIVERGING[diverging_index(v, max(float(np.nan_to_num(np.abs(v)).max(initial=0.0)), 1.0))]


def label_colors(labels: np.ndarray, task: str) -> np.ndarray:
    """Point colours (N, 3) uint8: class colours, or the diverging map for regression targets."""
    if task == "regression":
        return diverging_rgb(labels)
    return CLASS_COLORS[np.asarray(labels, dtype=np.intp) % len(CLASS_COLORS)].astype(np.uint8)
