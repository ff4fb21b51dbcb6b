"""Features: what a CNN's layers make of the selected test image. One layer's feature maps (a conv, a pool: any
layer with an image output), each channel scaled to its own largest |value|, and below them the first
convolution's kernels, the filters it has learned, on one shared scale. Blue is positive, orange negative."""
from __future__ import annotations

from collections.abc import Hashable

import numpy as np
from PySide6.QtCore import QRect, QSize, Qt, Slot
from PySide6.QtGui import QColor, QFont, QImage, QMouseEvent, QPainter, QPaintEvent, QPen, QPixmap, QResizeEvent
from PySide6.QtWidgets import QComboBox, QLabel, QSizePolicy, QSlider, QWidget

from engine import EngineError, SessionSpec, Snapshot
from engine.check import check_spec
from engine.datasets import family_of
from engine.probes import ProbeRequest
from engine.probes.features import default_layer

from ..colors import diverging_rgb
from ..controller import Controller, RunInfo
from .base import LiveView, control_row
from .saliency import rgb_image

GAP = 6  # pixels between cells
LABEL_H = 13  # the channel index under each cell
HEADER_H = 18  # a section's title
MAX_MAP = 120  # largest side of one feature map, in pixels
MAX_KERNEL = 30  # largest side of one kernel square
MAX_INPUTS = 3  # kernels over more input channels show their sum over them
BORDER, INK, FAINT = QColor(185, 185, 185), QColor(45, 45, 45), QColor(160, 160, 160)


def has_feature_maps(spec: SessionSpec) -> bool:
    """The session classifies images with a network that has a layer with an image output (a convolution)."""
    if family_of(spec.dataset).kind != "images":
        return False
    try:
        return default_layer(check_spec(spec)) is not None
    except (EngineError, ValueError):
        return False


def scaled(a: np.ndarray) -> np.ndarray:
    """(C, H, W) maps, each divided by its own largest |value| (an all-zero map stays 0)."""
    top = np.abs(a).reshape(len(a), -1).max(axis=1, initial=0.0)
    return a / np.where(top > 0, top, 1.0)[:, None, None]


def grey_qimage(image: np.ndarray) -> QImage:
    """(C, H, W) in [0, 1] as a grey picture (the channels' mean)."""
    g = np.clip(image.mean(axis=0) * 255 + 0.5, 0, 255).astype(np.uint8)
    return rgb_image(np.repeat(g[..., None], 3, axis=2))


