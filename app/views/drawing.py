"""Draw a digit (or a shape): a canvas to draw on with the mouse, cut down to the network's input size exactly as
the data is (the average brightness of each block; then the data's own standardisation, in the engine's
`drawing` probe), and the network's class probabilities and gradient saliency for the drawing, updated while
you draw and while the network trains."""
from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QPointF, QRect, Qt, QTimer, Slot
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from engine import Snapshot
from engine.probes import ProbeRequest
from engine.probes.images import drawing_shape

from ..controller import Controller, RunInfo
from .base import LiveView
from .saliency import pictures, rgb_image

CANVAS = 224  # canvas pixels along each side (a multiple of the input size is used)
BAR = QColor(8, 119, 189)


def block_mean(canvas: np.ndarray, h: int, w: int) -> np.ndarray:
    """(H·k, W·k) brightness in [0, 1] to (h, w): each input pixel is the mean of its k × k block."""
    k = canvas.shape[0] // h
    return canvas.reshape(h, k, w, k).astype(np.float64).mean(axis=(1, 3)).astype(np.float32)


class DrawCanvas(QWidget):
    """Where the user draws: white ink on black, like the data; a faint grid shows the network's pixels."""

    def __init__(self, view: DrawView) -> None:
        super().__init__()
        self.view = view
        self.h = self.w = 8
        self.k = CANVAS // 8
        self.ink = np.zeros((CANVAS, CANVAS), dtype=np.float32)
        self._last: QPointF | None = None
        self.setFixedSize(CANVAS, CANVAS)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setToolTip("Draw with the left mouse button; the network reads the picture at its own resolution")

    def set_size(self, h: int, w: int) -> None:
        """Match the network's input (h, w): the canvas is k × that, k as large as fits."""
        k = max(1, CANVAS // max(h, w))
        if (h, w, k) != (self.h, self.w, self.k):
            self.h, self.w, self.k = h, w, k
            self.ink = np.zeros((h * k, w * k), dtype=np.float32)
            self.setFixedSize(w * k, h * k)
            self.update()

    @property
    def radius(self) -> float:
        """The brush: about 1.5 input pixels across for 8 × 8 digits, 3 for 28 × 28 shapes."""
        return self.k * max(0.75, self.w / 18)

    def clear(self) -> None:
        self.ink[:] = 0.0
        self.update()

    def set_picture(self, raw: np.ndarray) -> None:
        """Show a picture of the input size (H, W) in [0, 1], each pixel as a k × k block (for tests and for
        starting from a test image)."""
        self.ink = np.kron(raw.astype(np.float32), np.ones((self.k, self.k), dtype=np.float32))
        self.update()

    def pixels(self) -> np.ndarray:
        """The picture at the network's input size, (H, W) in [0, 1]."""
        return block_mean(self.ink, self.h, self.w)

    def stroke(self, a: QPointF, b: QPointF) -> None:
        """Ink a round-ended line from a to b, anti-aliased over its last pixel."""
        r = self.radius
        x0, x1 = sorted((a.x(), b.x()))
        y0, y1 = sorted((a.y(), b.y()))
        rows = slice(max(0, int(y0 - r - 1)), min(self.ink.shape[0], math.ceil(y1 + r + 1)))
        cols = slice(max(0, int(x0 - r - 1)), min(self.ink.shape[1], math.ceil(x1 + r + 1)))
        if rows.start >= rows.stop or cols.start >= cols.stop:
            return
        yy, xx = np.mgrid[rows, cols].astype(np.float32) + 0.5
        dx, dy = b.x() - a.x(), b.y() - a.y()
        length2 = dx * dx + dy * dy
        t = np.clip(((xx - a.x()) * dx + (yy - a.y()) * dy) / length2, 0, 1) if length2 > 0 else 0.0
        d = np.hypot(xx - (a.x() + t * dx), yy - (a.y() + t * dy))
        region = self.ink[rows, cols]
        np.maximum(region, np.clip(r + 0.5 - d, 0.0, 1.0), out=region)
        self.update()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._last = event.position()
            self.stroke(self._last, self._last)
            self.view.changed()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._last is not None:
            p = event.position()
            self.stroke(self._last, p)
            self._last = p
            self.view.changed()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        self._last = None
        self.view.changed(now=True)

    def paintEvent(self, event: QPaintEvent) -> None:
        g = np.ascontiguousarray((self.ink * 255 + 0.5).astype(np.uint8))
        h, w = g.shape
        img = QImage(g.data, w, h, w, QImage.Format.Format_Grayscale8)
        p = QPainter(self)
        p.drawImage(0, 0, img)
        p.setPen(QPen(QColor(70, 70, 70), 1))
        for i in range(1, self.w):
            p.drawLine(i * self.k, 0, i * self.k, h)
        for i in range(1, self.h):
            p.drawLine(0, i * self.k, w, i * self.k)
        p.end()


class DrawResult(QWidget):
    """What the network sees, its class probabilities as bars, and the drawing's saliency."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: QImage | None = None
        self.saliency: QImage | None = None
        self.probs = np.zeros(0, dtype=np.float32)
        self.names: tuple[str, ...] = ()
        self.setMinimumSize(260, 200)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(255, 255, 255))
        side = min(110, (self.height() - 40) // 2)
        p.setPen(QColor(40, 40, 40))
        for k, (title, img) in enumerate((("the network sees", self.seen), ("saliency", self.saliency))):
            y = 4 + k * (side + 22)
            p.drawText(QRect(4, y, side + 40, 16), Qt.AlignmentFlag.AlignLeft, title)
            if img is not None:
                p.drawImage(QRect(4, y + 18, side, side), img)
        x0, top = side + 24, 6
        n = len(self.probs)
        if n:
            line = max(12, min(22, (self.height() - 2 * top) // n))
            best = int(self.probs.argmax())
            for i, v in enumerate(self.probs.tolist()):
                y = top + i * line
                name = self.names[i] if i < len(self.names) else str(i)
                p.setPen(QColor(40, 40, 40))
                p.drawText(QRect(x0, y, 60, line), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                           name)
                width = max(0, self.width() - x0 - 120)
                p.fillRect(QRect(x0 + 66, y + 3, int(width * v), line - 6),
                           BAR if i == best else QColor(150, 190, 220))
                p.drawText(QRect(x0 + 70 + int(width * v), y, 50, line), Qt.AlignmentFlag.AlignVCenter, f"{v:.0%}")
        p.end()


class DrawView(LiveView):
    """Draw a picture for the network to classify, and see why it answers as it does."""

    probes = frozenset({"drawing"})

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(controller, parent)
        self.canvas = DrawCanvas(self)
        self.result = DrawResult()
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("Wipe the canvas")
        self.clear_button.clicked.connect(self._clear)
        self.from_sample = QPushButton("Start from the selected image")
        self.from_sample.setToolTip("Copy the test image selected in Samples onto the canvas, to edit it")
        self.from_sample.clicked.connect(self._copy_sample)
        self.caption = QLabel("Draw with the mouse.")
        left = QVBoxLayout()
        left.addWidget(self.canvas)
        buttons = QHBoxLayout()
        buttons.addWidget(self.clear_button)
        buttons.addWidget(self.from_sample)
        left.addLayout(buttons)
        left.addWidget(self.caption)
        left.addStretch(1)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(left)
        layout.addWidget(self.result, 1)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(120)  # while drawing, the network answers about 8 times a second
        self._timer.timeout.connect(self._ask)

    def on_run(self, run: RunInfo) -> None:
        shape = drawing_shape(run.data)  # the set's own picture size: 8×8 digits even when scaled up
        if len(shape) == 3:
            self.canvas.set_size(int(shape[1]), int(shape[2]))
        self.result.names = tuple(run.data.meta.get("classes", ()))
        self._ask()

    def changed(self, now: bool = False) -> None:
        if now:
            self._timer.stop()
            self._ask()
        elif not self._timer.isActive():
            self._timer.start()

    @Slot()
    def _clear(self) -> None:
        self.canvas.clear()
        self._ask()

    @Slot()
    def _copy_sample(self) -> None:
        meta = self.controller.run_info.data.meta
        raw = meta.get("native_test", meta.get("raw_test"))
        if raw is not None and len(raw):
            self.canvas.set_picture(np.asarray(raw)[self.controller.sample].mean(axis=0))
            self._ask()

    def request(self) -> ProbeRequest:
        return ProbeRequest(pixels=tuple(self.canvas.pixels().ravel().tolist()))

    @Slot()
    def _ask(self) -> None:
        self.controller.ask_probe("drawing", self.request())

    def draw(self, snap: Snapshot | None) -> None:
        assert snap is not None
        a = snap.probes["drawing"].arrays
        grey, heat = pictures(a["input"], a["attribution"], overlay=False)
        self.result.seen, self.result.saliency = rgb_image(grey), rgb_image(heat)
        self.result.probs = a["probabilities"]
        best = int(a["probabilities"].argmax())
        name = self.result.names[best] if best < len(self.result.names) else str(best)
        blank = not a["input"].any()
        self.caption.setText("Draw with the mouse." if blank else
                             f"The network says {name} ({a['probabilities'][best]:.0%}).")
        self.result.update()
