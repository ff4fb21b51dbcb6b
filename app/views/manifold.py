"""Manifold: a regular grid over an autoencoder's latent plane, each point decoded into a picture, as one mosaic
(Kingma and Welling's figure). A VAE's grid runs through its prior's quantiles; a plain autoencoder's over the
range its test codes take; a code wider than two numbers is cut by the plane of its two principal axes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Slot
from PySide6.QtGui import QColor, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPathItem, QLabel, QSlider, QWidget

from engine import Snapshot
from engine.probes import ProbeRequest
from engine.probes.latent import MANIFOLD_SIDE

from ..controller import Controller, RunInfo
from ..export import export_plot_png, export_widget
from .base import DOCK_MIN_HEIGHT, LiveView, control_row, text_label
from .plotting import PlotWidget, prepare_plot

SIDE_MIN, SIDE_MAX, SIDE_DEFAULT = 6, 24, MANIFOLD_SIDE  # the probe's own default side
TICKS = 3  # labelled pictures per axis: the first, the middle and the last
GRID_TIP = "Pictures per side of the grid: more walks the latent plane in finer steps, each picture smaller"
EMPTY = "The grid appears at the next probe round (press play, or step once)."
HOVER = "Hover a picture for its point in the latent space."
NO_CODE = "No grid: this network has no hidden layer between its input and its output to decode from."


def sub(k: int) -> str:
    """k as subscript digits."""
    return str(k).translate(str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉"))


def axis_names(layer: str, width: int) -> tuple[str, str]:
    """The plane's horizontal and vertical axis: the code's own two numbers, or its two principal axes."""
    if width == 2:
        return f"{layer}{sub(1)}", f"{layer}{sub(2)}"
    return f"PC 1 of {layer}", f"PC 2 of {layer}"


def span_text(plane: np.ndarray, layer: str, width: int, variational: bool) -> str:
    """What the grid spans, in words: which axes, over which values, and why those."""
    across, up = axis_names(layer, width)
    xs, ys = plane[0, :, 0], plane[::-1, 0, 1]  # left to right; bottom to top
    if width == 2:
        where = f"the latent plane of the 2-number code <i>{layer}</i>"
    else:
        origin = "the origin (the prior's mean)" if variational else "the test codes' mean"
        where = (f"the plane of the test codes' two principal axes through {origin}, in the {width}-number code "
                 f"<i>{layer}</i>")
    if variational:
        reach = (f"each axis through the prior N(0, 1)'s quantiles 5 % to 95 % ({xs[0]:.2f} to {xs[-1]:.2f}), "
                 "so each picture stands for an equal share of the codes the prior draws")
    else:
        reach = (f"{across} from {xs[0]:.2f} to {xs[-1]:.2f}, {up} from {ys[0]:.2f} to {ys[-1]:.2f}: the test "
                 "codes' 2nd to 98th percentiles (a plain autoencoder has no prior to sample)")
    return (f"Each picture is decoded from a point of {where}: {across} grows left to right, {up} bottom to top; "
            f"{reach}.")


def grid_path(n: int, h: int, w: int) -> QPainterPath:
    """The lines between an n×n mosaic's pictures of h×w pixels."""
    path = QPainterPath()
    for k in range(1, n):
        path.moveTo(k * w, 0)
        path.lineTo(k * w, n * h)
        path.moveTo(0, k * h)
        path.lineTo(n * w, k * h)
    return path


