"""The Latent view's vocabulary (the "processing words" lesson on a vocabulary small enough to read): when its
layer is an ``embedding`` block, the view draws the block's learned table from the ``tokens`` probe, one point
per token on the table's principal plane, each labelled with its token, and the chosen token's nearest tokens
by cosine similarity as rings, lines and numbers, also listed beside the plot."""
from __future__ import annotations

from html import escape

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, Slot
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from engine.datasets.sequences import BLANK, BOS
from engine.probes.tokens import token_names

from ..colors import NEGATIVE, POSITIVE
from ..controller import RunInfo
from .plotting import PlotWidget, cached_curve

INK = (60, 60, 70)
CHOSEN = NEGATIVE  # the token asked about: orange
NEAR = POSITIVE  # its nearest tokens: blue
CHOSEN_HEX = QColor(*CHOSEN).name()
OFFSET = 8  # pixels between a point and its labels
MAX_LABELS = 300  # tokens named in the plane at most (a larger vocabulary shows the chosen and nearest only)
HINT = ("Each point is one token's learned vector, on the table's two principal axes: tokens the network uses "
        "alike end up close. Pick a token in “nearest to”, or click one, to see its nearest tokens by cosine "
        "similarity (measured in the whole table, not in the plane).")


def readable(names: np.ndarray) -> list[str]:
    """Token names as the view writes them: the sequence sets' blank and start tokens said in words."""
    words = {BLANK: f"{BLANK} blank", BOS: f"{BOS} start"}
    return [words.get(n, n) for n in names.tolist()]


def token_layers(run: RunInfo) -> list[str]:
    """The run's embedding blocks, where the tokens probe applies (sequence sets)."""
    if "tokens" not in run.probes:
        return []
    return [n for n in run.order if run.nodes[n].op == "embedding"]


