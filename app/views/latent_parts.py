"""Parts of the latent view: point colours, pictures of samples and decoded codes, the plane's mouse (hover,
click, drag), the interpolation strip and the t-SNE runner, which works in a Python thread and reports through
signals to slots of the GUI thread."""
from __future__ import annotations

import math
import threading
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPointF, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QComboBox, QLabel, QProgressBar, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from engine.datasets import Dataset
from engine.probes import ProbeRequest
from engine.projection import tsne

from ..colors import DIVERGING, NEGATIVE, POSITIVE, class_palette, diverging_index
from ..controller import RunInfo
from .plotting import nice_ceil
from .saliency import picture_rgb, rgb_image

# The app's class colours first (two-class toys read orange/blue everywhere), then four more of Tableau 10 that
# stay apart from them, for ten digits; more classes go round the hue circle.
CLICK_PX = 4  # a press released within this many pixels is a click, farther a drag
HOVER_PX = 8  # the nearest point within this many pixels is the one pointed at
Ranges = tuple[tuple[float, float], tuple[float, float]]


def point_brushes(labels: np.ndarray, regression: bool) -> np.ndarray:
    """One brush per point, shared among points of a colour (an object array for ScatterPlotItem): class
    colours, or the diverging map over the targets' range for regression."""
    if regression:
        v = np.asarray(labels, dtype=np.float64)
        top = float(np.abs(v[np.isfinite(v)]).max(initial=0.0)) or 1.0
        index = diverging_index(v, top)
        brushes = np.array([pg.mkBrush(*c) for c in DIVERGING.tolist()], dtype=object)
        return brushes[index]
    k = np.asarray(labels, dtype=np.intp)
    palette = class_palette(int(k.max(initial=0)) + 1)
    brushes = np.array([pg.mkBrush(*c) for c in palette.tolist()], dtype=object)
    return brushes[k]


class Controls:
    """The Latent view's settings (layer, split, projection, t-SNE), its caption and its hint, made here."""

    def __init__(self) -> None:
        self.layer = QComboBox()
        self.layer.setToolTip("The block whose activations are drawn (default: the bottleneck, a VAE's means; a "
                              "sequence set's embedding block: its token table, one point per token)")
        self.layer.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.split = QComboBox()
        self.split.setToolTip("Which samples: the held-out test set or the training set (at most 10,000)")
        for title, key in (("test", "test"), ("train", "train")):
            self.split.addItem(title, key)
        self.projection = QComboBox()
        self.projection.setToolTip("PCA: the two principal axes, again at every refresh (a 2-D layer is drawn as "
                                   "it is). t-SNE: neighbours kept together, computed on demand and kept until rerun")
        self.projection.addItem("PCA (live)", "pca")
        self.projection.addItem("t-SNE (on demand)", "tsne")
        self.run_tsne = QPushButton("Run t-SNE")
        self.run_tsne.setToolTip("Compute a t-SNE map of the points shown now (in the background; training goes on)")
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setFormat("t-SNE %p %")
        self.progress.setFixedWidth(130)
        self.cancel = QPushButton("Cancel")
        self.cancel.setToolTip("Stop the t-SNE that is running")
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        self.hint = QLabel()
        self.hint.setStyleSheet("color: #555")
        self.hint.setWordWrap(True)


def move_points(item: pg.ScatterPlotItem, xy: np.ndarray) -> None:
    """New positions for the same points, keeping their brushes: pyqtgraph's setData rebuilds every point's style
    (~20 ms for 10,000 points); writing the coordinates costs ~0.2 ms. Relies on ScatterPlotItem's `data`
    record array (fields x, y), the same in the pinned pyqtgraph 0.13-0.14."""
    item.data["x"] = xy[:, 0]
    item.data["y"] = xy[:, 1]
    item.prepareGeometryChange()
    item.informViewBoundsChanged()
    item.bounds = [None, None]
    item.invalidate()