def fit_grid(n: int, width: int, height: int, aspect: float, max_side: int) -> tuple[int, int]:
    """(columns, side) that fit n cells of side × side·aspect pixels, each with a label under it, in the box: the
    largest side, then the fewest rows (height left to the rest), then the fewest columns (balanced rows)."""
    best, best_key = (1, 0), (0, 0, 0)
    for cols in range(1, max(n, 1) + 1):
        rows = -(-n // cols)
        side = min(int((width - GAP * (cols + 1)) / (cols * aspect)), (height - rows * (LABEL_H + GAP)) // rows,
                   max_side)
        key = (side, -rows, -cols)
        if key > best_key:
            best, best_key = (cols, side), key
    return best


class FeaturePicture(QWidget):
    """The maps and kernels, rendered into a pixmap when the view draws; painting only copies it."""

    def __init__(self, view: FeaturesView) -> None:
        super().__init__()
        self.view = view
        self.pixmap: QPixmap | None = None
        self.cells: list[tuple[QRect, str]] = []  # where each picture is, and what it shows (for tooltips)
        self.setMinimumSize(240, 200)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(True)

    def render(self, maps: np.ndarray, image: np.ndarray, layer: str, kernels: np.ndarray | None,
               kernel_node: str) -> None:
        """Lay out and paint: the input and the layer's maps on top, the first convolution's kernels below."""
        size, ratio = self.size(), self.devicePixelRatioF()
        pixmap = QPixmap(QSize(max(1, round(size.width() * ratio)), max(1, round(size.height() * ratio))))
        pixmap.setDevicePixelRatio(ratio)
        pixmap.fill(QColor(255, 255, 255))
        self.cells = []
        p = QPainter(pixmap)
        font = QFont(p.font())
        font.setPointSizeF(font.pointSizeF() * 0.85)
        p.setFont(font)
        w, h = size.width(), size.height()
        bottom = h
        if kernels is not None and len(kernels):
            bottom = self._kernels(p, kernels, kernel_node, w, h)
        self._maps(p, maps, image, layer, w, bottom)
        p.end()
        self.pixmap = pixmap
        self.update()

    def _title(self, p: QPainter, y: int, text: str) -> None:
        p.setPen(INK)
        p.drawText(QRect(GAP, y, self.width() - 2 * GAP, HEADER_H), Qt.AlignmentFlag.AlignLeft
                   | Qt.AlignmentFlag.AlignVCenter, text)

    def _cell(self, p: QPainter, box: QRect, img: QImage, label: str, tip: str, faint: bool = False) -> None:
        p.drawImage(box, img)
        p.setPen(QPen(BORDER, 1))
        p.drawRect(box.adjusted(-1, -1, 0, 0))
        p.setPen(FAINT if faint else INK)
        p.drawText(QRect(box.x() - GAP // 2, box.bottom() + 1, box.width() + GAP, LABEL_H),
                   Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, label)
        self.cells.append((box, tip))

    def _maps(self, p: QPainter, maps: np.ndarray, image: np.ndarray, layer: str, w: int, h: int) -> None:
        c, mh, mw = maps.shape
        self._title(p, 0, f"{layer}: {c} feature maps of {mh}×{mw}, each scaled to its own largest |value|")
        aspect = mw / mh
        cols, side = fit_grid(c + 1, w, h - HEADER_H, aspect, MAX_MAP)
        side = max(side, 4)
        cw = max(1, round(side * aspect))
        tops = np.abs(maps).reshape(c, -1).max(axis=1)
        pictures = [(grey_qimage(image), "input", "the test image, as shown", False)]
        pictures += [(rgb_image(diverging_rgb(m)), str(k), f"{layer} channel {k}: largest |value| {tops[k]:.3g}"
                      + (" (all zero for this image)" if tops[k] == 0 else ""), tops[k] == 0)
                     for k, m in enumerate(scaled(maps))]
        for k, (img, label, tip, faint) in enumerate(pictures):
            r, col = divmod(k, cols)
            box = QRect(GAP + col * (cw + GAP), HEADER_H + r * (side + LABEL_H + GAP), cw, side)
            self._cell(p, box, img, label, tip, faint)

    def _kernels(self, p: QPainter, weights: np.ndarray, node: str, w: int, h: int) -> int:
        """Paint the kernels at the bottom; return the y where they begin."""
        n, k_in, kh, kw = weights.shape
        summed = k_in > MAX_INPUTS
        shown = weights.sum(axis=1, keepdims=True) if summed else weights
        parts = shown.shape[1]
        top = float(np.abs(shown).max(initial=0.0)) or 1.0
        aspect = parts * kw / kh + (parts - 1) * 0.25  # room for the 2-pixel gaps between a filter's inputs
        budget = max(int(h * 0.38), HEADER_H + LABEL_H + 12)
        cols, side = fit_grid(n, w, budget - HEADER_H, aspect, MAX_KERNEL)
        side = max(side, 4)
        rows = -(-n // cols)
        y0 = h - (HEADER_H + rows * (side + LABEL_H + GAP))
        what = f"summed over its {k_in} inputs" if summed else (f"{k_in} inputs side by side" if k_in > 1 else "")
        self._title(p, y0, f"{node}'s kernels: {n} × {k_in} × {kh}×{kw}{', ' + what if what else ''}; "
                    f"one scale, ±{top:.2g}")
        pw = max(1, round(side * kw / kh))
        group = parts * pw + (parts - 1) * 2
        for f in range(n):
            r, col = divmod(f, cols)
            x, y = GAP + col * (group + GAP), y0 + HEADER_H + r * (side + LABEL_H + GAP)
            for j in range(parts):
                tip = f"{node} filter {f}" + ("" if parts == 1 or summed else f", input {j}")
                tip += f": weights {shown[f, j].min():+.3g} … {shown[f, j].max():+.3g}"
                self._cell(p, QRect(x + j * (pw + 2), y, pw, side), rgb_image(diverging_rgb(shown[f, j], top)), "",
                           tip)
            p.setPen(INK)
            p.drawText(QRect(x - GAP // 2, y + side + 1, group + GAP, LABEL_H),
                       Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, str(f))
        return y0 - GAP

    def paintEvent(self, event: QPaintEvent) -> None:
        if self.pixmap is None:
            return
        p = QPainter(self)
        p.drawPixmap(0, 0, self.pixmap)
        p.end()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position().toPoint()
        self.setToolTip(next((tip for box, tip in self.cells if box.adjusted(-1, -1, 1, 1).contains(pos)), ""))

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.view.refresh()  # the frame key holds the size: draw again to fit


class FeaturesView(LiveView):
    """One layer's feature maps of the selected test image, and the first convolution's kernels."""

    probes = frozenset({"feature_maps", "kernels"})

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(controller, parent)
        # small, scrolling if need be: a dock put away still counts in the window's minimum height
        self.setMinimumSize(200, 120)
        self.layer = QComboBox()
        self.layer.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.layer.setToolTip("The layer whose feature maps are shown: any layer with an image output "
                              "(convolutions, pools); the first convolution by default")
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        self.caption.setToolTip("Blue is positive, orange negative, light grey zero. Click an image in Samples to "
                                "see its feature maps")
        self.picture = FeaturePicture(self)
        self.picture.setToolTip("Hover a map or a kernel for its values")
        self.column(control_row("layer", self.layer), self.caption, (self.picture, 1))
        self.drawn_maps = 0  # feature maps in the picture now (the tests wait on it)
        self.drawn_kernels = 0
        self.layer.currentIndexChanged.connect(self._ask)
        controller.sample_changed.connect(self._ask)

    def choices(self) -> dict[str, QComboBox | QSlider]:
        return {"layer": self.layer}

    def on_run(self, run: RunInfo) -> None:
        layers = run.image_layers()
        keep = self.layer.currentData()
        self.layer.blockSignals(True)
        self.layer.clear()
        for n in layers:
            shape = "×".join(str(d) for d in run.nodes[n].shape)
            self.layer.addItem(f"{n} ({run.nodes[n].op}, {shape})", n)
        at = self.layer.findData(keep)
        if at < 0:  # the first convolution, else the first layer with an image output
            at = next((i for i, n in enumerate(layers) if run.nodes[n].op == "conv2d"), 0)
        self.layer.setCurrentIndex(at)
        self.layer.blockSignals(False)
        self._ask()

    def request(self) -> ProbeRequest:
        return ProbeRequest(sample=self.controller.sample, layer=self.layer.currentData())

    @Slot()
    def _ask(self) -> None:
        if self.layer.count():
            self.controller.ask_probe("feature_maps", self.request())

    def frame_key(self, snap: Snapshot | None) -> Hashable:
        return super().frame_key(snap), self.picture.width(), self.picture.height()


    def draw(self, snap: Snapshot | None) -> None:
        assert snap is not None
        a = snap.probes["feature_maps"].arrays
        k = snap.probes["kernels"].arrays if "kernels" in snap.probes else None
        maps, layer, sample = a["maps"], str(a["layer"][0]), int(a["sample"][0])
        weights = k["weights"] if k is not None else None
        self.picture.render(maps, a["input"], layer, weights, str(k["node"][0]) if k is not None else "")
        self.drawn_maps, self.drawn_kernels = len(maps), 0 if weights is None else len(weights)
        dead = int((np.abs(maps).reshape(len(maps), -1).max(axis=1) == 0).sum())
        self.caption.setText(f"test image {sample} (label {self.class_name(int(a['label'][0]))}) through {layer}: "
                             f"{len(maps)} maps" + (f", {dead} all zero" if dead else "")
                             + ". Blue +, orange −. Click an image in Samples to see another.")
