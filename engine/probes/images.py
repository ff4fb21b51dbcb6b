"""Probes for image classifiers: the test set's predictions with a confusion matrix, and the saliency of chosen
test images (vanilla gradient, SmoothGrad, Integrated Gradients or Grad-CAM, through Captum: `attribution.py`).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..datasets import family_of
from ..graph import GraphInfo
from .registry import Probe, ProbeContext, ProbeRequest, own, register
from .sequences import TAKES as SEQUENCE_TAKES
from .sequences import is_sequences, sequence_predictions

SALIENCY_SAMPLES = 1  # what the live view asks for: the selected sample only


def _images(info: GraphInfo, dataset_spec: Any) -> bool:
    """An image classifier (an autoencoder's pictures have no class to predict or explain)."""
    return family_of(dataset_spec).kind == "images" and dataset_spec.task == "classification"


def _test(ctx: ProbeContext) -> tuple[torch.Tensor, torch.Tensor]:
    """The test inputs and labels on the model's device, made once a run."""
    dev = ctx.x_train.device
    x = ctx.inputs("test")
    y = ctx.constant("y_test", lambda: torch.from_numpy(ctx.data.y_test).to(dev))
    return x, y


def confusion_matrix(label: np.ndarray, prediction: np.ndarray, k: int) -> np.ndarray:
    """(k, k) counts: row = true class, column = predicted class."""
    return np.bincount(label * k + prediction, minlength=k * k).reshape(k, k).astype(np.int64)


def per_class_scores(confusion: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall and F1 per class (0 where a class was never predicted or never present)."""
    tp = np.diag(confusion).astype(np.float64)
    predicted, actual = confusion.sum(axis=0), confusion.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(tp), where=both > 0)
    return {"precision": precision.astype(np.float32), "recall": recall.astype(np.float32),
            "f1": f1.astype(np.float32)}


def predictions(ctx: ProbeContext, request: ProbeRequest) -> dict[str, np.ndarray]:
    """Over the test set: ``label``, ``prediction`` (M,), ``confidence`` (M,), the predicted class's
    probability), ``probabilities`` (M, K), ``confusion`` (K, K: row true, column predicted) and per-class
    ``precision``, ``recall``, ``f1``."""
    values = ctx.forward_rows("test")
    probs = torch.softmax(values[ctx.model.info.output_id], dim=1)
    confidence, prediction = probs.max(dim=1)
    label = ctx.data.y_test.astype(np.int64)
    pred = prediction.cpu().numpy().astype(np.int64)
    k = probs.shape[1]
    confusion = confusion_matrix(label, pred, k)
    return {"label": label.copy(), "prediction": pred, "confidence": own(confidence), "probabilities": own(probs),
            "confusion": confusion, **per_class_scores(confusion)}


def conv_layers(info: GraphInfo) -> list[str]:
    """Nodes whose output is an image (C, H, W), in order: the layers Grad-CAM can explain."""
    return [n for n in info.order if len(info.nodes[n].shape) == 3 and n != info.input_id]


def gradcam_default(info: GraphInfo) -> str | None:
    """Grad-CAM's usual layer: the last convolution (else the last layer with an image output)."""
    layers = conv_layers(info)
    convs = [n for n in layers if info.nodes[n].op == "conv2d"]
    return (convs or layers or [None])[-1]


def saliency(ctx: ProbeContext, request: ProbeRequest) -> dict[str, np.ndarray]:
    """For the chosen test images (``sample``, or ``samples`` a range; the live view's selection by default):
    ``input`` (N, C, H, W) the images as shown (before standardisation), ``attribution`` (N, C, H, W) by
    ``method``, ``label``, ``prediction``, ``target`` (N,), and for shapes ``box`` (N, 4: x0, y0, x1, y1,
    end-exclusive) with ``box_mass`` (N,), the share of each map's |attribution| inside the box, and, with
    clutter, ``patch_box`` (4,) and ``patch_mass`` (N,), the share on the distractor patch."""
    from ..attribution import METHODS, attribute

    method = request.method or "gradient"
    if method not in METHODS:
        raise KeyError(f"unknown saliency method {method!r} (known: {', '.join(METHODS)})")
    x_all, _ = _test(ctx)
    if request.split != "test":
        raise KeyError(f"saliency explains test images; split {request.split!r} is not offered")
    rows = _rows(request, len(x_all))
    x = x_all[rows]
    model, info = ctx.model, ctx.model.info
    layer = None
    if method == "gradcam":
        convs = conv_layers(info)
        name = request.layer or gradcam_default(info)
        if name is None or name not in convs:
            raise KeyError(f"Grad-CAM needs a layer with an image output (these have one: {', '.join(convs)})")
        layer = model.layers[name]
    with torch.no_grad(), model.evaluating():
        logits = model(x)
    prediction = logits.argmax(dim=1)
    if request.target is None:
        target = prediction
    else:
        k = logits.shape[1]
        if not 0 <= request.target < k:
            raise KeyError(f"target class {request.target} is outside 0 … {k - 1}")
        target = torch.full_like(prediction, request.target)
    attribution = attribute(model, x, target, method, layer=layer)
    meta = ctx.data.meta
    out = {"input": np.ascontiguousarray(np.asarray(meta["raw_test"])[rows], dtype=np.float32),
           "attribution": own(attribution), "label": ctx.data.y_test[rows].astype(np.int64),
           "prediction": prediction.cpu().numpy().astype(np.int64), "target": target.cpu().numpy().astype(np.int64),
           "rows": rows.astype(np.int64)}
    if "boxes_test" in meta:
        out["box"] = np.asarray(meta["boxes_test"])[rows].astype(np.int64)
        out["box_mass"] = attribution_mass(out["attribution"], out["box"]).astype(np.float32)
    if "patch_box" in meta:
        out["patch_box"] = np.asarray(meta["patch_box"], dtype=np.int64)
        patch = np.broadcast_to(out["patch_box"], (len(rows), 4))
        out["patch_mass"] = attribution_mass(out["attribution"], patch).astype(np.float32)
    return out


def _rows(request: ProbeRequest, n: int) -> np.ndarray:
    if request.samples is not None:
        start, stop = request.samples
        if not 0 <= start < stop <= n:
            raise KeyError(f"samples {start}:{stop} are outside the test set (0:{n})")
        return np.arange(start, stop)
    sample = 0 if request.sample is None else request.sample
    if not 0 <= sample < n:
        raise KeyError(f"sample {sample} is outside the test set (0 … {n - 1})")
    return np.array([sample])


def attribution_mass(attribution: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Per image, the share of |attribution| (summed over channels) that lies inside its box (x0, y0, x1, y1)."""
    a = np.abs(attribution).sum(axis=1)  # (N, H, W)
    inside = np.zeros_like(a, dtype=bool)
    for i, (x0, y0, x1, y1) in enumerate(boxes.tolist()):
        inside[i, y0:y1, x0:x1] = True
    total = a.sum(axis=(1, 2))
    return np.divide((a * inside).sum(axis=(1, 2)), total, out=np.zeros_like(total), where=total > 0)


def _predicted(info: GraphInfo, dataset_spec: Any) -> bool:
    """An image classifier, or any sequence set (its answers token by token, or its classes: sequences.py)."""
    return _images(info, dataset_spec) or is_sequences(dataset_spec)


def any_predictions(ctx: ProbeContext, request: ProbeRequest) -> dict[str, np.ndarray]:
    """An image classifier's whole test set (it takes no options), or a sequence set's examples."""
    if is_sequences(ctx.dataset_spec):
        return sequence_predictions(ctx, request)
    for option in ("samples", "method", "width", "temperature"):
        if getattr(request, option) is not None:
            raise KeyError(f"an image classifier's predictions cover the whole test set: no {option} to choose")
    if request.split != "test":
        raise KeyError(f"an image classifier's predictions cover the test set; split {request.split!r} is not "
                       "offered")
    return predictions(ctx, request)


register(Probe("predictions", "test-set predictions, confidences, confusion matrix and per-class scores (images); "
               "a sequence set's answers (greedy, beam or sampled) with each token's confidence",
               _predicted, any_predictions, takes=SEQUENCE_TAKES))
register(Probe("saliency", "attribution of test images' pixels to a class (gradient, smoothgrad, "
               "integrated_gradients, gradcam)", _images, saliency,
               takes=frozenset({"sample", "samples", "layer", "method", "target", "split"})))


def drawing(ctx: ProbeContext, request: ProbeRequest) -> dict[str, np.ndarray]:
    """A picture someone drew (``pixels``: the data's own picture size, row by row, in [0, 1]: the model's
    input size, or 8×8 for digits scaled up; blank without one), put through the data's own preprocessing:
    ``input`` (C, H, W) as the network's input size before standardising, ``model_input`` as the network sees
    it, ``probabilities`` (K,) and the vanilla-gradient ``attribution`` (C, H, W) of the likeliest class."""
    from ..attribution import attribute
    from ..datasets.images import preprocess, rescale

    meta = ctx.data.meta
    shape = ctx.data.x_test.shape[1:]
    drawn = drawing_shape(ctx.data)
    if request.pixels is None:
        raw = np.zeros(shape, dtype=np.float32)
    else:
        if len(request.pixels) != int(np.prod(drawn)):
            raise KeyError(f"a drawing for this network has {int(np.prod(drawn))} pixels "
                           f"({' × '.join(map(str, drawn))}), not {len(request.pixels)}")
        picture = np.clip(np.asarray(request.pixels, dtype=np.float32).reshape(drawn), 0.0, 1.0)
        raw = rescale(picture[None], int(shape[-1]))[0]  # as the data's own pictures are scaled (or unchanged)
    x_np = preprocess(raw[None], np.asarray(meta["mean"]), np.asarray(meta["std"]))
    x = torch.from_numpy(x_np).to(ctx.x_train.device)
    model = ctx.model
    with torch.no_grad(), model.evaluating():
        probs = torch.softmax(model(x), dim=1)[0]
    target = probs.argmax().reshape(1)
    attribution = attribute(model, x, target, "gradient")[0]
    return {"input": raw, "model_input": x_np[0], "probabilities": own(probs), "attribution": own(attribution)}


def drawing_shape(data: Any) -> tuple[int, ...]:
    """The (C, H, W) a drawing is made at: the set's own picture size (8×8 for digits, even scaled up)."""
    native = data.meta.get("native_test")
    return tuple(native.shape[1:]) if native is not None else tuple(data.x_test.shape[1:])


register(Probe("drawing", "a drawn picture's class probabilities and gradient saliency", _images, drawing,
               takes=frozenset({"pixels"})))
