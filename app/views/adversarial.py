"""Adversarial: the selected test image nudged by FGSM to fool the network (the image, the perturbation, the
perturbed image, each with its prediction), and the test accuracy clean and under attack as training goes on.
ε is in raw pixel units: a fraction of full brightness, the same on every dataset (the engine's probe)."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRect, Qt, Slot
from PySide6.QtGui import QColor, QImage, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import (
    QComboBox,
    QGraphicsItem,
    QLabel,
    QSizePolicy,
    QSlider,
    QWidget,
)

from engine import Snapshot
from engine.probes import ProbeRequest

from ..colors import diverging_rgb
from ..controller import Controller, RunInfo
from .base import LiveView, control_row, text_label
from .plotting import PlotWidget, StableRange, cached_curve, grow, prepare_plot
from .saliency import picture_rgb, rgb_image
from .samples import RIGHT, WRONG

EPS_STEPS = 30  # the slider's ticks: ε = 0 … 0.3 in steps of 0.01
EPS_DEFAULT = 10
MAX_POINTS = 2048  # accuracy history kept per ε: older points are thinned to every other one past this
CLEAN_PEN = pg.mkPen((8, 119, 189), width=2)
ATTACK_PEN = pg.mkPen((211, 47, 47), width=2)
FGSM_TIP = ("ε: how far FGSM (the fast gradient sign method) may move each pixel, as a fraction of full "
            "brightness.\nEvery pixel steps by ±ε in the direction that raises the loss for the true label most "
            "(the sign of the gradient),\nthen the image is clipped back to [0, 1]. One gradient step, no search: "
            "a change too small to notice can still fool the network.")


def perturbation_rgb(perturbation: np.ndarray) -> tuple[np.ndarray, float]:
    """The perturbation (C, H, W), averaged over channels, in diverging colours scaled to its largest |value|
    (orange darker, blue brighter), and that value (0 for none: all neutral)."""
    p = perturbation.mean(axis=0)
    top = float(np.abs(p).max()) if p.size else 0.0
    return diverging_rgb(p, top if top > 0 else 1.0), top


class Pictures(QWidget):
    """Three pictures side by side, square pixels, a title above and a caption (coloured) below each; painted
    from cached images."""

    TITLE_H, CAPTION_H, GAP = 18, 34, 10

    def __init__(self) -> None:
        super().__init__()
        self.images: list[QImage] = []
        self.titles: list[str] = []
        self.captions: list[tuple[str, QColor]] = []
        self.setMinimumSize(240, 120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def show_pictures(self, images: list[QImage], titles: list[str], captions: list[tuple[str, QColor]]) -> None:
        self.images, self.titles, self.captions = images, titles, captions
        self.update()

    def column(self, k: int) -> QRect:
        """Column k's share of the width (its title and caption may use all of it)."""
        n = max(len(self.images), 1)
        w = (self.width() - self.GAP) // n
        return QRect(self.GAP // 2 + k * w, 0, w, self.height())

    def picture_rect(self, k: int) -> QRect:
        """Where picture k is drawn: a square as big as its column and the height allow, centred in its column."""
        col = self.column(k)
        side = max(16, min(col.width() - self.GAP, self.height() - self.TITLE_H - self.CAPTION_H - 4))
        return QRect(col.x() + (col.width() - side) // 2, self.TITLE_H + 2, side, side)

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(255, 255, 255))
        for k, (img, title, (caption, colour)) in enumerate(zip(self.images, self.titles, self.captions)):
            col, r = self.column(k), self.picture_rect(k)
            p.setPen(QColor(40, 40, 40))
            p.drawText(QRect(col.x(), 0, col.width(), self.TITLE_H), Qt.AlignmentFlag.AlignCenter, title)
            p.drawImage(r, img)
            p.setPen(QPen(QColor(150, 150, 150), 1))
            p.drawRect(r.adjusted(-1, -1, 0, 0))
            p.setPen(colour)
            p.drawText(QRect(col.x(), r.bottom() + 3, col.width(), self.CAPTION_H),
                       Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap, caption)
        p.end()


class AdversarialView(LiveView):
    """FGSM on the selected test image at a chosen ε, and the test accuracy clean and under attack over steps."""

    probes = frozenset({"adversarial"})

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(controller, parent)
        # small, scrolling if need be: a dock put away still counts in the window's minimum height
        self.setMinimumSize(200, 120)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, EPS_STEPS)
        self.slider.setSingleStep(1)
        self.slider.setPageStep(5)
        self.slider.setValue(EPS_DEFAULT)
        self.slider.setToolTip(FGSM_TIP)
        self.eps_label = QLabel()
        self.eps_label.setToolTip(FGSM_TIP)
        self.eps_label.setMinimumWidth(64)
        self.caption = text_label(wrap=True)
        self.pictures = Pictures()
        self.plot_widget = PlotWidget(background="w")
        self.plot_widget.setMinimumHeight(120)
        self.plot = self.plot_widget.getPlotItem()
        prepare_plot(self.plot)
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        self.plot.setLabel("left", "test accuracy")
        self.plot.setLabel("bottom", "step")
        self.plot.setYRange(0, 1.1, padding=0)  # room above 1, so the top tick's label is drawn
        self.plot.getAxis("left").setTicks([[(v / 5, f"{v / 5:.1f}") for v in range(6)]])
        self.x_range = StableRange(self.plot)
        self.clean_curve = cached_curve(self.plot, CLEAN_PEN)
        self.attack_curve = cached_curve(self.plot, ATTACK_PEN)
        # the newest pair of values as dots: a curve of one point (just after ε moved) draws nothing
        self.latest = pg.ScatterPlotItem(size=7, pen=None)
        self.latest.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)  # repainted only when it moves
        self.plot.addItem(self.latest, ignoreBounds=True)
        self.numbers = text_label(rich=True, wrap=True)
        self.numbers.setToolTip("Accuracy on the first 300 test images (all of them if fewer), as they are and "
                                "after FGSM at the current ε, at each probed step")
        self.column(control_row("ε", (self.slider, 1), self.eps_label, stretch=False), self.caption,
                    (self.pictures, 3), self.numbers, (self.plot_widget, 2))
        self.history: dict[int, tuple[float, float]] = {}  # probe step → (clean, attacked) test accuracy
        self._xmax: float | None = None
        self.drawn: dict[str, np.ndarray] = {}  # the probe's arrays on screen
        self._show_eps()
        self.slider.valueChanged.connect(self._on_eps)
        controller.sample_changed.connect(self._ask)

    # --- ε and the request -------------------------------------------------------------------------

    @property
    def eps(self) -> float:
        return self.slider.value() / 100

    def _show_eps(self) -> None:
        self.eps_label.setText(f"ε = {self.eps:.2f}")

    def clear_history(self) -> None:
        self.history.clear()
        self._xmax = None
        self.x_range.reset()
        self.clean_curve.setData([], [])
        self.attack_curve.setData([], [])
        self.latest.setData([], [])

    @Slot(int)
    def _on_eps(self, _value: int) -> None:
        self._show_eps()
        self.clear_history()  # a curve at another ε is another experiment
        self._ask()
        self.redraw()

    @Slot()
    def _ask(self) -> None:
        self.controller.ask_probe("adversarial", ProbeRequest(sample=self.controller.sample, eps=self.eps))

    def choices(self) -> dict[str, QComboBox | QSlider]:
        return {"eps": self.slider}

    def on_run(self, run: RunInfo) -> None:
        self.clear_history()
        self._ask()

    # --- drawing -----------------------------------------------------------------------------------


    def verdict(self, prediction: int, probabilities: np.ndarray, label: int) -> tuple[str, QColor]:
        text = f"predicted {self.class_name(prediction)} · {float(probabilities[prediction]):.0%}"
        return text, (RIGHT if prediction == label else WRONG)

    def draw(self, snap: Snapshot | None) -> None:
        assert snap is not None
        result = snap.probes["adversarial"]
        a = result.arrays
        self.drawn = a
        eps = float(a["eps"])
        current = abs(eps - self.eps) < 1e-6  # a result asked for before ε moved is drawn but not recorded
        if current:
            self.history[result.step] = (float(a["accuracy"]), float(a["accuracy_adv"]))
            if len(self.history) > MAX_POINTS:  # thin the oldest half to every other point
                steps = sorted(self.history)
                for s in steps[: MAX_POINTS // 2: 2]:
                    del self.history[s]
        label, pred, pred_adv = int(a["label"]), int(a["prediction"]), int(a["prediction_adv"])
        delta, top = perturbation_rgb(a["perturbation"])
        images = [rgb_image(picture_rgb(a["input"])), rgb_image(delta), rgb_image(picture_rgb(a["perturbed"]))]
        titles = ["image", "perturbation", f"perturbed (ε = {eps:.2f})"]
        captions = [self.verdict(pred, a["probabilities"], label),
                    (f"±{top:.2f}: orange darker, blue brighter", QColor(110, 110, 110)),
                    self.verdict(pred_adv, a["probabilities_adv"], label)]
        self.pictures.show_pictures(images, titles, captions)
        row = int(a["row"])
        if pred != label:
            outcome = "the network gets it wrong even unperturbed"
        elif pred_adv != label:
            outcome = f"the attack fools it: {self.class_name(label)} becomes {self.class_name(pred_adv)}"
        else:
            outcome = "the network withstands this ε"
        self.caption.setText(f"test image {row}, label {self.class_name(label)}: {outcome}. "
                             "Click an image in Samples to attack it.")
        self._draw_curve(float(a["accuracy"]), float(a["accuracy_adv"]), eps)

    def _draw_curve(self, clean: float, attacked: float, eps: float) -> None:
        steps = np.array(sorted(self.history), dtype=np.float64)
        values = np.array([self.history[int(s)] for s in steps], dtype=np.float64).reshape(-1, 2)
        self._xmax = grow(self._xmax, max(1.0, float(steps[-1]) if len(steps) else 1.0))
        self.x_range.set(x=(0.0, self._xmax))
        self.clean_curve.setData(steps, values[:, 0])
        self.attack_curve.setData(steps, values[:, 1])
        if len(steps):
            self.latest.setData(x=[steps[-1]] * 2, y=values[-1].tolist(),
                                brush=[CLEAN_PEN.color(), ATTACK_PEN.color()])
        else:
            self.latest.setData([], [])
        text = (f"<span style='color:{CLEAN_PEN.color().name()}'>━ clean</span> <b>{clean:.1%}</b> · "
                f"<span style='color:{ATTACK_PEN.color().name()}'>━ under attack</span> <b>{attacked:.1%}</b> "
                f"at ε = {eps:.2f} (test accuracy)")
        if text != self.numbers.text():
            self.numbers.setText(text)
