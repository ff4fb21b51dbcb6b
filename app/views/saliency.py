"""Saliency: which pixels of the selected test image the network's answer depends on, by vanilla gradient,
SmoothGrad, Integrated Gradients or Grad-CAM (Captum, through the engine's saliency probe), for the predicted
class or a chosen one; the map beside the image or over it, with a colour bar."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRect, Qt, Slot
from PySide6.QtGui import QColor, QImage, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QLabel,
    QSizePolicy,
    QSlider,
    QWidget,
)

from engine import Snapshot
from engine.probes import ProbeRequest

from ..controller import Controller, RunInfo
from .base import LiveView, control_row

METHOD_TITLES = {"gradient": "Gradient", "smoothgrad": "SmoothGrad", "integrated_gradients": "Integrated Gradients",
                 "gradcam": "Grad-CAM"}
METHOD_TIPS = {
    "gradient": "|∂ score / ∂ pixel|: how much a small change of each pixel moves the class's score",
    "smoothgrad": "The gradient averaged over noisy copies of the image: less speckle, the same idea",
    "integrated_gradients": "Gradients summed along a path from a black image to this one; the maps add up to "
                            "the score's change",
    "gradcam": "A conv layer's feature maps weighted by their gradients, upsampled: where the layer looked",
}
LUT = pg.colormap.get("inferno").getLookupTable(0.0, 1.0, 256)  # (256, 3) uint8, dark → bright


def heat(a: np.ndarray) -> tuple[np.ndarray, float]:
    """(H, W) attribution to (H, W) values in [0, 1] by |a| over its maximum, and that maximum."""
    m = np.abs(a)
    top = float(m.max()) if m.size else 0.0
    return (m / top if top > 0 else m), top


def picture_rgb(images: np.ndarray) -> np.ndarray:
    """Pictures (…, C, H, W) in [0, 1] to (…, H, W, 3) uint8 as the data looks (bright is ink): colour for three
    channels, grey (the channels' mean) otherwise. Every view that shows an input picture comes through here."""
    a = np.asarray(images)
    rgb = np.moveaxis(a, -3, -1) if a.shape[-3] == 3 else np.repeat(a.mean(axis=-3)[..., None], 3, axis=-1)
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


def rgb_image(rgb: np.ndarray) -> QImage:
    """(H, W, 3) uint8 as a QImage that owns its pixels."""
    a = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w, _ = a.shape
    return QImage(a.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def pictures(image: np.ndarray, attribution: np.ndarray, overlay: bool) -> list[np.ndarray]:
    """The (H, W, 3) pictures to show: the image and the map, or the map blended over the image."""
    grey = np.clip(image.mean(axis=0), 0, 1)
    values, _ = heat(attribution.sum(axis=0))
    colours = LUT[np.clip((values * 255).round().astype(int), 0, 255)]
    base = np.repeat((grey * 255)[..., None], 3, axis=2)
    if overlay:
        alpha = 0.35 + 0.65 * values[..., None]  # strong attribution shows its colour; weak lets the image through
        return [(base * (1 - alpha) * 0.6 + colours * alpha).clip(0, 255).astype(np.uint8)]
    return [base.astype(np.uint8), colours.astype(np.uint8)]


class SaliencyPicture(QWidget):
    """The pictures side by side, scaled up with square pixels, and a colour bar."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[QImage] = []
        self.titles: list[str] = []
        self.top = 0.0
        self.setMinimumSize(220, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def show_pictures(self, images: list[QImage], titles: list[str], top: float) -> None:
        self.images, self.titles, self.top = images, titles, top
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(255, 255, 255))
        if not self.images:
            p.end()
            return
        bar_w, gap, title_h = 44, 10, 18
        n = len(self.images)
        side = max(16, min((self.width() - bar_w - gap * (n + 1)) // n, self.height() - title_h - 8))
        for k, (img, title) in enumerate(zip(self.images, self.titles)):
            x = gap + k * (side + gap)
            p.setPen(QColor(40, 40, 40))
            p.drawText(QRect(x, 2, side, title_h), Qt.AlignmentFlag.AlignCenter, title)
            p.drawImage(QRect(x, title_h + 4, side, side), img)
            p.setPen(QPen(QColor(150, 150, 150), 1))
            p.drawRect(QRect(x - 1, title_h + 3, side + 1, side + 1))
        x = gap + n * (side + gap)
        y0, h = title_h + 4, side
        for i in range(h):  # the colour bar, bright (the maximum) at the top
            c = LUT[round(255 * (1 - i / max(h - 1, 1)))]
            p.fillRect(QRect(x, y0 + i, 12, 1), QColor(int(c[0]), int(c[1]), int(c[2])))
        p.setPen(QColor(40, 40, 40))
        p.drawText(QRect(x + 14, y0 - 6, bar_w, 14), Qt.AlignmentFlag.AlignLeft, f"{self.top:.2g}")
        p.drawText(QRect(x + 14, y0 + h - 8, bar_w, 14), Qt.AlignmentFlag.AlignLeft, "0")
        p.end()


class SaliencyView(LiveView):
    """The selected test image's saliency map for a chosen method and class."""

    probes = frozenset({"saliency"})

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(controller, parent)
        # small, scrolling if need be: a dock put away still counts in the window's minimum height
        self.setMinimumSize(200, 120)
        self.method = QComboBox()
        for key, title in METHOD_TITLES.items():
            self.method.addItem(title, key)
            self.method.setItemData(self.method.count() - 1, METHOD_TIPS[key], Qt.ItemDataRole.ToolTipRole)
        self.method.setToolTip("How the map is computed (hover an entry for what it means)")
        self.layer = QComboBox()
        self.layer.setToolTip("Grad-CAM: the convolution layer whose feature maps are weighed")
        self.target = QComboBox()
        self.target.setToolTip("The class whose score is explained: the predicted one, or any other")
        self.target.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.target.setMinimumContentsLength(9)
        self.layer.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.overlay = QCheckBox("Overlay")
        self.overlay.setToolTip("Draw the map over the image instead of beside it")
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        self.picture = SaliencyPicture()
        self.column(control_row("method", self.method, "layer", self.layer, "class", self.target, self.overlay),
                    self.caption, (self.picture, 1))
        for box in (self.method, self.layer, self.target):
            box.currentIndexChanged.connect(self._ask)
        self.overlay.toggled.connect(self.redraw)
        controller.sample_changed.connect(self._ask)

    def toggles(self) -> dict[str, QCheckBox]:
        return {"overlay": self.overlay}

    def choices(self) -> dict[str, QComboBox | QSlider]:
        return {"method": self.method, "layer": self.layer, "target": self.target}

    def on_run(self, run: RunInfo) -> None:
        convs = run.image_layers()
        for box, items in ((self.layer, [(n, n) for n in convs]),
                           (self.target, [("predicted", None), *[(c, k) for k, c in enumerate(run.classes)]])):
            keep = box.currentData()
            box.blockSignals(True)
            box.clear()
            for title, data in items:
                box.addItem(title, data)
            at = box.findData(keep)
            if at < 0 and box is self.layer:  # Grad-CAM's usual layer: the last convolution
                at = max((i for i, n in enumerate(convs) if run.nodes[n].op == "conv2d"), default=len(items) - 1)
            box.setCurrentIndex(max(at, 0))
            box.blockSignals(False)
        self._ask()

    def request(self) -> ProbeRequest:
        method = self.method.currentData()
        return ProbeRequest(sample=self.controller.sample, method=method, target=self.target.currentData(),
                            layer=self.layer.currentData() if method == "gradcam" else None)

    @Slot()
    def _ask(self) -> None:
        self.layer.setEnabled(self.method.currentData() == "gradcam")
        self.controller.ask_probe("saliency", self.request())


    def draw(self, snap: Snapshot | None) -> None:
        assert snap is not None
        a = snap.probes["saliency"].arrays
        image, attribution = a["input"][0], a["attribution"][0]
        row, label, pred, target = (int(a[k][0]) for k in ("rows", "label", "prediction", "target"))
        _values, top = heat(attribution.sum(axis=0))
        overlay = self.overlay.isChecked()
        method = METHOD_TITLES.get(self.method.currentData(), "")
        titles = [f"{method} over the image"] if overlay else ["image", method]
        self.picture.show_pictures([rgb_image(p) for p in pictures(image, attribution, overlay)], titles, top)
        verdict = "right" if label == pred else "wrong"
        self.caption.setText(f"test image {row}: label {self.class_name(label)}, predicted {self.class_name(pred)} ({verdict}); "
                             f"explaining class {self.class_name(target)}. Click an image in Samples to explain it.")

