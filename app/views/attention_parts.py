"""The Attention view's parts: the probe's arrays sorted into sources (encoder, decoder, cross-attention) with
their tick labels, the grid of small maps (one per layer and head, click one to enlarge it), and the enlarged
map with its colour bar, which for a vision transformer lays the class token's attention over the picture.

Items are made when the structure changes (another network, source or length) and updated with `setImage`
after (ARCHITECTURE.md, "Drawing")."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Signal
from PySide6.QtGui import QColor, QFont, QResizeEvent
from PySide6.QtWidgets import QGraphicsItem

from .plotting import GraphicsLayoutWidget, prepare_plot

CMAP = pg.colormap.get("inferno")
LUT = CMAP.getLookupTable(0.0, 1.0, 256)  # (256, 3) uint8, dark (0) → bright (1)
SOURCE_TITLES = {"encoder": "encoder self-attention", "decoder": "decoder self-attention (causal)",
                 "cross": "cross-attention (decoder → encoder)"}
SOURCE_TIPS = {
    "encoder": "Each input step's attention over the input steps (the encoder's self-attention layers)",
    "decoder": "Each step of the decoder's input (▶ + the answer so far) over the earlier steps: causal, so "
               "nothing above the diagonal",
    "cross": "Each step of the decoder over the encoder's steps: where the answer's token t looks in the input",
}
SMALL_TICKS = 10  # most tick labels on a small map's axis
BIG_TICKS = 32
SELECTED, PLAIN = QColor(30, 110, 230), QColor(60, 60, 60)


@dataclass(frozen=True)
class Maps:
    """One source's maps: (layers, heads, T, S) weights, its layer ids, heads per layer (the rest is NaN
    padding), and the names of the query rows and key columns."""

    key: str
    weights: np.ndarray
    layers: tuple[str, ...]
    heads: tuple[int, ...]
    rows: tuple[str, ...]
    cols: tuple[str, ...]


def token_labels(ids: np.ndarray, names: np.ndarray | None) -> tuple[str, ...]:
    """Token ids as their display names (the ids where the data names none)."""
    out = []
    for v in np.asarray(ids).ravel():
        k = round(float(v))
        out.append(str(names[k]) if names is not None and 0 <= k < len(names) else str(k))
    return tuple(out)


def step_labels(n: int, class_token: bool) -> tuple[str, ...]:
    """A vision transformer's steps: the class token, then the patches in reading order from 1."""
    return (("cls",) if class_token else ()) + tuple(str(k + 1) for k in range(n - int(class_token)))


def heads_of(weights: np.ndarray) -> tuple[int, ...]:
    """Each layer's real heads (padding heads are all NaN)."""
    real = ~np.isnan(weights).all(axis=(2, 3))  # (L, H)
    return tuple(int(r.sum()) for r in real)


def sources(a: dict[str, np.ndarray]) -> dict[str, Maps]:
    """The probe's non-empty sources, encoder first, with the labels of their rows and columns."""
    names = a.get("token_names")
    if "tokens" in a:
        inp = token_labels(a["tokens"], names)
    else:
        n = a["weights"].shape[-1]
        inp = step_labels(n, bool(int(a["class_token"]))) if "class_token" in a else tuple(map(str, range(n)))
    dec = token_labels(a["decoder_tokens"], names) if "decoder_tokens" in a else ()
    out: dict[str, Maps] = {}
    for key, w_key, l_key, rows, cols in (("encoder", "weights", "layers", inp, inp),
                                          ("decoder", "decoder_weights", "decoder_layers", dec, dec),
                                          ("cross", "cross_weights", "cross_layers", dec or None, inp)):
        w = a.get(w_key)
        if w is None or w.shape[0] == 0 or w.shape[1] == 0:
            continue
        t, s = w.shape[2:]
        rows = rows if rows is not None and len(rows) == t else tuple(map(str, range(t)))
        cols = cols if len(cols) == s else tuple(map(str, range(s)))
        out[key] = Maps(key, w, tuple(str(n) for n in a[l_key]), heads_of(w), rows, cols)
    return out


