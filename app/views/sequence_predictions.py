"""Predictions of a sequence set: rows of examples, each its input tokens, the target and the network's answer as
coloured cells with the token names in them. An answer's token is green where right and red where wrong, the
stronger the surer the network was (a bar at the cell's foot gives the same confidence), and each row ends with
✓ when every token is right. A classifier of sequences (count zeros, parity, brackets) shows one row per example:
its tokens, then the predicted class beside the true one. An encoder–decoder writes its answer token by token,
greedy, by beam search or by sampling at a temperature, as the decoding controls choose."""
from __future__ import annotations

import colorsys
import math
from typing import Any

import numpy as np
from PySide6.QtCore import QEvent, QPoint, QRect, Qt, Slot
from PySide6.QtGui import QColor, QFont, QHelpEvent, QPainter, QPaintEvent, QPixmap, QResizeEvent
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QToolTip,
    QWidget,
)

from engine import SessionSpec, Snapshot
from engine.datasets import family_of
from engine.decoding import has_decoder
from engine.probes import ProbeRequest

from ..controller import Controller, RunInfo
from .base import LiveView, control_row, text_label

SHOWN = 16  # examples a page
CELL_W, CELL_H, MIN_CELL_W, TEXT_MIN_W = 20, 20, 5, 11  # a token's cell; below TEXT_MIN_W wide, colour only
READABLE_W = 16  # blocks go side by side while their cells stay this wide
LABEL_W, HEADER_H, CHECK_W, LINE_GAP, GAP_X, GAP_Y, MARGIN = 48, 15, 20, 2, 18, 10, 6
PAPER, INK, FAINT, EDGE = QColor(255, 255, 255), QColor(40, 40, 40), QColor(130, 130, 130), QColor(200, 200, 200)
BAR = QColor(70, 70, 70, 150)  # the confidence bar at an answer cell's foot
RIGHT, WRONG = (46, 160, 67), (215, 48, 39)
LINES = ("input", "target", "output")
EMPTY = "The predictions appear at the next probe round (press play, or step once)."
SPLIT_TIP = "Which examples: the test set, at the training length, or the longer held-out sequences, which test " \
            "whether the network generalises to lengths it never saw"
FIRST_TIP = "The first example shown (its index in the set); the arrows page through the set"
METHOD_TIPS = {
    "greedy": "Greedy: at every step write the likeliest token, given the answer so far",
    "beam": "Beam search: keep the likeliest few answers so far (the beam width) at every step and write the "
            "likeliest whole answer; finds answers greedy misses by committing too early",
    "sample": "Sampling: draw every token from the network's probabilities, sharpened or flattened by the "
              "temperature (seeded, so the same network writes the same answer)",
}
DECODING_TIP = "How an encoder–decoder writes its answer, token by token. A network without a decoder input " \
               "answers every position at once: its likeliest token at each"
WIDTH_TIP = "Beam search: how many answers so far it keeps at every step (1 is greedy)"
TEMPERATURE_TIP = "Sampling: the softmax temperature. Below 1 the likeliest tokens win more often, above 1 the " \
                  "draws spread to unlikely tokens"


def is_sequence_set(spec: SessionSpec) -> bool:
    """The data is a sequence set (the predictions and sequence-accuracy views)."""
    return family_of(spec.dataset).kind == "sequences"


def token_colours(n: int) -> list[QColor]:
    """A light tint per token id, the blank (id 0) white. The hues keep clear of red and green, which mark the
    answer's tokens wrong and right: yellow-orange, then cyan through blue and purple to pink."""
    bands = ((0.09, 0.17), (0.47, 0.93))
    span = sum(b - a for a, b in bands)
    out = [QColor(255, 255, 255)]
    for k in range(1, n):
        h = (k - 1) / max(n - 1, 1) * span
        for a, b in bands:
            if h <= b - a:
                h += a
                break
            h -= b - a
        r, g, b_ = colorsys.hsv_to_rgb(h, 0.3 if k % 2 else 0.2, 1.0)
        out.append(QColor(round(255 * r), round(255 * g), round(255 * b_)))
    return out