class ManifoldView(LiveView):
    """The decoded grid as one image, fixed grey levels 0 to 1, the plane's coordinates on the axes."""

    probes = frozenset({"manifold"})

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(controller, parent)
        self.setMinimumSize(200, DOCK_MIN_HEIGHT)
        self.side = QSlider(Qt.Orientation.Horizontal)
        self.side.setRange(SIDE_MIN, SIDE_MAX)
        self.side.setValue(SIDE_DEFAULT)
        self.side.setPageStep(2)
        self.side.setToolTip(GRID_TIP)
        self.side_label = QLabel()
        self.side_label.setToolTip(GRID_TIP)
        self.side_label.setMinimumWidth(56)
        self.caption = text_label(EMPTY, rich=True, wrap=True)
        self.plot_widget = PlotWidget(background="w")
        self.plot_widget.setMinimumHeight(100)
        self.plot = self.plot_widget.getPlotItem()
        prepare_plot(self.plot)
        self.plot.invertY(True)  # the mosaic's top row (the plane's largest second coordinate) on top
        self.plot.setAspectLocked(True)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image)
        # white lines between the pictures, as the other picture views leave white between theirs: digits fill
        # their height, and without them each column reads as one long chain
        self.lines = QGraphicsPathItem()
        pen = QPen(QColor(255, 255, 255), 2)
        pen.setCosmetic(True)
        self.lines.setPen(pen)
        self.lines.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.plot.addItem(self.lines, ignoreBounds=True)
        self.readout = text_label(HOVER)
        row = control_row("grid", (self.side, 1), self.side_label, stretch=False)
        self.column(row, self.caption, (self.plot_widget, 1), self.readout)
        self.drawn: dict[str, np.ndarray] = {}  # the probe's arrays on screen
        self._shape: tuple[int, ...] = ()
        self._ticks: tuple[object, ...] = ()
        self._show_side()
        self.side.valueChanged.connect(self._on_side)
        self.plot_widget.scene().sigMouseMoved.connect(self._on_mouse)

    def choices(self) -> dict[str, QSlider]:
        return {"grid": self.side}

    def _show_side(self) -> None:
        n = self.side.value()
        self.side_label.setText(f"{n} × {n}")

    @Slot(int)
    def _on_side(self, _value: int) -> None:
        self._show_side()
        self._ask()

    def _ask(self) -> None:
        self.controller.ask_probe("manifold", ProbeRequest(size=self.side.value()))

    def on_run(self, run: RunInfo) -> None:
        self.drawn = {}
        self.image.clear()
        self.lines.setPath(QPainterPath())
        self._shape, self._ticks = (), ()
        self.caption.setText(EMPTY if "manifold" in run.probes else NO_CODE)
        self.readout.setText(HOVER)
        self._ask()

    def draw(self, snap: Snapshot | None) -> None:
        assert snap is not None and self.run is not None
        a = snap.probes["manifold"].arrays
        self.drawn = a
        mosaic = np.ascontiguousarray(a["mosaic"], dtype=np.float32)
        self.image.setImage(mosaic, autoLevels=False, levels=(0.0, 1.0))
        n, width = a["grid"].shape[0], a["grid"].shape[2]
        h, w = mosaic.shape[0] // n, mosaic.shape[1] // n
        if mosaic.shape != self._shape:  # a new grid size: the view fits the mosaic again
            self._shape = mosaic.shape
            self.plot.setRange(xRange=(0, mosaic.shape[1]), yRange=(0, mosaic.shape[0]), padding=0.02)
            self.lines.setPath(grid_path(n, h, w))
        layer = str(a["layer"][0])
        node = self.run.nodes.get(layer)
        variational = node is not None and node.op == "reparam"
        self._label_axes(a["plane"], layer, width, h, w)
        text = span_text(a["plane"], layer, width, variational)
        if text != self.caption.text():
            self.caption.setText(text)

    def _label_axes(self, plane: np.ndarray, layer: str, width: int, h: int, w: int) -> None:
        """Tick a few pictures' centres with their plane coordinate; axes repaint only when these change."""
        n = plane.shape[0]
        picks = sorted({round(v) for v in np.linspace(0, n - 1, min(TICKS, n))})
        across, up = axis_names(layer, width)
        bottom = [(j * w + w / 2, f"{plane[0, j, 0]:.2f}") for j in picks]
        left = [(i * h + h / 2, f"{plane[i, 0, 1]:.2f}") for i in picks]
        key = (across, up, tuple(bottom), tuple(left))
        if key == self._ticks:
            return
        self._ticks = key
        self.plot.getAxis("bottom").setTicks([bottom])
        self.plot.getAxis("left").setTicks([left])
        self.plot.setLabel("bottom", f"{across} →")
        self.plot.setLabel("left", f"{up} →")

    def point_at(self, x: float, y: float) -> tuple[int, int] | None:
        """The grid cell (row, column) at mosaic position (x, y), or None outside it."""
        a = self.drawn
        if not a:
            return None
        n = a["grid"].shape[0]
        i, j = int(y // (a["mosaic"].shape[0] / n)), int(x // (a["mosaic"].shape[1] / n))
        return (i, j) if 0 <= i < n and 0 <= j < n and x >= 0 and y >= 0 else None

    @Slot(object)
    def _on_mouse(self, pos: QPointF) -> None:
        p = self.plot.vb.mapSceneToView(pos)
        cell = self.point_at(p.x(), p.y())
        if cell is None:
            self.readout.setText(HOVER)
            return
        a = self.drawn
        i, j = cell
        plane = a["plane"][i, j]
        z = a["grid"][i, j]
        code = ", ".join(f"{v:.2f}" for v in z[:8]) + (", …" if len(z) > 8 else "")
        where = "" if len(z) == 2 else f"plane ({plane[0]:.2f}, {plane[1]:.2f}), "
        self.readout.setText(f"row {i + 1}, column {j + 1}: {where}{a['layer'][0]} = ({code})")

    def export(self, fmt: str, path: Path) -> None:
        if fmt == "png":
            export_plot_png(self.plot_widget.scene(), path)
        else:
            export_widget(self, fmt, path)