def vocabulary(run: RunInfo, node: str) -> np.ndarray:
    """The token names of an embedding block's table (V = its parameters over its width)."""
    summary = run.nodes[node]
    return token_names(run.data.meta, summary.n_params // max(summary.shape[-1], 1))


def fill_layers(combo: QComboBox, run: RunInfo, layers: list[str]) -> None:
    """The layer menu of a run: the bottleneck, then every block; a sequence set's embedding blocks (drawn as
    their token tables) come first, and the first is chosen unless another entry was chosen before."""
    keep, before = combo.currentData(), {combo.itemData(i) for i in range(combo.count())}
    tables = token_layers(run) if run.dataset.kind == "sequences" else []
    combo.blockSignals(True)
    combo.clear()
    for name in tables:
        combo.addItem(f"{name}: token table", name)
    combo.addItem("bottleneck", None)
    for name in layers:
        if name not in tables:
            combo.addItem(f"{name} ({int(np.prod(run.nodes[name].shape))} wide)", name)
    if keep is None and tables and not before & set(tables):
        keep = tables[0]  # points per sample say little in a sequence set: its vocabulary first
    combo.setCurrentIndex(max(combo.findData(keep), 0))
    combo.blockSignals(False)


def label(text: str, color: tuple[int, ...], below: bool = False) -> pg.TextItem:
    """A text item set off its point by a few pixels to the right: above it (a token's name) or below it (a
    neighbour's cosine similarity, on a white ground)."""
    item = pg.TextItem(text, color=color, fill=pg.mkBrush(255, 255, 255, 200) if below else None)
    font = QFont()
    font.setPointSize(9 if below else 11)
    item.setFont(font)
    place(item, below)
    return item


def place(item: pg.TextItem, below: bool = False) -> None:
    """Anchor ``item`` so that its text starts OFFSET pixels right of its point, whatever its width."""
    box = item.textItem.boundingRect()
    item.setAnchor((-OFFSET / max(box.width(), 1.0), -0.1 if below else 0.8))


class TokenMap(QObject):
    """The token table in the Latent view's plot: a scatter of the tokens, a text item per token, rings for the
    chosen token and its nearest, lines to them with their cosine similarity, the "nearest to" combo and the
    side panel listing them. Items are made once per vocabulary and moved at each probe round."""

    def __init__(self, plot: PlotWidget) -> None:
        super().__init__(plot)
        self.item = plot.getPlotItem()
        self.points = pg.ScatterPlotItem(size=9, pen=pg.mkPen(255, 255, 255), brush=pg.mkBrush(*INK))
        self.near = pg.ScatterPlotItem(size=16, pen=pg.mkPen(*NEAR, width=2), brush=pg.mkBrush(*NEAR, 60))
        self.chosen = pg.ScatterPlotItem(size=18, pen=pg.mkPen(*CHOSEN, width=3), brush=pg.mkBrush(*CHOSEN, 90))
        for z, part in enumerate((self.points, self.near, self.chosen)):
            self.item.addItem(part)
            part.setZValue(10 + z)
        self.lines = cached_curve(self.item, pg.mkPen(*NEAR, width=2))
        self.lines.setZValue(9)
        self.texts: list[pg.TextItem] = []  # one per token (the first MAX_LABELS)
        self.scores: list[pg.TextItem] = []  # one per neighbour: its cosine similarity
        self.combo = QComboBox()
        self.combo.setToolTip("The token whose nearest tokens (by cosine similarity of their vectors) are marked")
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.listing = QLabel()
        self.listing.setTextFormat(Qt.TextFormat.RichText)
        self.listing.setWordWrap(True)
        self.listing.setToolTip("The chosen token's nearest tokens and the cosine similarity of their vectors (1: "
                                "the same direction, 0: unrelated, −1: opposite)")
        self.panel = QWidget()  # for the side column: "nearest to" [token], then the listing
        column = QVBoxLayout(self.panel)
        column.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        title = QLabel("nearest to")
        title.setToolTip(self.combo.toolTip())
        row.addWidget(title)
        row.addWidget(self.combo, 1)
        column.addLayout(row)
        column.addWidget(self.listing)
        self.node: str | None = None  # the embedding block drawn, None when the view draws samples
        self.names = np.zeros(0, dtype=str)
        self.arrays: dict[str, np.ndarray] | None = None
        self.xy = np.zeros((0, 2))
        self.combo.currentIndexChanged.connect(self._on_choice)
        self.show(None, None)

    @property
    def active(self) -> bool:
        return self.node is not None

    def show(self, node: str | None, run: RunInfo | None) -> None:
        """Draw ``node``'s table from now on (None: draw nothing, the view shows samples)."""
        if node != self.node or run is None:
            self.arrays = None
            self.xy = np.zeros((0, 2))
            self.points.clear()
            self.near.clear()
            self.chosen.clear()
            self.lines.setData([], [])
            for t in self.texts + self.scores:
                t.setVisible(False)
        self.node = node
        for part in (self.points, self.near, self.chosen, self.lines):
            part.setVisible(node is not None)
        self.panel.setVisible(node is not None)
        if node is not None and run is not None:
            self._set_names(vocabulary(run, node))

    def _set_names(self, names: np.ndarray) -> None:
        """The vocabulary's entries in the combo and its text items (kept while the names stay)."""
        if np.array_equal(names, self.names) and self.combo.count() == len(names):
            return
        keep = self.combo.currentData()
        self.names = names
        self.combo.blockSignals(True)
        self.combo.clear()
        for i, name in enumerate(readable(names)):
            self.combo.addItem(name, i)
            self.combo.setItemData(i, f"token id {i}", Qt.ItemDataRole.ToolTipRole)
        default = 1 if len(names) > 1 else 0  # id 0 is the blank in the sequence sets: the first content token
        self.combo.setCurrentIndex(keep if isinstance(keep, int) and 0 <= keep < len(names) else default)
        self.combo.blockSignals(False)
        for t in self.texts:
            self.item.removeItem(t)
        self.texts = [label(name, INK) for name in readable(names)[:MAX_LABELS]]
        for t in self.texts:
            self.item.addItem(t, ignoreBounds=True)
            t.setZValue(20)
            t.setVisible(False)

    def draw(self, arrays: dict[str, np.ndarray]) -> bool:
        """Draw a tokens probe's answer; False when it is about another block (an earlier request)."""
        if self.node is None or str(arrays["node"][0]) != self.node:
            return False
        self.arrays = arrays
        self._set_names(arrays["names"])
        self.xy = xy = np.nan_to_num(arrays["pca"].astype(np.float64))
        self.points.setData(pos=xy)
        for t, (x, y) in zip(self.texts, xy.tolist(), strict=False):
            t.setPos(x, y)
            t.setVisible(True)
        self.highlight()
        return True

    def extent(self) -> np.ndarray:
        """Corners the plot's range must hold: the points, with room for their labels right of and above them."""
        if not len(self.xy):
            return self.xy
        lo, hi = self.xy.min(axis=0), self.xy.max(axis=0)
        span = np.maximum(hi - lo, 1e-6)
        return np.array([lo - [0.06, 0.06] * span, hi + [0.16, 0.14] * span])

    @Slot(int)
    def _on_choice(self, index: int) -> None:
        self.highlight()

    def pick(self, token: int | None) -> None:
        """Choose a token (a click on it in the plane)."""
        if token is not None and 0 <= token < self.combo.count():
            self.combo.setCurrentIndex(token)

    def chosen_token(self) -> int | None:
        k = self.combo.currentData()
        return k if isinstance(k, int) and self.arrays is not None and k < len(self.arrays["names"]) else None

    def highlight(self) -> None:
        """Mark the chosen token and its nearest, and list them in the panel."""
        t = self.chosen_token()
        if t is None or self.arrays is None:
            return
        names, xy = readable(self.arrays["names"]), self.xy
        near, sims = self.arrays["nearest"][t], self.arrays["similarity"][t]
        self.chosen.setData(pos=xy[t:t + 1])
        self.near.setData(pos=xy[near])
        x = np.column_stack([np.full(len(near), xy[t, 0]), xy[near, 0], np.full(len(near), np.nan)]).ravel()
        y = np.column_stack([np.full(len(near), xy[t, 1]), xy[near, 1], np.full(len(near), np.nan)]).ravel()
        self.lines.setData(x, y)
        while len(self.scores) < len(near):
            score = label("", NEAR, below=True)
            self.item.addItem(score, ignoreBounds=True)
            score.setZValue(19)
            self.scores.append(score)
        for i, score in enumerate(self.scores):
            score.setVisible(i < len(near))
            if i < len(near):
                score.setText(f"{sims[i]:+.2f}")
                place(score, below=True)
                score.setPos(*xy[near[i]])
        for i, text in enumerate(self.texts):
            color = CHOSEN if i == t else NEAR if i in near else INK
            font = text.textItem.font()
            font.setBold(i == t or i in near)
            text.setFont(font)
            text.setColor(color)
            place(text)
        self.listing.setText(self._listing(names, t, near, sims))

    @staticmethod
    def _listing(names: list[str], t: int, near: np.ndarray, sims: np.ndarray) -> str:
        rows = "".join(f"<tr><td>{i + 1}.</td><td><b>{escape(names[j])}</b></td><td align='right'>{s:+.2f}</td>"
                       "</tr>" for i, (j, s) in enumerate(zip(near.tolist(), sims.tolist(), strict=True)))
        return (f"<b>nearest to <span style='color:{CHOSEN_HEX}'>{escape(names[t])}</span></b><br>"
                f"<span style='color:#555'>cosine similarity</span><table cellspacing='3'>{rows}</table>")

    def caption(self, step: int) -> str:
        a = self.arrays
        if a is None:
            return f"{self.node}: waiting for the token table…"
        v, d = a["table"].shape
        e = a["pca_explained"]
        lost = int((~np.isfinite(a["pca"]).all(axis=1)).sum())
        text = (f"{self.node}: {v} tokens × {d} numbers · PCA: PC1 {100 * e[0]:.0f} %, PC2 {100 * e[1]:.0f} % "
                f"of the variance · step {step:,}")
        if lost:
            text += f" · {lost} not finite (drawn at 0)"
        if v > MAX_LABELS:
            text += f" · the first {MAX_LABELS} named"
        return text