def ticks(labels: tuple[str, ...], most: int) -> list[tuple[float, str]]:
    """Tick labels at the cells' centres, every k-th one where there are more than ``most``."""
    every = max(1, -(-len(labels) // most))
    return [(k + 0.5, lab) for k, lab in enumerate(labels) if k % every == 0]


def class_heat(w: np.ndarray, grid: tuple[int, int], class_token: bool) -> np.ndarray:
    """One head's (T, S) map as a (rows, columns) patch grid: the class token's attention over the patches, or
    (without one) the mean attention each patch receives."""
    gh, gw = grid
    row = w[0, 1:] if class_token else w.mean(axis=0)
    return np.ascontiguousarray(row[: gh * gw].reshape(gh, gw), dtype=np.float32)


def overlay_rgba(heat: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float]:
    """A (gh, gw) heat grid upsampled to the picture's (H, W) as translucent colours (H, W, 4) uint8, scaled to
    its maximum (returned): strong attention shows its colour, weak lets the picture through."""
    h, w = size
    up = np.repeat(np.repeat(heat, h // heat.shape[0], axis=0), w // heat.shape[1], axis=1)
    top = float(np.nanmax(up)) if up.size else 0.0
    v = np.nan_to_num(up / top if top > 0 else up)
    rgba = np.empty((*up.shape, 4), dtype=np.uint8)
    rgba[..., :3] = LUT[np.clip((v * 255).round().astype(int), 0, 255)]
    rgba[..., 3] = (30 + 150 * v).astype(np.uint8)
    return rgba, top


def _map_plot(plot: pg.PlotItem, font: QFont) -> pg.ImageItem:
    """A plot for a (T, S) map: query rows top to bottom, key columns left to right, fixed levels 0 to 1."""
    prepare_plot(plot)
    plot.invertY(True)
    for name in ("left", "bottom"):
        axis = plot.getAxis(name)
        axis.setStyle(tickFont=font, tickLength=0)
        axis.setPen(PLAIN)
        axis.setTextPen(PLAIN)
    image = pg.ImageItem(axisOrder="row-major")
    image.setLookupTable(LUT)
    image.setLevels((0.0, 1.0))
    plot.addItem(image)
    return image


class MapGrid(GraphicsLayoutWidget):
    """Small maps, one row per layer, one column per head, each titled "layer · head h"; a click selects one."""

    picked = Signal(int, int)  # layer index, head index

    def __init__(self) -> None:
        super().__init__()
        self.setBackground("w")
        self.setToolTip("Every layer's heads at a glance (rows: queries, columns: keys); click one to enlarge it")
        self.font = QFont()
        self.font.setPointSize(7)
        self.plots: dict[tuple[int, int], pg.PlotItem] = {}
        self.images: dict[tuple[int, int], pg.ImageItem] = {}
        self.layers: tuple[str, ...] = ()
        self.heads: tuple[int, ...] = ()
        self.per_row = 0
        self.labels: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())
        self.selected = (0, 0)
        self.scene().sigMouseClicked.connect(self._on_click)

    def build(self, layers: tuple[str, ...], heads: tuple[int, ...]) -> None:
        """Make the plots for these layers and head counts (only when they change)."""
        self.ci.clear()
        self.plots, self.images, self.layers, self.heads = {}, {}, layers, heads
        self.labels, self.per_row = ((), ()), 0
        for li, n in enumerate(heads):
            for h in range(n):
                plot = pg.PlotItem()
                self.images[li, h] = _map_plot(plot, self.font)
                self.plots[li, h] = plot
        self._titles()
        self._arrange()

    def _side(self, per_row: int) -> float:
        """The maps' side with ``per_row`` heads a row (a layer's heads wrap onto more rows)."""
        rows = sum(-(-n // per_row) for n in self.heads)
        return min(self.width() / per_row - 30, self.height() / max(rows, 1) - 36)

    def _arrange(self) -> None:
        """Lay the maps out as large and near-square as the widget allows: each layer's heads in a row, wrapped
        when that makes them larger (one layer of four heads: two by two). Only a resize moves them."""
        if not getattr(self, "plots", None):  # resized while being made, or nothing to show
            return
        most = max(self.heads)
        even = [k for k in range(1, most + 1) if most % k == 0]  # full rows: 4 heads as 4, 2×2 or 4×1, not 3+1
        per_row = max(even, key=lambda k: (self._side(k), k))
        side = max(60.0, self._side(per_row))
        if per_row != self.per_row:
            self.per_row = per_row
            for plot in self.plots.values():
                if plot in self.ci.items:
                    self.ci.removeItem(plot)
            first = 0
            for li, n in enumerate(self.heads):
                for h in range(n):
                    self.ci.addItem(self.plots[li, h], row=first + h // per_row, col=h % per_row)
                first += -(-n // per_row)
        for plot in self.plots.values():
            plot.setMaximumSize(side + 30, side + 36)  # the map, its tick labels and its title

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._arrange()

    def set_maps(self, weights: np.ndarray) -> None:
        """New weights for the same structure: images updated in place."""
        for (li, h), image in self.images.items():
            image.setImage(weights[li, h], autoLevels=False, levels=(0.0, 1.0))

    def set_labels(self, rows: tuple[str, ...], cols: tuple[str, ...]) -> None:
        """Tick labels (axes repaint only when they change)."""
        if (rows, cols) == self.labels:
            return
        self.labels = (rows, cols)
        left, bottom = ticks(rows, SMALL_TICKS), ticks(cols, SMALL_TICKS)
        for plot in self.plots.values():
            plot.getAxis("left").setTicks([left])
            plot.getAxis("bottom").setTicks([bottom])
            plot.setRange(xRange=(0, len(cols)), yRange=(0, len(rows)), padding=0)

    def select(self, li: int, h: int) -> None:
        if (li, h) != self.selected:
            self.selected = (li, h)
            self._titles()

    def _titles(self) -> None:
        for (li, h), plot in self.plots.items():
            on = (li, h) == self.selected
            plot.setTitle(f"{self.layers[li]} · head {h + 1}", size="8pt", bold=on,
                          color=SELECTED if on else PLAIN)
            plot.vb.setBorder(pg.mkPen(SELECTED, width=2) if on else None)

    def cell_at(self, scene_pos: QPointF) -> tuple[int, int] | None:
        for key, plot in self.plots.items():
            if plot.sceneBoundingRect().contains(scene_pos):
                return key
        return None

    def _on_click(self, event: object) -> None:
        cell = self.cell_at(event.scenePos())  # type: ignore[attr-defined]
        if cell is not None:
            self.select(*cell)
            self.picked.emit(*cell)


class BigMap(GraphicsLayoutWidget):
    """The selected head's map, large, with token names on both axes and a 0–1 colour bar; or, for a vision
    transformer, the picture under a translucent heat map of the class token's attention over the patches."""

    def __init__(self, on_hover: Callable[[float, float], None]) -> None:
        super().__init__()
        self.setBackground("w")
        font = QFont()
        font.setPointSize(9)
        self.plot = self.ci.addPlot(row=0, col=0)
        self.matrix = _map_plot(self.plot, font)
        self.picture = pg.ImageItem(axisOrder="row-major")
        self.picture.setLevels((0.0, 1.0))
        self.overlay = pg.ImageItem(axisOrder="row-major")
        for item in (self.picture, self.overlay):
            self.plot.addItem(item)
            item.setVisible(False)
        self.bar = pg.ColorBarItem(values=(0.0, 1.0), colorMap=CMAP, interactive=False, width=14,
                                   label="attention weight")
        self.bar.getAxis("right").setStyle(tickFont=font)
        self.ci.addItem(self.bar, row=0, col=1)
        self.labels: tuple[object, ...] = ()
        self.shape: tuple[object, ...] = ()
        self.plot.getAxis("bottom").setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self._on_hover = on_hover
        self.scene().sigMouseMoved.connect(self._moved)

    def _mode(self, mode: str, size: tuple[int, int]) -> None:
        """Matrix or picture: items, aspect and range change only when the mode or the size does."""
        if (mode, size) == self.shape:
            return
        self.shape, self.labels = (mode, size), ()
        self.matrix.setVisible(mode == "matrix")
        self.picture.setVisible(mode == "picture")
        self.overlay.setVisible(mode == "picture")
        h, w = size
        self.plot.setAspectLocked(mode == "picture")  # square pixels: a circle stays round
        self.plot.setRange(xRange=(0, w), yRange=(0, h), padding=0.01 if mode == "picture" else 0)

    def show_matrix(self, w: np.ndarray, rows: tuple[str, ...], cols: tuple[str, ...], row_name: str,
                    col_name: str) -> None:
        """One head's (T, S) weights, rows and columns named, on the fixed 0–1 scale."""
        self._mode("matrix", w.shape)
        self.matrix.setImage(w, autoLevels=False, levels=(0.0, 1.0))
        labels = (rows, cols, row_name, col_name)
        if labels != self.labels:
            self.labels = labels
            self.plot.getAxis("left").setTicks([ticks(rows, BIG_TICKS)])
            self.plot.getAxis("bottom").setTicks([ticks(cols, BIG_TICKS)])
            self.plot.setLabel("left", row_name)
            self.plot.setLabel("bottom", col_name)
            self.bar.setLevels((0.0, 1.0))

    def show_overlay(self, picture: np.ndarray, rgba: np.ndarray, top: float) -> None:
        """The (H, W) picture in grey under (H, W, 4) translucent heat scaled to ``top``."""
        self._mode("picture", picture.shape)
        self.picture.setImage(picture, autoLevels=False, levels=(0.0, 1.0))
        self.overlay.setImage(rgba, autoLevels=False)
        if not self.labels:
            self.labels = ("picture",)
            for name in ("left", "bottom"):
                self.plot.getAxis(name).setTicks(None)
            self.plot.setLabel("left", "pixel row")
            self.plot.setLabel("bottom", "pixel column")
        self.bar.setLevels((0.0, max(top, 1e-6)))

    def _moved(self, pos: QPointF) -> None:
        if self.plot.sceneBoundingRect().contains(pos):
            p = self.plot.vb.mapSceneToView(pos)
            self._on_hover(p.x(), p.y())

