"""The sequences family's editor: the task (each with a one-line explanation), input length, the held-out longer
length, symbols, the copy's delay, the number of sequences and the data seed, above a picture of the data drawn by
the engine. Every edit fits the network to the task (``engine.stack.fit_data``): the embedding's vocabulary, the
positions, an answer per token or one per sequence; a network that cannot read tokens is replaced, and the
message line says so."""
from __future__ import annotations

from typing import Any, get_args

from pydantic import ValidationError
from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSpinBox, QWidget

from engine.datasets import DataFamily
from engine.datasets.sequences import MAX_LENGTH, MAX_LONG, SequenceName, Sequences
from engine.errors import format_pydantic
from engine.spec import SessionSpec
from engine.stack import fit_data

from ..forms import blocked, tooltip
from .base import FamilyEditor, qimage, register_editor

LABELS = {
    "reverse": "reverse", "sort": "sort", "copy": "copy after a delay", "count_zeros": "count the zeros",
    "parity": "parity", "brackets": "balanced brackets", "add": "add two numbers",
}
EXPLAIN = {
    "reverse": "Write the input backwards: a b c d → d c b a.",
    "sort": "Write the input's tokens in ascending order: c a d b → a b c d.",
    "copy": "Write the input again, each token delay steps later, blanks (·) before it: a b c d → · · a b.",
    "count_zeros": "Say how many '0' tokens the input holds: 0 2 0 1 → 2.",
    "parity": "Say whether the number of '1' tokens is odd: 1 0 1 1 → odd.",
    "brackets": "Say whether every '(' is closed in order: (()) → balanced, )(() → not.",
    "add": "Write the digits of a + b at the end, blanks before: 3 1 + 2 5 → · · 0 5 6.",
}
USES_SYMBOLS = ("reverse", "sort", "copy", "count_zeros")  # parity, brackets and add fix their own tokens
THUMB = 96
MAX_SEED = 2**31 - 1  # a QSpinBox holds a signed 32-bit int
MAX_SAMPLES = 50_000


def explanation(spec: Sequences) -> str:
    """What the task asks, and what the network answers: a token at every step or one class per sequence."""
    answer = (f"One answer token per input token, from {spec.vocab} ids." if spec.task == "sequence"
              else f"One class per sequence, of {spec.n_classes}.")
    return f"{EXPLAIN[spec.name]} {answer}"


def legal(fields: dict[str, Any]) -> dict[str, Any]:
    """Dataset fields made to follow the task's rules where a control could break them: add's lengths odd,
    brackets' even, the longer set longer (else its default), the copy's delay inside the input."""
    f = dict(fields)
    name = f["name"]

    def parity(value: int, top: int) -> int:
        wrong = (name == "add" and value % 2 == 0) or (name == "brackets" and value % 2 == 1)
        return (value + 1 if value < top else value - 1) if wrong else value

    f["length"] = max(3 if name == "add" else 2, parity(int(f["length"]), MAX_LENGTH))
    if f.get("long_length"):
        f["long_length"] = parity(int(f["long_length"]), MAX_LONG)
        if f["long_length"] <= f["length"]:
            del f["long_length"]  # the validator picks its default: the larger of 12 and 1.5 × length
    if name == "copy" and f.get("delay", 1) >= f["length"]:
        f["delay"] = f["length"] - 1
    return f


