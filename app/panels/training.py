"""Training panel: optimizer and its hyper-parameters, schedule, loss and regularization."""
from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter
from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QVBoxLayout,
    QWidget,
)

from engine.schedules import ScheduleSpec
from engine.spec import EarlyStopping, OptimizerSpec, Regularization, SessionSpec
from engine.stack import with_loss

from .forms import blocked, fill_form, read_form, spin_for

OPTIMIZERS = {
    "sgd": "SGD", "momentum": "SGD + momentum", "nesterov": "Nesterov momentum", "adam": "Adam", "adamw": "AdamW",
    "rmsprop": "RMSprop", "adagrad": "Adagrad",
}
SCHEDULES = {
    "constant": "Constant", "step": "Step decay", "exponential": "Exponential decay", "cosine": "Cosine",
    "warmup_cosine": "Warm-up + cosine",
}
LOSSES = {"mse": "Mean squared error", "cross_entropy": "Cross-entropy", "bce": "Binary cross-entropy"}
_optimizer = TypeAdapter(OptimizerSpec)
_schedule = TypeAdapter(ScheduleSpec)


class TrainingPanel(QWidget):
    """Edits produce a whole new spec through `spec_edited`; the controller decides live vs reset."""

    spec_edited = Signal(object)  # SessionSpec

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.spec: SessionSpec | None = None
        self.optimizer = QComboBox()
        for kind, label in OPTIMIZERS.items():
            self.optimizer.addItem(label, kind)
        self.optimizer.setToolTip("The update rule. Changing it keeps the weights; the new optimizer starts "
                                  "with fresh state (momentum, running averages)")
        self.opt_form = QFormLayout()
        self.schedule = QComboBox()
        for kind, label in SCHEDULES.items():
            self.schedule.addItem(label, kind)
        self.schedule.setToolTip("How the learning rate changes over training")
        self.sched_form = QFormLayout()
        self.loss = QComboBox()
        for kind, label in LOSSES.items():
            self.loss.addItem(label, kind)
        self.loss.setToolTip("The loss the optimizer minimizes; changing it restarts training")
        self.l1 = spin_for(Regularization, "l1", 0.0)
        self.l1.setToolTip("L1 rate λ: adds λ·Σ|w| to the loss, pushing weights to exactly zero")
        self.l2 = spin_for(Regularization, "l2", 0.0)
        self.l2.setToolTip("L2 rate λ: adds λ·Σw² to the loss, keeping weights small")
        self.wd = spin_for(Regularization, "weight_decay", 0.0)
        self.wd.setToolTip("Decoupled weight decay: w ← w·(1 − lr·wd) before each update (as AdamW does)")
        self.clip_on = QCheckBox("Clip gradients at norm")
        self.clip_on.setToolTip("Rescale the gradient whenever its global L2 norm exceeds this value")
        self.clip = QDoubleSpinBox()
        self.clip.setRange(0.001, 1e6)
        self.clip.setValue(1.0)
        self.clip.setKeyboardTracking(False)
        self.clip.setToolTip("Largest allowed global gradient norm")
        self.early_on = QCheckBox("Early stopping, patience")
        self.early_on.setToolTip("Stop when the test loss has not improved for this many epochs")
        self.patience = spin_for(EarlyStopping, "patience", 10)
        self.restore = QCheckBox("Restore best weights")
        self.restore.setChecked(True)
        self.restore.setToolTip("When stopping early, go back to the weights with the lowest test loss")

        opt_box = QGroupBox("Optimizer")
        f = QFormLayout(opt_box)
        f.addRow("method", self.optimizer)
        f.addRow(self.opt_form)
        sched_box = QGroupBox("Learning-rate schedule")
        f = QFormLayout(sched_box)
        f.addRow("schedule", self.schedule)
        f.addRow(self.sched_form)
        reg_box = QGroupBox("Loss and regularization")
        f = QFormLayout(reg_box)
        f.addRow("loss", self.loss)
        f.addRow("L1 rate", self.l1)
        f.addRow("L2 rate", self.l2)
        f.addRow("weight decay", self.wd)
        f.addRow(self.clip_on, self.clip)
        f.addRow(self.early_on, self.patience)
        f.addRow("", self.restore)
        for combo in (self.optimizer, self.schedule, self.loss):  # fit a narrow dock instead of clipping
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(10)
        layout = QVBoxLayout(self)
        layout.addWidget(opt_box)
        layout.addWidget(sched_box)
        layout.addWidget(reg_box)
        layout.addStretch(1)
        self.opt_boxes: dict[str, Any] = {}
        self.sched_boxes: dict[str, Any] = {}
        self.optimizer.currentIndexChanged.connect(self._on_optimizer_kind)
        self.schedule.currentIndexChanged.connect(self._on_schedule_kind)
        self.loss.currentIndexChanged.connect(self._on_edit)
        for w in (self.l1, self.l2, self.wd, self.clip, self.patience):
            w.valueChanged.connect(self._on_edit)
        for w in (self.clip_on, self.early_on, self.restore):
            w.toggled.connect(self._on_edit)

    def _controls(self) -> list[QWidget]:
        return [self.optimizer, self.schedule, self.loss, self.l1, self.l2, self.wd, self.clip, self.clip_on,
                self.early_on, self.patience, self.restore]

    def set_spec(self, spec: SessionSpec) -> None:
        """Show a spec's settings without emitting edits."""
        self.spec = spec
        with blocked(self._controls()):
            self.optimizer.setCurrentIndex(self.optimizer.findData(spec.optimizer.kind))
            self.schedule.setCurrentIndex(self.schedule.findData(spec.schedule.kind))
            self.loss.setCurrentIndex(self.loss.findData(spec.loss))
            reg = spec.regularization
            self.l1.setValue(reg.l1)
            self.l2.setValue(reg.l2)
            self.wd.setValue(reg.weight_decay)
            self.clip_on.setChecked(reg.grad_clip is not None)
            if reg.grad_clip is not None:
                self.clip.setValue(reg.grad_clip)
            self.early_on.setChecked(reg.early_stopping is not None)
            if reg.early_stopping is not None:
                self.patience.setValue(reg.early_stopping.patience)
                self.restore.setChecked(reg.early_stopping.restore_best)
        self.clip.setEnabled(reg.grad_clip is not None)
        self.patience.setEnabled(reg.early_stopping is not None)
        self.restore.setEnabled(reg.early_stopping is not None)
        self.opt_boxes = fill_form(self.opt_form, spec.optimizer, self._on_edit)
        self.sched_boxes = fill_form(self.sched_form, spec.schedule, self._on_edit)

    @Slot()
    def _on_optimizer_kind(self) -> None:
        # A new method starts from its own defaults but keeps the learning rate the user chose.
        kind = self.optimizer.currentData()
        lr = self.opt_boxes["lr"].value() if "lr" in self.opt_boxes else None
        opt = _optimizer.validate_python({"kind": kind} | ({"lr": lr} if lr is not None else {}))
        self.opt_boxes = fill_form(self.opt_form, opt, self._on_edit)
        self._on_edit()

    @Slot()
    def _on_schedule_kind(self) -> None:
        sched = _schedule.validate_python({"kind": self.schedule.currentData()})
        self.sched_boxes = fill_form(self.sched_form, sched, self._on_edit)
        self._on_edit()

    @Slot()
    def _on_edit(self) -> None:
        if self.spec is None:
            return
        self.clip.setEnabled(self.clip_on.isChecked())
        self.patience.setEnabled(self.early_on.isChecked())
        self.restore.setEnabled(self.early_on.isChecked())
        try:
            optimizer = _optimizer.validate_python({"kind": self.optimizer.currentData(), **read_form(self.opt_boxes)})
            schedule = _schedule.validate_python({"kind": self.schedule.currentData(), **read_form(self.sched_boxes)})
        except ValueError as exc:  # e.g. warm-up longer than the whole schedule: keep the last valid spec
            self.window().statusBar().showMessage(f"Not applied: {exc.errors()[0]['msg']}", 6000)  # type: ignore
            return
        early = (EarlyStopping(patience=self.patience.value(), restore_best=self.restore.isChecked())
                 if self.early_on.isChecked() else None)
        reg = Regularization(l1=self.l1.value(), l2=self.l2.value(), weight_decay=self.wd.value(),
                             grad_clip=self.clip.value() if self.clip_on.isChecked() else None, early_stopping=early)
        spec = self.spec.model_copy(update={"optimizer": optimizer, "schedule": schedule, "regularization": reg})
        if self.loss.currentData() != spec.loss:
            spec = with_loss(spec, self.loss.currentData())  # the head follows the loss (softmax for CE, …)
        self.spec_edited.emit(spec)

