"""Data panel: the batch size, a family picker when more than one dataset family is registered, and the
current family's editor (its own, or one generated from its spec model). Adding a family edits nothing here."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QComboBox, QSpinBox, QVBoxLayout, QWidget

from engine.datasets import FAMILIES
from engine.spec import SessionSpec
from engine.stack import fit_data

from .datasets import FamilyEditor, editor_for
from .forms import blocked


class DataPanel(QWidget):
    """Every edit emits a whole new spec; data changes reset the run (same seed)."""

    spec_edited = Signal(object)  # SessionSpec

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.spec: SessionSpec | None = None
        self.family_picker: QComboBox | None = None
        if len(FAMILIES) > 1:  # one family needs no picker
            self.family_picker = QComboBox()
            for i, fam in enumerate(FAMILIES.values()):
                self.family_picker.addItem(fam.title, fam.kind)
                self.family_picker.setItemData(i, fam.doc, Qt.ItemDataRole.ToolTipRole)
            self.family_picker.setToolTip("The kind of data: each family has its own problems and settings")
            self.family_picker.currentIndexChanged.connect(self._on_family)
        self.batch = QSpinBox()
        self.batch.setRange(1, 1024)
        self.batch.setKeyboardTracking(False)
        self.batch.setToolTip("Points per gradient step (minibatch size)")
        self.batch.valueChanged.connect(self._on_batch)
        self.editor: FamilyEditor | None = None
        self._column = QVBoxLayout(self)
        self._column.addStretch(1)

    def set_spec(self, spec: SessionSpec) -> None:
        """Show a spec's data settings without emitting edits."""
        self.spec = spec
        kind = spec.dataset.kind
        if self.editor is None or self.editor.family.kind != kind:
            self._show_editor(spec)
        assert self.editor is not None
        with blocked([w for w in (self.family_picker, self.batch) if w is not None]):
            if self.family_picker is not None:
                self.family_picker.setCurrentIndex(self.family_picker.findData(kind))
            self.batch.setValue(spec.training.batch_size)
        self.editor.set_spec(spec)

    def _show_editor(self, spec: SessionSpec) -> None:
        """Replace the family editor, moving the panel's own rows (family, batch size) into its form."""
        old, editor = self.editor, editor_for(FAMILIES[spec.dataset.kind])
        editor.set_spec(spec)  # its rows first: the panel's rows go where the editor says
        for w in (self.family_picker, self.batch):
            if old is not None and w is not None:
                old.form.takeRow(w)  # keep the widget: only the old editor and its labels go
        editor.form.insertRow(editor.batch_row, "batch size", self.batch)
        if self.family_picker is not None:
            editor.form.insertRow(0, "family", self.family_picker)
        editor.spec_edited.connect(self.spec_edited)
        self._column.insertWidget(0, editor)
        editor.show()  # now, not at the next event loop pass as a widget added to a shown panel would be
        self.editor = editor
        if old is not None:
            old.setParent(None)
            old.deleteLater()

    @Slot()
    def _on_family(self) -> None:
        assert self.family_picker is not None
        if self.spec is None or self.family_picker.currentData() == self.spec.dataset.kind:
            return
        family = FAMILIES[self.family_picker.currentData()]
        dataset = next(iter(family.variants().values()), None) or family.spec()  # its first problem
        fitted = fit_data(self.spec, dataset)
        self.spec_edited.emit(fitted.spec)
        show_note = getattr(self.editor, "show_note", None)  # the new family's editor, once the spec is shown
        if fitted.note and show_note is not None and self.editor.family.kind == family.kind:
            show_note(fitted.note)  # what was replaced: a network that cannot read this data

    @Slot(int)
    def _on_batch(self, value: int) -> None:
        if self.spec is not None:
            training = self.spec.training.model_copy(update={"batch_size": value})
            self.spec_edited.emit(self.spec.model_copy(update={"training": training}))