def settle(current: tuple[float, float] | None, lo: float, hi: float) -> tuple[float, float]:
    """A plot range for data spanning [lo, hi]: the current one while the data fill over half of it, else one
    padded and snapped to a nice step (ranges that jump at every refresh repaint the axes every time)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return current or (-1.0, 1.0)
    span = hi - lo
    if current is not None and current[0] <= lo and hi <= current[1] and span >= 0.5 * (current[1] - current[0]):
        return current
    step = nice_ceil(max(span, 1e-6)) / 10
    pad = 0.06 * max(span, 1e-6)
    return math.floor((lo - pad) / step) * step, math.ceil((hi + pad) / step) * step


def plot_ranges(current: Ranges | None, xy: np.ndarray) -> Ranges | None:
    """The x and y ranges for positions ``xy`` (N, 2), settled from the current ones (kept when none is finite)."""
    finite = xy[np.isfinite(xy).all(axis=1)]
    if not len(finite):
        return current
    old = current or (None, None)
    return (settle(old[0], float(finite[:, 0].min()), float(finite[:, 0].max())),
            settle(old[1], float(finite[:, 1].min()), float(finite[:, 1].max())))


def qimage(picture: np.ndarray) -> QImage:
    """A picture (C, H, W) or (H, W) in [0, 1] as a QImage, drawn as the other picture views draw them."""
    a = np.nan_to_num(np.asarray(picture, dtype=np.float32))
    return rgb_image(picture_rgb(a if a.ndim == 3 else a[None]))


@dataclass(frozen=True)
class TsneMap:
    """A finished t-SNE: its positions and the points they belong to (frozen until rerun)."""

    points: np.ndarray  # (N, 2)
    rows: np.ndarray
    labels: np.ndarray
    layer: str
    split: str
    run_id: int
    step: int

    def fits(self, shown: Shown | None, run_id: int) -> bool:
        """Whether this map is of the points shown (the same run, layer, split and rows)."""
        return (shown is not None and self.run_id == run_id and self.layer == shown.layer
                and self.split == shown.split and np.array_equal(self.rows, shown.rows))


@dataclass(frozen=True)
class DecodeAsk:
    """What was last asked of the decode probe: an answer for other points is not this one's."""

    kind: str  # click | strip
    latent: np.ndarray  # (n, D) float32, as sent
    request: ProbeRequest


@dataclass(frozen=True)
class Shown:
    """The embedding drawn now (its finite points)."""

    points: np.ndarray
    rows: np.ndarray
    labels: np.ndarray
    layer: str
    split: str
    step: int


def widen(codes: np.ndarray) -> np.ndarray:
    """Codes of one or two values as plane positions (one value: on the x axis)."""
    return np.pad(codes, ((0, 0), (0, 2 - codes.shape[1]))) if codes.shape[1] < 2 else codes


def hidden_layers(run: RunInfo) -> list[str]:
    return [n for n in run.order if run.nodes[n].op not in ("input", "output")]


def legend_html(labels: np.ndarray, regression: bool, name: Callable[[int], str]) -> str:
    """The legend: each class present with its colour (two columns past four), or the targets' colour scale."""
    if regression:
        v = labels[np.isfinite(labels)]
        lo, hi = (float(v.min()), float(v.max())) if len(v) else (0.0, 0.0)
        return (f"colour: target, <span style='color:{QColor(*NEGATIVE).name()}'>●</span> low ({lo:.3g}) to "
                f"<span style='color:{QColor(*POSITIVE).name()}'>●</span> high ({hi:.3g})")
    present = np.unique(labels.astype(np.intp)).tolist()
    palette = class_palette(max(present, default=0) + 1)
    cells = [f"<td><span style='color:{QColor(*palette[k].tolist()).name()}'>●</span> {escape(name(k))}</td>"
             for k in present]
    columns = 2 if len(cells) > 4 else 1
    rows = ["<tr>" + "".join(cells[i:i + columns]) + "</tr>" for i in range(0, len(cells), columns)]
    return "<table cellspacing='2'>" + "".join(rows) + "</table>"


def sample_input(data: Dataset, split: str, row: int) -> tuple[QImage | None, str]:
    """A sample's input as shown on hover: its picture (image sets: the raw test picture, or a training one
    with its standardisation undone), or its position in the plane (toys, as a line of text)."""
    raw = data.meta.get("raw_test")
    if split == "test" and raw is not None:
        return qimage(raw[row]), ""
    x = data.x_test if split == "test" else data.x_train
    if x.ndim == 4 and "mean" in data.meta:
        mean, std = (np.asarray(data.meta[k], dtype=np.float32)[:, None, None] for k in ("mean", "std"))
        return qimage(x[row] * std + mean), ""
    plane = data.points_test if split == "test" else data.points_train
    if plane is not None:
        return None, f"\n(x₁, x₂) = ({plane[row, 0]:.2f}, {plane[row, 1]:.2f})"
    return None, ""


