"""Latent: a layer's activations for many samples as points coloured by label. A 2-D layer is drawn as it is, a
wider one on its two principal axes (PCA, again at every probe round), or by t-SNE on demand (computed off the
GUI thread, with progress and cancel, and kept until rerun). Hover a point to see its input; an autoencoder
decodes the point you click, and a drag decodes the line between two points into a strip. An ``embedding``
block is drawn as its token table instead (latent_tokens.py)."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QGraphicsItem,
    QHBoxLayout,
    QSlider,
    QWidget,
)

from engine import Snapshot
from engine.probes import ProbeRequest
from engine.projection import Projection

from ..controller import Controller, RunInfo
from .base import LiveView, control_row
from .latent_parts import (
    Controls,
    DecodeAsk,
    PlaneMouse,
    Shown,
    SidePanel,
    Strip,
    TsneMap,
    TsneRunner,
    hidden_layers,
    legend_html,
    move_points,
    plot_ranges,
    point_brushes,
    qimage,
    sample_input,
    widen,
)
from .latent_tokens import HINT, TokenMap, fill_layers
from .plotting import PlotWidget, cached_curve, prepare_plot

STRIP = 10  # pictures decoded along a drag
MARK = (20, 20, 20)


class LatentView(LiveView):
    """A ScatterPlotItem of a layer's activations (positions moved in place, brushes built once per label set),
    a side panel for the legend, the input pointed at and the picture decoded, and a strip for a drag."""

    # decode applies to autoencoders only (`LiveView.ready`), tokens to networks with an embedding block
    probes = frozenset({"embedding", "decode", "tokens"})

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(controller, parent)
        self.setMinimumSize(320, 240)
        c = Controls()
        self.layer, self.split, self.projection, self.run_tsne = c.layer, c.split, c.projection, c.run_tsne
        self.progress, self.cancel, self.caption, self.hint = c.progress, c.cancel, c.caption, c.hint

        self.plot = PlotWidget(background="w")
        item = self.plot.getPlotItem()
        prepare_plot(item)
        item.setAspectLocked(True)
        self.scatter = pg.ScatterPlotItem(size=6, pen=None)
        self.ring = pg.ScatterPlotItem(size=13, pen=pg.mkPen(MARK, width=2), brush=None)
        self.marks = pg.ScatterPlotItem(size=12, symbol="x", pen=pg.mkPen(MARK, width=1), brush=pg.mkBrush(*MARK))
        # cached as pixels: the ring and marks drawn over them do not make Qt paint 10,000 points again
        self.scatter.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        for part in (self.scatter, self.ring, self.marks):
            self.plot.addItem(part)
        self.segment = cached_curve(item, pg.mkPen(MARK, width=2))
        self.ring.setZValue(5)
        self.marks.setZValue(6)
        self.mouse = PlaneMouse(self.plot)
        self.tokens = TokenMap(self.plot)

        side = SidePanel(self.tokens.panel)
        self.legend, self.pointed, self.decoded = side.legend, side.pointed, side.decoded
        middle = QHBoxLayout()
        middle.addWidget(self.plot, 1)
        middle.addWidget(side)
        self.strip = Strip()
        self.settings = QWidget()  # what only sample points have (hidden while a token table shows)
        self.settings.setLayout(control_row("split", self.split, "projection", self.projection, self.run_tsne,
                                            stretch=False))
        self.settings.layout().setContentsMargins(0, 0, 0, 0)
        self.column(control_row("layer", self.layer, self.settings),
                    control_row((self.caption, 1), self.progress, self.cancel, stretch=False),
                    (middle, 1), self.strip, self.hint)

        self.runner = TsneRunner(self)
        self.runner.progressed.connect(self._on_tsne_progress)
        self.runner.finished.connect(self._on_tsne_done)
        self.runner.failed.connect(self._on_tsne_failed)
        self.layer.currentIndexChanged.connect(self._ask)
        self.split.currentIndexChanged.connect(self._ask)
        self.projection.currentIndexChanged.connect(self._on_projection)
        self.projection.activated.connect(self._on_projection_picked)
        self.run_tsne.clicked.connect(self._on_run_tsne)
        self.cancel.clicked.connect(self._on_cancel)
        self.mouse.hovered.connect(self._on_hover)
        self.mouse.left.connect(self._on_leave)
        self.mouse.clicked.connect(self._on_click)
        self.mouse.dragging.connect(self._on_dragging)
        self.mouse.dragged.connect(self._on_dragged)
        controller.run_changed.connect(self._on_run_changed)  # also while hidden: a map of the old run is no use
        self._show_progress(False)
        self._reset()

    def _reset(self) -> None:
        """Forget what belonged to the run drawn."""
        self.shown: Shown | None = None
        self.xy = np.zeros((0, 2))  # the positions drawn, row by row of `shown`
        self.mode = "pca"  # direct | pca | tsne: how `xy` came about
        self.proj: Projection | None = None
        self._probe_proj: Projection | None = None  # the embedding probe's PCA plane of the points shown
        self._placed: tuple[object, ...] = ()
        self.tsne: TsneMap | None = None
        self.job: int | None = None  # the t-SNE job under way
        self.job_of: tuple[Shown, int] | None = None  # the points it maps, of which run
        self.note = ""  # the last t-SNE event worth saying (cancelled, failed)
        self.asked: DecodeAsk | None = None
        self.bottleneck: str | None = None
        self.lost = 0  # points left out for not being finite
        self._serial = -1
        self._decode_serial = -1
        self._labels: np.ndarray | None = None
        self._hover: int | None = None
        self._range: tuple[tuple[float, float], tuple[float, float]] | None = None
        self._axes = ("", "")
        self.scatter.clear()
        self.ring.clear()
        self.marks.clear()
        self.segment.setData([], [])
        self.pointed.show_picture(None, "Hover a point to see its input.")
        self.decoded.show_picture(None, "Click the plane to decode a point.")
        self.strip.show_images([], "Drag across the plane to decode the line between two points.")

    def choices(self) -> dict[str, QComboBox | QSlider]:
        return {"layer": self.layer, "split": self.split, "projection": self.projection, "nearest": self.tokens.combo}

    def decodes(self) -> bool:
        run = self.controller.run_info
        return run.task == "reconstruction" and "decode" in run.probes

    def on_run(self, run: RunInfo) -> None:
        self.runner.cancel()
        self._show_progress(False)
        self._reset()
        layers = hidden_layers(run)
        self.caption.setText("" if layers else "This network has no block between input and output to draw.")
        fill_layers(self.layer, run, layers)
        self._switch(None)  # the sample points (and an autoencoder's decoded pictures) until a table is asked
        if self.controller.probe_requests.get("decode") not in (None, ProbeRequest()):
            self.controller.ask_probe("decode", ProbeRequest())  # a code asked of the last network
        self._ask()

    @Slot()
    def _ask(self) -> None:
        """Ask the embedding probe for the chosen layer and split; a t-SNE of other points is of no use now. An
        embedding block's table comes from the tokens probe (the embedding probe then reads one sample only)."""
        if self.job is not None:
            self._on_cancel()
        layer, run = self.layer.currentData(), self.controller.run_info
        table = layer if layer is not None and run.nodes[layer].op == "embedding" and "tokens" in run.probes else None
        if table is not None:
            self.controller.ask_probe("tokens", ProbeRequest(layer=table))
        if table != self.tokens.node:
            self._switch(table)
        self.controller.ask_probe("embedding", ProbeRequest(layer=layer, split=self.split.currentData(),
                                                            samples=(0, 1) if table else None))

    def _switch(self, table: str | None) -> None:
        """Between a layer's sample points and an embedding block's token table (None)."""
        self.tokens.show(table, self.controller.run_info)
        for part in (self.scatter, self.ring, self.marks, self.segment, self.legend, self.pointed):
            part.setVisible(table is None)
        self.settings.setVisible(table is None)
        self.decoded.setVisible(table is None and self.decodes())
        self.strip.setVisible(table is None and self.decodes())
        self._range, self._placed, self._axes, self.xy, self._hover = None, (), ("", ""), np.zeros((0, 2)), None

    # --- drawing ------------------------------------------------------------------------------------

    def draw(self, snap: Snapshot | None) -> None:
        assert snap is not None and self.run is not None
        if self.tokens.active:
            if self.tokens.draw(snap.probes["tokens"].arrays):
                self._fit_range(self.tokens.extent())
                self.mode = "pca"
                self._name_axes("")
            self.caption.setText(self.tokens.caption(snap.step))
            self.hint.setText(HINT)
            return
        emb = snap.probes["embedding"]
        a = emb.arrays
        layer, split = str(a["layer"][0]), self.split.currentData()
        wanted = self.layer.currentData()
        y = self.run.data.y_test if split == "test" else self.run.data.y_train
        y = y[:, 0] if y.ndim == 2 else y  # a per-token task's points: coloured by their answer's first token
        rows = a["rows"]
        if (wanted is not None and wanted != layer) or len(rows) == 0 or int(rows.max()) >= len(y) \
                or not np.array_equal(y[rows], a["labels"]):
            return  # the answer to an earlier request (another layer or split): the new one comes next
        if wanted is None and self.bottleneck != layer:
            self.bottleneck = layer
            self.layer.setItemText(self.layer.findData(None), f"bottleneck: {layer}")
        if emb.serial != self._serial:
            self._serial = emb.serial
            finite = np.isfinite(a["points"]).all(axis=1)
            self.shown = Shown(a["points"][finite], rows[finite], a["labels"][finite], layer, split, snap.step)
            self.lost = int((~finite).sum())
            # the probe projects wide layers on the training thread; the view only draws the plane
            self._probe_proj = Projection(a["pca"][finite], a["pca_axes"], a["pca_mean"],
                                          a["pca_explained"]) if "pca" in a else None
        placed = (emb.serial, self.projection.currentData(), id(self.tsne))  # what the positions come from
        if placed != self._placed:  # not on a decode's answer alone
            self._placed = placed
            self._place()
        decode = snap.probes.get("decode")
        if decode is not None and decode.serial != self._decode_serial:
            self._decode_serial = decode.serial
            self._show_decoded(decode.arrays)
        self._describe(snap.step)

    def tsne_fits(self) -> bool:
        """Whether the t-SNE map kept belongs to the points shown (this run, layer and split)."""
        return self.tsne is not None and self.tsne.fits(self.shown, self.controller.run_info.run_id)

    def _place(self) -> None:
        """Project the points shown the chosen way and move the scatter's points there."""
        s = self.shown
        if s is None:
            return
        if self.projection.currentData() == "tsne" and self.tsne_fits():
            assert self.tsne is not None
            mode, xy, self.proj = "tsne", self.tsne.points, None
        elif s.points.shape[1] <= 2:  # drawn as it is (one unit: along the x axis)
            mode, xy, self.proj = "direct", widen(s.points), None
        elif len(s.points) and self._probe_proj is not None:
            self.proj = self._probe_proj
            mode, xy = "pca", self.proj.points
        else:
            mode, xy, self.proj = "pca", np.zeros((0, 2)), None
        if mode != self.mode:
            self._range = None
        self.mode = mode
        self.xy = xy = np.ascontiguousarray(xy, dtype=np.float64)
        if self._labels is None or not np.array_equal(self._labels, s.labels):
            self._labels = s.labels
            self.scatter.setData(pos=xy, brush=point_brushes(s.labels, self.regression()))
            self.legend.setText(legend_html(s.labels, self.regression(), self.class_name))
        else:
            move_points(self.scatter, xy)
        self._fit_range(xy)
        self._name_axes(s.layer)
        if self._hover is not None and self._hover < len(xy):
            self.ring.setData(pos=xy[self._hover:self._hover + 1])
        self._draw_marks()

    def regression(self) -> bool:
        return self.controller.run_info.task == "regression"

    def _fit_range(self, xy: np.ndarray) -> None:
        ranges = plot_ranges(self._range, xy)
        if ranges is not None and ranges != self._range:
            self._range = ranges
            self.plot.setRange(xRange=ranges[0], yRange=ranges[1], padding=0)

    def _name_axes(self, layer: str) -> None:
        second = f"{layer}[1]" if self.shown is not None and self.shown.points.shape[1] == 2 else ""
        names = {"direct": (f"{layer}[0]", second), "pca": ("PC1", "PC2"),
                 "tsne": ("t-SNE 1", "t-SNE 2")}[self.mode]
        if names != self._axes:
            self._axes = names
            item = self.plot.getPlotItem()
            item.setLabel("bottom", names[0])
            item.setLabel("left", names[1])

    def _describe(self, step: int) -> None:
        s = self.shown
        if s is None:
            return
        width = s.points.shape[1]
        text = f"{s.layer}: {width} wide · {len(s.rows):,} {s.split} points"
        if self.lost:
            text += f" ({self.lost} left out: not finite)"
        if self.mode == "direct":
            text += " · drawn as they are" + (" (a 2-D layer)" if width == 2 else ", along x (one unit)")
        elif self.mode == "pca" and self.proj is not None:
            e = self.proj.explained
            text += f" · PCA: PC1 {100 * e[0]:.0f} %, PC2 {100 * e[1]:.0f} % of the variance"
        elif self.mode == "tsne" and self.tsne is not None:
            text += f" · t-SNE of step {self.tsne.step:,}, kept until rerun (now step {step:,})"
        if self.job is not None:
            text += " · t-SNE running: PCA meanwhile"
        elif self.projection.currentData() == "tsne" and self.mode != "tsne":
            text += " · no t-SNE of these points yet: press Run t-SNE"
        if self.note:
            text += f" · {self.note}"
        self.caption.setText(text)
        why = self._why_not_decode()
        self.hint.setText(why or ("Click the plane to decode a point; drag to decode the line between two points "
                                  "into a strip." if self.decodes() else "Hover a point to see its input."))
        if self.asked is None:
            self.decoded.show_picture(None, why or "Click the plane to decode a point.")

    def _why_not_decode(self) -> str:
        """Why a click decodes nothing now ('' when it does)."""
        if not self.decodes():
            return ""
        if self.mode == "tsne":
            return "t-SNE cannot be inverted: choose PCA to decode points of the plane."
        if self.shown is None or self.shown.layer != self.bottleneck:
            return "Decoding starts from the bottleneck: choose it as the layer to decode points."
        return ""

    # --- hovering -----------------------------------------------------------------------------------

    @Slot(QPointF)
    def _on_hover(self, at: QPointF) -> None:
        k = self.mouse.nearest(self.xy, at)
        if k == self._hover:
            return
        self._hover = k
        if k is None or self.shown is None:
            self._on_leave()
            return
        self.ring.setData(pos=self.xy[k:k + 1])
        row, label = int(self.shown.rows[k]), self.shown.labels[k]
        image, where = sample_input(self.controller.run_info.data, self.shown.split, row)
        what = f"target {float(label):.3g}" if self.regression() else f"label {self.class_name(int(label))}"
        self.pointed.show_picture(image, f"{self.shown.split} #{row}: {what}{where}")

    @Slot()
    def _on_leave(self) -> None:
        self._hover = None
        self.ring.clear()
        self.pointed.show_picture(None, "Hover a point to see its input.")

    # --- decoding -----------------------------------------------------------------------------------

    def to_latent(self, plane: np.ndarray) -> np.ndarray:
        """Plane positions (n, 2) to codes (n, D): the code itself for a 2-D layer, else mean + xy · axesᵀ."""
        if self.mode == "pca" and self.proj is not None:
            return (self.proj.mean + plane @ self.proj.axes.T).astype(np.float32)
        return plane[:, :self.shown.points.shape[1] if self.shown is not None else 2].astype(np.float32)

    def to_plane(self, latent: np.ndarray) -> np.ndarray:
        if self.mode == "pca" and self.proj is not None:
            return (latent - self.proj.mean) @ self.proj.axes
        return widen(latent)

    @Slot(QPointF)
    def _on_click(self, at: QPointF) -> None:
        if self.tokens.active:
            self.tokens.pick(self.mouse.nearest(self.tokens.xy, at))
        else:
            self.decode("click", np.array([[at.x(), at.y()]]))

    @Slot(QPointF, QPointF)
    def _on_dragging(self, a: QPointF, b: QPointF) -> None:
        if self.decodes() and not self._why_not_decode():
            self.segment.setData([a.x(), b.x()], [a.y(), b.y()])

    @Slot(QPointF, QPointF)
    def _on_dragged(self, a: QPointF, b: QPointF) -> None:
        t = np.linspace(0.0, 1.0, STRIP)[:, None]
        start, end = np.array([a.x(), a.y()]), np.array([b.x(), b.y()])
        self.decode("strip", start + t * (end - start))

    def decode(self, kind: str, plane: np.ndarray) -> None:
        """Ask the decoder for the codes under ``plane`` (n, 2); the panel waits for this very answer."""
        if not self.decodes() or self._why_not_decode() or self.shown is None:
            return
        latent = self.to_latent(plane)
        request = ProbeRequest(points=tuple(float(v) for v in latent.ravel()), layer=self.shown.layer)
        self.asked = DecodeAsk(kind, latent, request)
        if kind == "click":
            self.decoded.show_picture(None, "decoding…")
        else:
            self.strip.show_images([], "decoding…")
        self._draw_marks()
        self.controller.ask_probe("decode", request)

    def _draw_marks(self) -> None:
        """The clicked point, or the drag's line and its decoded points, where they lie in the plane now."""
        ask, s = self.asked, self.shown
        if ask is None or s is None or self.mode == "tsne" or ask.latent.shape[1] != s.points.shape[1]:
            self.marks.clear()
            self.segment.setData([], [])
            return
        xy = self.to_plane(ask.latent)
        self.marks.setData(pos=xy)
        if ask.kind == "strip":
            self.segment.setData(xy[[0, -1], 0], xy[[0, -1], 1])
        else:
            self.segment.setData([], [])

    def _show_decoded(self, arrays: dict[str, np.ndarray]) -> None:
        ask = self.asked
        if ask is None or not np.array_equal(arrays["points"], ask.latent):
            return  # the origin's default picture, or an earlier click's: not what was asked last
        images = [qimage(img) for img in arrays["images"]]
        if ask.kind == "click":
            x, y = self.to_plane(ask.latent)[0]
            self.decoded.show_picture(images[0], f"decoded at ({x:.2f}, {y:.2f})")
        else:
            self.strip.show_images(images)
            self.decoded.show_picture(images[-1], "the drag's end, B")

    # --- t-SNE --------------------------------------------------------------------------------------

    @Slot()
    def _on_projection(self) -> None:
        self.note = ""
        self.redraw()

    @Slot(int)
    def _on_projection_picked(self, index: int) -> None:
        """t-SNE chosen by hand: compute it unless a map of these points is kept or one is running."""
        if self.projection.itemData(index) == "tsne" and not self.tsne_fits() and self.job is None:
            self._on_run_tsne()

    @Slot()
    def _on_run_tsne(self) -> None:
        s = self.shown
        if s is None or len(s.points) < 5:
            self.note = "t-SNE needs at least 5 points"
            self.redraw()
            return
        self.job = self.runner.start(s.points, self.xy.copy())
        self.job_of = (s, self.controller.run_info.run_id)
        self.note = ""
        self.progress.setValue(0)
        self._show_progress(True)
        self.projection.setCurrentIndex(self.projection.findData("tsne"))
        self.redraw()

    @Slot()
    def _on_cancel(self) -> None:
        self.runner.cancel()
        self.job = None
        self._show_progress(False)
        if not self.tsne_fits():
            self.projection.setCurrentIndex(self.projection.findData("pca"))
        self.note = "t-SNE cancelled"
        self.redraw()

    @Slot()
    def _on_run_changed(self) -> None:
        if self.job is not None:
            self._on_cancel()

    def _show_progress(self, on: bool) -> None:
        self.progress.setVisible(on)
        self.cancel.setVisible(on)

    @Slot(int, float)
    def _on_tsne_progress(self, job: int, share: float) -> None:
        if job == self.job:
            self.progress.setValue(round(100 * share))

    @Slot(int, object)
    def _on_tsne_done(self, job: int, points: object) -> None:
        if job != self.job or self.job_of is None:
            return  # cancelled, or replaced by another run
        (s, run_id), self.job = self.job_of, None
        self._show_progress(False)
        if isinstance(points, np.ndarray):
            self.tsne = TsneMap(points, s.rows, s.labels, s.layer, s.split, run_id, s.step)
            self.projection.setCurrentIndex(self.projection.findData("tsne"))
        self.redraw()

    @Slot(int, str)
    def _on_tsne_failed(self, job: int, why: str) -> None:
        if job == self.job:
            self.job = None
            self._show_progress(False)
            self.note = f"t-SNE failed: {why}"
            self.redraw()

    def tsne_running(self) -> bool:
        return self.runner.running()

    def shutdown(self) -> None:
        """The window is closing (whichever tab shows): stop the t-SNE thread and wait for it."""
        self.runner.stop()
        self.job = None
        self._show_progress(False)