@register_editor("sequences")
class SequencesEditor(FamilyEditor):
    """Every edit emits a whole new spec with the network fitted to the data; data changes reset the run."""

    batch_row = 7  # after the number of sequences, above the seed

    def __init__(self, family: DataFamily, parent: QWidget | None = None) -> None:
        super().__init__(family, parent)
        self.box.setToolTip(family.doc)
        fields = Sequences.model_fields
        self.task = QComboBox()
        for i, name in enumerate(get_args(SequenceName)):
            self.task.addItem(LABELS[name], name)
            self.task.setItemData(i, EXPLAIN[name], Qt.ItemDataRole.ToolTipRole)
        self.task.setToolTip("What the network learns to do with each sequence; the network follows the task "
                             "(a token at every step or one class per sequence)")
        self.task.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.task.setMinimumContentsLength(12)
        self.picture = QLabel()
        self.picture.setFixedSize(THUMB, THUMB)
        self.picture.setToolTip("The first few sequences, one coloured cell per token (white: the blank ·): each "
                                "input above its answer, or beside the colour of its class")
        self.explain = QLabel()
        self.explain.setWordWrap(True)
        self.explain.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self.explain.setToolTip(fields["name"].description)
        self.length = self._spin(2, MAX_LENGTH, tooltip(fields["length"], "length"))
        self.long_length = self._spin(0, MAX_LONG, tooltip(fields["long_length"], "long_length"))
        self.long_length.setSpecialValueText("none")
        self.symbols = self._spin(2, 50, tooltip(fields["symbols"], "symbols"))
        self.delay = self._spin(1, MAX_LENGTH - 1, tooltip(fields["delay"], "delay"))
        self.samples = self._spin(100, MAX_SAMPLES, tooltip(fields["samples"], "samples"))
        self.samples.setSingleStep(100)
        self.samples.setGroupSeparatorShown(True)
        self.seed = self._spin(0, MAX_SEED, "Data seed: which sequences are drawn and in what order; the same seed "
                                            "gives the same data")
        self.message = QLabel()  # what an edit replaced, or why it was not applied
        self.message.setWordWrap(True)
        self.message.hide()

        preview = QHBoxLayout()
        preview.addWidget(self.picture)
        preview.addWidget(self.explain, 1)
        form = self.form
        form.addRow("task", self.task)
        form.addRow(preview)
        form.addRow("length", self.length)
        form.addRow("longer test", self.long_length)
        form.addRow("symbols", self.symbols)
        form.addRow("delay", self.delay)
        form.addRow("sequences", self.samples)
        form.addRow("seed", self.seed)
        self.column.addWidget(self.message)
        self._emitted: SessionSpec | None = None  # the last spec this editor emitted: its note stays shown

        self.task.currentIndexChanged.connect(self._on_task)
        self.length.valueChanged.connect(lambda v: self._edit(length=v))
        self.long_length.valueChanged.connect(lambda v: self._edit(long_length=v))
        self.symbols.valueChanged.connect(lambda v: self._edit(symbols=v))
        self.delay.valueChanged.connect(lambda v: self._edit(delay=v))
        self.samples.valueChanged.connect(lambda v: self._edit(samples=v))
        self.seed.valueChanged.connect(lambda v: self._edit(seed=v))

    def _spin(self, lo: int, hi: int, tip: str) -> QSpinBox:
        box = QSpinBox()
        box.setRange(lo, hi)
        box.setKeyboardTracking(False)  # apply when the user finishes typing: every edit is a new run
        box.setToolTip(tip)
        return box

    def _controls(self) -> list[QWidget]:
        return [self.task, self.length, self.long_length, self.symbols, self.delay, self.samples, self.seed]

    def set_spec(self, spec: SessionSpec) -> None:
        super().set_spec(spec)
        ds: Sequences = spec.dataset
        with blocked(self._controls()):
            self.task.setCurrentIndex(self.task.findData(ds.name))
            step = 2 if ds.name in ("add", "brackets") else 1  # add: odd lengths, brackets: even
            for box in (self.length, self.long_length):
                box.setSingleStep(step)
            self.length.setValue(ds.length)
            self.long_length.setValue(ds.long_length)
            self.symbols.setValue(ds.symbols)
            self.delay.setMaximum(ds.length - 1)
            self.delay.setValue(min(ds.delay, ds.length - 1))
            self.samples.setValue(ds.samples)
            self.seed.setValue(min(ds.seed, MAX_SEED))
        self.form.setRowVisible(self.delay, ds.name == "copy")
        self.form.setRowVisible(self.symbols, ds.name in USES_SYMBOLS)
        self.explain.setText(explanation(ds))
        self.picture.setPixmap(QPixmap.fromImage(qimage(self.family.thumbnail(ds, THUMB))))
        if spec != self._emitted:  # a spec from elsewhere (a file, undo): an old note no longer applies
            self.message.hide()

    def show_note(self, text: str) -> None:
        """Say what an edit changed besides the data (a network replaced), while the spec shown is the one it
        made (the data panel calls this too, after a switch of family)."""
        self._emitted = self.spec
        self.message.setStyleSheet("color: #8a5300;")
        self.message.setText(text)
        self.message.show()

    def _refuse(self, text: str) -> None:
        self.message.setStyleSheet("color: #b71c1c;")
        self.message.setText(text)
        self.message.show()

    @Slot()
    def _on_task(self) -> None:
        """Another task: the lengths, symbols, sizes and seed stay where they suit it (add's length odd,
        brackets' even); the network follows the new answer."""
        self._edit(name=self.task.currentData())

    def _edit(self, **changes: Any) -> None:
        """Emit the spec with these dataset fields changed and the network fitted to the new data."""
        if self.spec is None:
            return
        try:
            dataset = Sequences.model_validate(legal({**self.spec.dataset.model_dump(), **changes}))
        except ValidationError as exc:  # a rule between fields: say why and keep the last valid spec
            self._refuse(f"Not applied: {format_pydantic(exc)}")
            return
        if dataset == self.spec.dataset:
            self.set_spec(self.spec)  # an edit the rules undid (an even length for add): show the spec again
            return
        fitted = fit_data(self.spec, dataset)
        if fitted.note:
            self.show_note(fitted.note)
        else:
            self.message.hide()
        self._emitted = fitted.spec  # the window shows it back: its note stays
        self.spec_edited.emit(fitted.spec)