class Picture(QWidget):
    """A small titled panel: a picture scaled up with square pixels (or none) and a caption under it."""

    def __init__(self, title: str, side: int = 96) -> None:
        super().__init__()
        self.title = title
        self.side = side
        self.image: QImage | None = None
        self.caption = ""
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)

    def sizeHint(self) -> QSize:
        return QSize(self.side + 40, self.side + 62)

    def minimumSizeHint(self) -> QSize:
        return self.sizeHint()

    def show_picture(self, image: QImage | None, caption: str) -> None:
        self.image, self.caption = image, caption
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setPen(QColor(90, 90, 90))
        font = p.font()
        font.setBold(True)
        p.setFont(font)
        p.drawText(QRect(0, 0, self.width(), 18), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                   self.title)
        font.setBold(False)
        p.setFont(font)
        top = 20
        if self.image is not None:
            box = QRect((self.width() - self.side) // 2, top, self.side, self.side)
            p.drawImage(box, self.image)
            p.setPen(QPen(QColor(170, 170, 170), 1))
            p.drawRect(box.adjusted(-1, -1, 0, 0))
            top += self.side + 4
        p.setPen(QColor(40, 40, 40))
        p.drawText(QRect(0, top, self.width(), self.height() - top),
                   Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap, self.caption)
        p.end()


class SidePanel(QWidget):
    """The column beside the plot: the legend, the input pointed at and the picture decoded (and ``extra``: a
    token table's nearest tokens)."""

    def __init__(self, *extra: QWidget) -> None:
        super().__init__()
        self.setFixedWidth(170)
        self.legend = QLabel()
        self.legend.setWordWrap(True)
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.pointed = Picture("pointed at")
        self.decoded = Picture("decoded")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 0, 0, 0)
        for part in (self.legend, *extra, self.pointed, self.decoded):
            layout.addWidget(part)
        layout.addStretch(1)