def verdict_colour(right: bool, confidence: float) -> QColor:
    """Green or red over white, the stronger the surer the network was."""
    a = 0.15 + 0.6 * min(max(confidence, 0.0), 1.0)
    r, g, b = RIGHT if right else WRONG
    return QColor(round(255 + (r - 255) * a), round(255 + (g - 255) * a), round(255 + (b - 255) * a))


class TokenRows(QWidget):
    """The examples as blocks of cell rows, as many blocks side by side as the width takes; drawn once per
    result into a pixmap that paint events copy."""

    def __init__(self) -> None:
        super().__init__()
        self.a: dict[str, np.ndarray] | None = None
        self.message = EMPTY
        self.pixmap: QPixmap | None = None
        self.cell_w, self.columns, self.block_w, self.block_h, self.class_w = CELL_W, 1, 0, 0, 0
        self.colours: list[QColor] = []
        self._glyphs: dict[tuple[str, bool], QPixmap] = {}
        self._width = -1
        self.cell_font = QFont(self.font())
        self.cell_font.setPointSizeF(max(self.font().pointSizeF() - 1, 7))
        self.small_font = QFont(self.cell_font)
        self.setMinimumSize(160, 60)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

    @property
    def per_token(self) -> bool:
        return self.a is not None and self.a["outputs"].ndim == 2

    def show_arrays(self, a: dict[str, np.ndarray]) -> None:
        self.a, self.message = a, ""
        self.colours = token_colours(len(a["token_names"]))
        self._compose()

    def clear(self, message: str) -> None:
        self.a, self.pixmap, self.message = None, None, message
        self.setMinimumHeight(60)
        self.update()

    # --- layout ------------------------------------------------------------------------------------

    def _layout(self) -> None:
        assert self.a is not None
        n, steps = self.a["inputs"].shape
        avail = max(self.width() - 2 * MARGIN, 120)
        if self.per_token:
            fixed = LABEL_W + CHECK_W
            self.block_h = HEADER_H + 3 * CELL_H + 2 * LINE_GAP
        else:
            metrics = self.fontMetrics()
            self.class_w = max(metrics.horizontalAdvance(str(c)) for c in self.a["class_names"]) + 12
            fixed = LABEL_W + 8 + self.class_w + 8 + metrics.horizontalAdvance("true: ") + self.class_w
            self.block_h = CELL_H
        def cell_w(columns: int) -> int:  # the widest cells that fit this many blocks side by side
            return int(min((avail - columns * fixed - (columns - 1) * GAP_X) // (columns * steps), CELL_W))

        # as many blocks side by side as keep the cells wide enough for their names (one block at least)
        self.columns = max([c for c in range(1, n + 1) if cell_w(c) >= READABLE_W], default=1)
        self.cell_w = max(cell_w(self.columns), MIN_CELL_W)
        self.block_w = fixed + steps * self.cell_w
        rows = math.ceil(n / self.columns)
        self.setMinimumWidth(min(self.block_w + 2 * MARGIN, 4000))
        self.setMinimumHeight(rows * (self.block_h + GAP_Y) + 2 * MARGIN)

    def origin(self, k: int) -> QPoint:
        """The top left of example k's block."""
        row, col = divmod(k, self.columns)
        return QPoint(MARGIN + col * (self.block_w + GAP_X), MARGIN + row * (self.block_h + GAP_Y))

    def cell(self, k: int, line: int, t: int) -> QRect:
        """Token t's cell of example k's line (0 input, 1 target, 2 output; a classifier has the input only)."""
        o = self.origin(k)
        top = o.y() + (HEADER_H + line * (CELL_H + LINE_GAP) if self.per_token else 0)
        return QRect(o.x() + LABEL_W + t * self.cell_w, top, self.cell_w, CELL_H)

    def class_cell(self, k: int) -> QRect:
        o = self.origin(k)
        steps = self.a["inputs"].shape[1] if self.a is not None else 0
        return QRect(o.x() + LABEL_W + steps * self.cell_w + 8, o.y(), self.class_w, CELL_H)

    def check_rect(self, k: int) -> QRect:
        r = self.cell(k, 2, self.a["inputs"].shape[1] if self.a is not None else 0)
        return QRect(r.x() + 3, r.y(), CHECK_W - 3, CELL_H)

    # --- drawing -----------------------------------------------------------------------------------

    def _compose(self) -> None:
        if self.a is None:
            return
        self._width = self.width()
        self._layout()
        self._glyphs = {}
        ratio = self.devicePixelRatioF()
        width = 2 * MARGIN + self.columns * (self.block_w + GAP_X)  # the blocks only: paint fills the rest
        pixmap = QPixmap(round(width * ratio), round(self.minimumHeight() * ratio))
        pixmap.setDevicePixelRatio(ratio)
        pixmap.fill(PAPER)
        p = QPainter(pixmap)
        for k in range(len(self.a["inputs"])):
            self._block(p, k) if self.per_token else self._class_row(p, k)
        p.end()
        self.pixmap = pixmap
        self.update()

    def _glyph(self, name: str, bar: bool) -> QPixmap:
        """A token's name as drawn in a cell (above its bar, if it has one): drawn once a composition, then
        copied into every cell (laying text out per cell cost most of a frame)."""
        key = (name, bar)
        if key not in self._glyphs:
            ratio = self.devicePixelRatioF()
            pixmap = QPixmap(round(self.cell_w * ratio), round(CELL_H * ratio))
            pixmap.setDevicePixelRatio(ratio)
            pixmap.fill(Qt.GlobalColor.transparent)
            g = QPainter(pixmap)
            g.setFont(self.cell_font)
            g.setPen(INK)
            g.drawText(QRect(0, 0, self.cell_w, CELL_H - (4 if bar else 0)), Qt.AlignmentFlag.AlignCenter, name)
            g.end()
            self._glyphs[key] = pixmap
        return self._glyphs[key]

    def _tokens(self, p: QPainter, k: int, line: int, ids: np.ndarray, fills: list[QColor],
                bars: np.ndarray | None = None) -> None:
        """One line of cells: the edge colour under the whole line shows as each cell's border."""
        names = self.a["token_names"] if self.a is not None else []
        text = self.cell_w >= TEXT_MIN_W
        first, w = self.cell(k, line, 0), self.cell_w
        x0, y = first.x(), first.y()
        p.fillRect(x0, y, len(ids) * w + 1, CELL_H, EDGE)
        for t, (tok, fill) in enumerate(zip(ids.tolist(), fills)):
            x = x0 + t * w
            p.fillRect(x + 1, y + 1, w - 1, CELL_H - 2, fill)
            if bars is not None:  # the confidence: a bar along the cell's foot
                p.fillRect(x + 1, y + CELL_H - 4, round((w - 1) * float(bars[t])), 2, BAR)
            if text:
                p.drawPixmap(x, y, self._glyph(str(names[tok]) if 0 <= tok < len(names) else "?", bars is not None))

    def _label(self, p: QPainter, k: int, line: int, text: str) -> None:
        r = self.cell(k, line, 0)
        p.setPen(FAINT)
        p.drawText(QRect(r.x() - LABEL_W, r.y(), LABEL_W - 5, CELL_H),
                   Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, text)

    def _block(self, p: QPainter, k: int) -> None:
        a = self.a
        assert a is not None
        o = self.origin(k)
        p.setFont(self.small_font)
        p.setPen(FAINT)
        p.drawText(QRect(o.x(), o.y(), self.block_w, HEADER_H), Qt.AlignmentFlag.AlignLeft |
                   Qt.AlignmentFlag.AlignVCenter, f"example {int(a['rows'][k])}")
        for line, name in enumerate(LINES):
            self._label(p, k, line, name)
        p.setFont(self.cell_font)
        x, y, out = a["inputs"][k], a["targets"][k], a["outputs"][k]
        self._tokens(p, k, 0, x, [self.colours[i] if 0 <= i < len(self.colours) else PAPER for i in x.tolist()])
        self._tokens(p, k, 1, y, [self.colours[i] if 0 <= i < len(self.colours) else PAPER for i in y.tolist()])
        conf = a["confidence"][k]
        self._tokens(p, k, 2, out, [verdict_colour(bool(c), float(v)) for c, v in zip(a["correct"][k], conf)], conf)
        exact = bool(a["correct"][k].all())
        p.setFont(self.font())
        p.setPen(QColor(*RIGHT) if exact else QColor(*WRONG))
        p.drawText(self.check_rect(k), Qt.AlignmentFlag.AlignCenter, "✓" if exact else "✗")

    def _class_row(self, p: QPainter, k: int) -> None:
        a = self.a
        assert a is not None
        self._label(p, k, 0, f"#{int(a['rows'][k])}")
        p.setFont(self.cell_font)
        x = a["inputs"][k]
        self._tokens(p, k, 0, x, [self.colours[i] if 0 <= i < len(self.colours) else PAPER for i in x.tolist()])
        names = a["class_names"]
        got, want, right = int(a["outputs"][k]), int(a["targets"][k]), bool(a["correct"][k])
        r = self.class_cell(k).adjusted(0, 0, -1, -1)
        p.fillRect(r, verdict_colour(right, float(a["confidence"][k])))
        p.fillRect(QRect(r.x() + 1, r.bottom() - 2, round((r.width() - 1) * float(a["confidence"][k])), 2), BAR)
        p.setPen(EDGE)
        p.drawRect(r)
        p.setFont(self.font())
        p.setPen(INK)
        p.drawText(r.adjusted(0, 0, 0, -4), Qt.AlignmentFlag.AlignCenter, str(names[got]))
        p.setPen(FAINT if not right else QColor(*RIGHT))
        p.drawText(QRect(r.right() + 8, r.y(), 400, CELL_H), Qt.AlignmentFlag.AlignLeft |
                   Qt.AlignmentFlag.AlignVCenter, f"true: {names[want]}" if not right else "✓")

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), PAPER)
        if self.pixmap is None:
            p.setPen(FAINT)
            p.drawText(self.rect().adjusted(8, 8, -8, -8), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                       self.message)
        else:
            p.drawPixmap(0, 0, self.pixmap)
        p.end()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self.a is not None and (self.width() != self._width or self.pixmap is None):
            self._compose()

    # --- hovering ----------------------------------------------------------------------------------

    def at(self, pos: QPoint) -> tuple[int, int, int] | None:
        """(example, line, token) under ``pos``: line 0–2 a token, 3 the class or the ✓; token -1 off the cells."""
        if self.a is None:
            return None
        n, steps = self.a["inputs"].shape
        for k in range(n):
            lines = 3 if self.per_token else 1
            for line in range(lines):
                first = self.cell(k, line, 0)
                if first.top() <= pos.y() <= first.bottom() and first.left() <= pos.x() < first.left() + steps * \
                        self.cell_w:
                    return k, line, (pos.x() - first.left()) // self.cell_w
            if (self.check_rect(k) if self.per_token else self.class_cell(k)).contains(pos):
                return k, 3, -1
        return None

    def tip(self, k: int, line: int, t: int) -> str:
        a = self.a
        assert a is not None
        names = a["token_names"]
        where = f"example {int(a['rows'][k])}"
        if not self.per_token:
            if line == 0:
                return f"{where}, position {t + 1}: '{names[int(a['inputs'][k, t])]}'"
            cls = a["class_names"]
            got, want = cls[int(a["outputs"][k])], cls[int(a["targets"][k])]
            verdict = "right" if a["correct"][k] else f"wrong: the true class is {want}"
            return f"{where}: the network says {got} ({float(a['confidence'][k]):.0%} sure), {verdict}"
        if line == 3:
            wrong = int((~a["correct"][k]).sum())
            head = "every token right" if wrong == 0 else f"{wrong} of {len(a['correct'][k])} tokens wrong"
            return f"{where}: {head}; the answer's log-probability {float(a['logprob'][k]):.3f}"
        tok = int([a["inputs"], a["targets"], a["outputs"]][line][k, t])
        text = f"{where}, position {t + 1}: {LINES[line]} '{names[tok]}'"
        if line == 2:
            verdict = "right" if a["correct"][k, t] else f"wrong, the target is '{names[int(a['targets'][k, t])]}'"
            text += f", {verdict}; the network gave it {float(a['confidence'][k, t]):.0%}"
        return text

    def event(self, e: QEvent) -> bool:
        if e.type() == QEvent.Type.ToolTip and isinstance(e, QHelpEvent):
            hit = self.at(e.pos())
            if hit is None or (hit[1] < 3 and hit[2] < 0):
                QToolTip.hideText()
                e.ignore()
            else:
                QToolTip.showText(e.globalPos(), self.tip(*hit), self)
            return True
        return super().event(e)


