"""Reconstructions: the first test pictures above what the autoencoder gives back for them, with the same
pictures through added noise between them when the noise slider is up (a denoising autoencoder should give
back the clean picture), and the mean squared error of each row against the clean pictures."""
from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QEvent, QPoint, QRect, Qt, Slot
from PySide6.QtGui import QColor, QHelpEvent, QImage, QPainter, QPaintEvent, QResizeEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QSlider, QToolTip, QWidget

from engine import Snapshot
from engine.probes import ProbeRequest
from engine.probes.latent import RECONSTRUCTIONS

from ..controller import Controller, RunInfo
from .base import DOCK_MIN_HEIGHT, LiveView, control_row, text_label
from .saliency import picture_rgb

SHOWN = RECONSTRUCTIONS  # test pictures shown: the first of the test set, the same every round
MAX_NOISE = 50  # the slider's top, in % of full brightness
LABEL_W = 58  # the row names' column, left of the pictures
MIN_SIDE = 36  # a picture's side, in screen pixels, below which the row wraps into more blocks
PAPER, INK, FAINT = QColor(255, 255, 255), QColor(45, 45, 45), QColor(150, 150, 150)
NOISE_TIP = "Noise added to the pictures shown, to test a denoising autoencoder (Gaussian, its standard deviation " \
            "a share of full brightness); 0 shows the clean pictures"
EMPTY = "The reconstructions appear at the next probe round (press play, or step once)."
NO_CODE = "Nothing to show: this network has no hidden layer between its input and its output to encode into."


to_rgb = picture_rgb  # (N, C, H, W) pictures to (N, H, W, 3) uint8, as the other picture views draw them