class Strip(QWidget):
    """Decoded pictures in one row: an interpolation from the drag's start (A) to its end (B)."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[QImage] = []
        self.note = ""
        self.setFixedHeight(92)

    def show_images(self, images: Sequence[QImage], note: str = "") -> None:
        self.images, self.note = list(images), note
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(255, 255, 255))
        p.setPen(QColor(40, 40, 40))
        if not self.images:
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.note)
            p.end()
            return
        n, gap, label_w = len(self.images), 4, 16
        side = max(8, min(self.height() - 8, (self.width() - 2 * label_w - gap * (n + 1)) // n))
        x0 = (self.width() - n * side - (n - 1) * gap) // 2
        y = (self.height() - side) // 2
        p.drawText(QRect(x0 - label_w - 2, y, label_w, side), Qt.AlignmentFlag.AlignCenter, "A")
        for k, img in enumerate(self.images):
            box = QRect(x0 + k * (side + gap), y, side, side)
            p.drawImage(box, img)
            p.setPen(QPen(QColor(170, 170, 170), 1))
            p.drawRect(box.adjusted(-1, -1, 0, 0))
        p.setPen(QColor(40, 40, 40))
        p.drawText(QRect(x0 + n * (side + gap) - gap + 2, y, label_w, side), Qt.AlignmentFlag.AlignCenter, "B")
        p.end()


class PlaneMouse(QObject):
    """Watches a plot's viewport: pointer moves (hover), clicks and drags, in the plot's data coordinates."""

    hovered = Signal(QPointF)  # the pointer is over the plane here (no button down)
    left = Signal()  # the pointer left the plane
    clicked = Signal(QPointF)
    dragging = Signal(QPointF, QPointF)  # a drag under way, from → to
    dragged = Signal(QPointF, QPointF)  # a drag ended

    def __init__(self, widget: pg.PlotWidget) -> None:
        super().__init__(widget)
        self.widget = widget
        self.box = widget.getPlotItem().getViewBox()
        self._press: QPointF | None = None  # where the left button went down, in viewport pixels
        self._dragging = False
        widget.viewport().setMouseTracking(True)
        widget.viewport().installEventFilter(self)

    def to_plane(self, pos: QPointF) -> QPointF:
        return self.box.mapSceneToView(self.widget.mapToScene(pos.toPoint()))

    def inside(self, pos: QPointF) -> bool:
        return self.box.sceneBoundingRect().contains(self.widget.mapToScene(pos.toPoint()))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind == QEvent.Type.Leave:
            self.left.emit()
            return False
        if not isinstance(event, QMouseEvent):
            return False
        pos = event.position()
        if kind == QEvent.Type.MouseButtonPress and event.button() == Qt.MouseButton.LeftButton:
            if self.inside(pos):
                self._press, self._dragging = pos, False
                return True
        elif kind == QEvent.Type.MouseMove:
            if self._press is None:
                if self.inside(pos):
                    self.hovered.emit(self.to_plane(pos))
                else:
                    self.left.emit()
                return False
            if self._dragging or (pos - self._press).manhattanLength() > CLICK_PX:
                self._dragging = True
                self.dragging.emit(self.to_plane(self._press), self.to_plane(pos))
            return True
        elif kind == QEvent.Type.MouseButtonRelease and self._press is not None:
            start, self._press = self._press, None
            if self._dragging:
                self.dragged.emit(self.to_plane(start), self.to_plane(pos))
            else:
                self.clicked.emit(self.to_plane(start))
            self._dragging = False
            return True
        return False

    def nearest(self, xy: np.ndarray, at: QPointF) -> int | None:
        """The index of the point of ``xy`` (N, 2) nearest ``at`` on screen, if within HOVER_PX pixels."""
        if not len(xy):
            return None
        pw, ph = self.box.viewPixelSize()
        if not (pw > 0 and ph > 0):
            return None
        d = ((xy[:, 0] - at.x()) / pw) ** 2 + ((xy[:, 1] - at.y()) / ph) ** 2
        d = np.where(np.isfinite(d), d, np.inf)
        k = int(np.argmin(d))
        return k if d[k] <= HOVER_PX ** 2 else None


class TsneRunner(QObject):
    """Runs `engine.projection.tsne` in a Python thread (no QThread that could be destroyed while it runs). The
    thread emits these signals; connected to slots of GUI-thread objects they arrive queued, in the GUI thread
    (ARCHITECTURE.md, "Threads"). Each run is a numbered job: a cancelled or replaced job's late reports are
    told apart by its number."""

    progressed = Signal(int, float)  # job, share done
    finished = Signal(int, object)  # job, the (N, 2) map, or None when cancelled
    failed = Signal(int, str)  # job, why

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.job = 0
        self._cancel = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self, points: np.ndarray, initial: np.ndarray | None, seed: int = 0) -> int:
        """Cancel any run and start one on ``points`` from ``initial`` positions; returns its job number."""
        self.cancel()
        self.job += 1
        self._cancel = threading.Event()
        thread = threading.Thread(target=self._work, args=(self.job, points, initial, seed, self._cancel),
                                  name=f"t-SNE {self.job}", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        return self.job

    def cancel(self) -> None:
        """Ask the running job to stop at its next report (within ~10 iterations); its answer is then None."""
        self._cancel.set()

    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def stop(self, timeout: float = 10.0) -> bool:
        """Cancel and wait for the threads to end (a window closing). True when none runs any more."""
        self.cancel()
        for t in self._threads:
            t.join(timeout)
        self._threads = [t for t in self._threads if t.is_alive()]
        return not self._threads

    # --- the worker thread -------------------------------------------------------------------------

    def _work(self, job: int, points: np.ndarray, initial: np.ndarray | None, seed: int,
              cancel: threading.Event) -> None:
        def report(share: float) -> bool:
            if cancel.is_set():
                return False
            self._emit(self.progressed, job, share)
            return True

        try:
            result = tsne(points, seed=seed, progress=report, initial=initial)
        except Exception as exc:  # noqa: BLE001 (the window must live on whatever the computation raises)
            self._emit(self.failed, job, traceback.format_exception_only(exc)[-1].strip())
            return
        self._emit(self.finished, job, None if cancel.is_set() else result)

    @staticmethod
    def _emit(signal: Signal, *args: object) -> None:
        try:
            signal.emit(*args)  # type: ignore[attr-defined]
        except RuntimeError:  # the view is gone (its window closed while the thread wound down)
            pass