class SequencePredictionsView(LiveView):
    """A page of examples of the chosen set with the network's answers; the decoding controls for an
    encoder–decoder."""

    probes = frozenset({"predictions"})

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(controller, parent)
        self.split = QComboBox()
        self.split.setToolTip(SPLIT_TIP)
        self.split.addItem("test", "test")
        self.split.addItem("longer held-out", "long")
        self.first = QSpinBox()
        self.first.setToolTip(FIRST_TIP)
        self.first.setSingleStep(SHOWN)
        self.first.setKeyboardTracking(False)
        self.decoding = QComboBox()
        self.decoding.setToolTip(DECODING_TIP)
        for key, tip in METHOD_TIPS.items():
            self.decoding.addItem(key, key)
            self.decoding.setItemData(self.decoding.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.width_spin = QSpinBox()
        self.width_spin.setRange(1, 16)
        self.width_spin.setValue(4)
        self.width_spin.setToolTip(WIDTH_TIP)
        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(0.1, 5.0)
        self.temperature.setSingleStep(0.1)
        self.temperature.setDecimals(1)
        self.temperature.setValue(1.0)
        self.temperature.setToolTip(TEMPERATURE_TIP)
        self.summary = text_label(rich=True, wrap=True)
        self.summary.setToolTip("Over the examples shown: the share of answer tokens that are right, and of "
                                "examples whose every token is right (hover a cell for its token and confidence)")
        self.rows = TokenRows()
        self.scroll = QScrollArea()
        self.scroll.setWidget(self.rows)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.column(control_row("set", self.split, "first", self.first, "decoding", self.decoding,
                                "beam width", self.width_spin, "temperature", self.temperature),
                    self.summary, (self.scroll, 1))
        self._asked = 0  # the serial of the result on hand when the request last changed
        self._sync_controls()
        self.split.currentIndexChanged.connect(self._on_split)
        for signal in (self.first.valueChanged, self.decoding.currentIndexChanged, self.width_spin.valueChanged,
                       self.temperature.valueChanged):
            signal.connect(self._on_control)

    def choices(self) -> dict[str, Any]:
        return {"split": self.split, "decoding": self.decoding, "beam_width": self.width_spin}

    @property
    def has_decoder(self) -> bool:
        run = self.controller.run_info
        return has_decoder(run.nodes.values())

    def _split_size(self, split: str) -> int:
        data = self.controller.run_info.data
        y = data.y_long if split == "long" else data.y_test
        return 0 if y is None else len(y)

    def _sync_controls(self) -> None:
        """Decoding only for an encoder–decoder; its width for beam search, its temperature for sampling."""
        decoder = self.run is not None and self.has_decoder
        method = self.decoding.currentData()
        self.decoding.setEnabled(decoder)
        self.decoding.setToolTip(DECODING_TIP if decoder else DECODING_TIP + " (this network has no decoder "
                                 "input, so it answers at once)")
        self.width_spin.setEnabled(decoder and method == "beam")
        self.temperature.setEnabled(decoder and method == "sample")

    def request(self) -> ProbeRequest:
        """What the controls ask the probe."""
        split = self.split.currentData()
        n = self._split_size(split)
        first = min(self.first.value(), max(n - 1, 0))
        method = self.decoding.currentData() if self.has_decoder else None
        return ProbeRequest(samples=(first, max(min(first + SHOWN, n), first + 1)), split=split, method=method,
                            width=self.width_spin.value() if method == "beam" else None,
                            temperature=round(self.temperature.value(), 3) if method == "sample" else None)

    def _ask(self) -> None:
        if self.run is None:
            return
        snap = self.controller.snapshot
        result = snap.probes.get("predictions") if snap is not None else None
        self._asked = result.serial if result is not None else 0
        self.controller.ask_probe("predictions", self.request())

    @Slot(int)
    def _on_split(self, _index: int) -> None:
        if self.run is not None:
            self.first.setMaximum(max(self._split_size(self.split.currentData()) - 1, 0))
        self._on_control()

    @Slot()
    def _on_control(self, *_args: object) -> None:
        self._sync_controls()
        self._ask()

    def on_run(self, run: RunInfo) -> None:
        data = run.data
        length, long = data.x_test.shape[1], data.x_long
        self.split.setItemText(0, f"test (length {length})")
        self.split.setItemText(1, "longer held-out" + (f" (length {long.shape[1]})" if long is not None else
                                                       " (none)"))
        model = self.split.model()
        model.item(1).setEnabled(long is not None)  # type: ignore[attr-defined]
        if long is None and self.split.currentIndex() == 1:
            self.split.setCurrentIndex(0)
        self.first.blockSignals(True)
        self.first.setMaximum(max(self._split_size(self.split.currentData()) - 1, 0))
        self.first.blockSignals(False)
        self.rows.clear(EMPTY)
        self.summary.setText("")
        self._sync_controls()
        self._ask()

    def draw(self, snap: Snapshot | None) -> None:
        assert snap is not None
        result = snap.probes["predictions"]
        a = result.arrays
        if "inputs" not in a:  # an image classifier's predictions: not this view's
            self.rows.clear("These predictions are a sequence set's; this run has none.")
            return
        self.rows.show_arrays(a)
        self.summary.setText(self.summary_text(a, self.has_decoder, refused=result.serial > self._asked and
                                               str(a["split"]) != self.split.currentData()))

    @staticmethod
    def summary_text(a: dict[str, np.ndarray], decoder: bool, refused: bool = False) -> str:
        """The line above the rows: which examples, how the answer was made, and the shares right."""
        rows, split = a["rows"], str(a["split"])
        where = {"test": "test set", "long": "longer held-out set", "train": "training set"}.get(split, split)
        text = f"Examples {int(rows[0])}–{int(rows[-1])} of the {where} (length {a['inputs'].shape[1]})"
        if a["outputs"].ndim == 1:
            text += f": classified right <b>{float(a['token_accuracy']):.1%}</b>"
        else:
            how = {"greedy": "written greedily", "beam": "written by beam search", "sample": "sampled"}
            text += (", " + (how.get(str(a["method"]), str(a["method"])) if decoder else "each position's likeliest "
                                                                                          "token")
                     + f": tokens right <b>{float(a['token_accuracy']):.1%}</b>, sequences exactly right "
                     f"<b>{float(a['sequence_accuracy']):.1%}</b>")
        if refused:
            text += " · <span style='color:#b00020'>this network cannot read the longer sequences (its length is " \
                    "fixed by a learned position table or a flatten)</span>"
        return text