class RowsPicture(QWidget):
    """Named rows of pictures as one image, scaled up with square pixels, white between the pictures. A row
    too long for the width wraps into blocks of 8 or 4 columns, each block repeating the row names."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []
        self.pictures = np.zeros((0, 0, 1, 1, 3), dtype=np.uint8)  # (rows, N, H, W, 3)
        self.tips: list[list[str]] = []  # per row, per picture: the tooltip
        self.message = EMPTY
        self.columns = SHOWN  # pictures per block
        self.gap = 1  # source pixels between pictures
        self.mosaic = np.zeros((0, 0, 3), dtype=np.uint8)  # what is drawn, in source pixels
        self.image: QImage | None = None
        self.scale = 1.0
        self.setMinimumSize(160, 60)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def show_rows(self, names: list[str], pictures: np.ndarray, tips: list[list[str]]) -> None:
        """Draw ``pictures`` (rows, N, H, W, 3) uint8, row k named ``names[k]``."""
        self.names, self.pictures, self.tips, self.message = names, pictures, tips, ""
        self._compose()

    def clear(self, message: str) -> None:
        self.names, self.tips, self.message, self.image = [], [], message, None
        self.pictures = np.zeros((0, 0, 1, 1, 3), dtype=np.uint8)
        self.mosaic = np.zeros((0, 0, 3), dtype=np.uint8)
        self.update()

    # --- layout, in source pixels ------------------------------------------------------------------

    def _size(self, columns: int) -> tuple[int, int]:
        """The mosaic's (height, width) with ``columns`` pictures a block."""
        rows, n, h, w, _ = self.pictures.shape
        blocks = math.ceil(n / columns)
        return blocks * rows * (h + self.gap) + (blocks - 1) * 3 * self.gap, columns * (w + self.gap) - self.gap

    def _fit(self, columns: int) -> float:
        h, w = self._size(columns)
        return min((self.width() - LABEL_W - 4) / max(w, 1), (self.height() - 4) / max(h, 1))

    def origin(self, k: int, row: int) -> tuple[int, int]:
        """Where picture k of row ``row`` starts in the mosaic: (y, x)."""
        rows, _n, h, w, _ = self.pictures.shape
        block, col = divmod(k, self.columns)
        return (block * rows + row) * (h + self.gap) + block * 3 * self.gap, col * (w + self.gap)

    def _compose(self) -> None:
        rows, n, h, w, _ = self.pictures.shape
        if rows == 0 or n == 0:
            self.clear(self.message or EMPTY)
            return
        self.gap = max(1, h // 8)
        # as many columns as keep the pictures largest (all in one row when they fit at MIN_SIDE)
        options = [c for c in (SHOWN, 8, 4) if c <= n] or [n]
        self.columns = next((c for c in options if self._fit(c) * w >= MIN_SIDE),
                            max(options, key=lambda c: (self._fit(c), c)))
        height, width = self._size(self.columns)
        mosaic = np.full((height, width, 3), 255, dtype=np.uint8)
        for r in range(rows):
            for k in range(n):
                y, x = self.origin(k, r)
                mosaic[y:y + h, x:x + w] = self.pictures[r, k]
        self.mosaic = mosaic
        self.image = QImage(mosaic.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()
        fit = max(self._fit(self.columns), 0.25)
        # whole screen pixels per picture pixel (even squares) where rounding down costs a fifth at most
        self.scale = math.floor(fit) if fit >= 2 and math.floor(fit) >= 0.8 * fit else fit
        self.update()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self.image is not None:
            self._compose()

    # --- painting and hovering ---------------------------------------------------------------------

    def _target(self) -> QRect:
        assert self.image is not None
        w, h = round(self.image.width() * self.scale), round(self.image.height() * self.scale)
        return QRect(LABEL_W + max(0, (self.width() - LABEL_W - 4 - w) // 2), 2, w, h)  # centred, names on its left

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), PAPER)
        if self.image is None:
            p.setPen(FAINT)
            p.drawText(self.rect().adjusted(8, 8, -8, -8), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                       self.message)
            p.end()
            return
        target = self._target()
        if self.pictures.shape[2] >= 16 and self.scale != int(self.scale):  # large pictures: smooth, not jagged
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        p.drawImage(target, self.image)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        p.setPen(INK)
        h = self.pictures.shape[2]
        blocks = math.ceil(self.pictures.shape[1] / self.columns)
        for block in range(blocks):
            for r, name in enumerate(self.names):
                y, _x = self.origin(block * self.columns, r)
                top = target.y() + round(y * self.scale)
                rect = QRect(target.x() - LABEL_W, top, LABEL_W - 6, max(round(h * self.scale), 14))
                p.drawText(rect, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, name)
        p.end()

    def at(self, pos: QPoint) -> tuple[int, int] | None:
        """(row, picture) under ``pos``, or None."""
        if self.image is None:
            return None
        target = self._target()
        sx, sy = (pos.x() - target.x()) / self.scale, (pos.y() - target.y()) / self.scale
        rows, n, h, w, _ = self.pictures.shape
        for k in range(n):
            for r in range(rows):
                y, x = self.origin(k, r)
                if x <= sx < x + w and y <= sy < y + h:
                    return r, k
        return None

    def event(self, e: QEvent) -> bool:
        """A tooltip names the picture under the mouse and gives its error."""
        if e.type() == QEvent.Type.ToolTip and isinstance(e, QHelpEvent):
            hit = self.at(e.pos())
            if hit is None:
                QToolTip.hideText()
                e.ignore()
            else:
                QToolTip.showText(e.globalPos(), self.tips[hit[0]][hit[1]], self)
            return True
        return super().event(e)


class ReconstructionsView(LiveView):
    """The first test pictures, optionally noisy, above the network's outputs for them."""

    probes = frozenset({"reconstruction"})

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(controller, parent)
        self.setMinimumSize(200, DOCK_MIN_HEIGHT)
        self.noise = QSlider(Qt.Orientation.Horizontal)
        self.noise.setRange(0, MAX_NOISE)
        self.noise.setSingleStep(1)
        self.noise.setPageStep(5)
        self.noise.setToolTip(NOISE_TIP)
        self.noise_label = QLabel()
        self.noise_label.setToolTip(NOISE_TIP)
        self.noise_label.setMinimumWidth(40)
        self.caption = text_label(rich=True, wrap=True)
        self.caption.setToolTip("Mean squared error per pixel against the clean test pictures, over the pictures "
                                "shown (hover a picture for its own)")
        self.picture = RowsPicture()
        row = control_row("noise", (self.noise, 1), self.noise_label, stretch=False)
        self.column(row, self.caption, (self.picture, 1))
        self._show_noise()
        self.noise.valueChanged.connect(self._on_noise)

    def choices(self) -> dict[str, QSlider]:
        return {"noise": self.noise}

    @property
    def eps(self) -> float:
        """The noise's standard deviation, a share of full brightness."""
        return self.noise.value() / 100

    def _show_noise(self) -> None:
        self.noise_label.setText(f"{self.noise.value()} %")

    @Slot(int)
    def _on_noise(self, _value: int) -> None:
        self._show_noise()
        self._ask()

    def request(self) -> ProbeRequest:
        n = min(SHOWN, len(self.controller.run_info.data.y_test))
        return ProbeRequest(eps=self.eps, samples=(0, n))

    def _ask(self) -> None:
        self.controller.ask_probe("reconstruction", self.request())

    def on_run(self, run: RunInfo) -> None:
        self.picture.clear(EMPTY if "reconstruction" in run.probes else NO_CODE)
        self.caption.setText("")
        self._ask()

    def draw(self, snap: Snapshot | None) -> None:
        assert snap is not None
        a = snap.probes["reconstruction"].arrays
        noisy = bool(np.any(a["noisy_error"] > 0))  # what the probe computed, whatever the slider says by now
        rows = [("input", a["inputs"]), *([("noisy", a["noisy"])] if noisy else []), ("output", a["outputs"])]
        tips = []
        for name, _pics in rows:
            row = []
            for k, (index, label) in enumerate(zip(a["rows"].tolist(), a["labels"].tolist())):
                what = {"input": "the clean picture", "noisy": f"with noise: error {a['noisy_error'][k]:.4f}",
                        "output": f"the network's output: error {a['error'][k]:.4f}"}[name]
                row.append(f"test picture {index} (label {self.class_name(int(label))}), {what}")
            tips.append(row)
        self.picture.show_rows([name for name, _ in rows], np.stack([to_rgb(p) for _, p in rows]), tips)
        self.caption.setText(self.summary(a, noisy))

    @staticmethod
    def summary(a: dict[str, np.ndarray], noisy: bool) -> str:
        """The caption: each row's mean error against the clean pictures, and what the network made of the noise."""
        out, first, last = float(a["error"].mean()), int(a["rows"][0]), int(a["rows"][-1])
        head = f"Test pictures {first}–{last}. Mean squared error against the clean pictures: "
        if not noisy:
            return head + f"output <b>{out:.4f}</b>."
        inp = float(a["noisy_error"].mean())
        text = head + f"noisy input <b>{inp:.4f}</b>, output <b>{out:.4f}</b>"
        if out < inp:
            return text + f": the network takes away {1 - out / inp:.0%} of the noise's error."
        return text + ": no better than the noisy input (it has not learned to remove noise)."
