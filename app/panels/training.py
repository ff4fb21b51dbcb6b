"""Training panel: optimizer and its hyper-parameters (both from the engine's optimizer registry), schedule, loss
and regularization."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import TypeAdapter, ValidationError
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QWidget,
)

from engine.check import check_augment
from engine.datasets import family_of
from engine.decoding import has_decoder
from engine.errors import SpecError, format_pydantic
from engine.optimizers import OPTIMIZERS
from engine.schedules import ScheduleSpec
from engine.spec import Augment, EarlyStopping, Regularization, SessionSpec, Training
from engine.stack import with_loss

from .forms import ModelForm, SciSpinBox, blocked, spin_for, tooltip

SCHEDULES = {
    "constant": "Constant", "step": "Step decay", "exponential": "Exponential decay", "cosine": "Cosine",
    "warmup_cosine": "Warm-up + cosine",
}
LOSSES = {"mse": "Mean squared error", "cross_entropy": "Cross-entropy", "bce": "Binary cross-entropy"}
# Row labels for schedule fields whose names read badly as labels (the form writes "warmup epochs" otherwise).
SCHEDULE_LABELS = {"warmup_epochs": "warm-up epochs", "total_epochs": "total epochs", "min_factor": "min lr factor",
                   "every_epochs": "every (epochs)", "gamma": "factor γ"}
_schedule = TypeAdapter(ScheduleSpec)


def heading(text: str, first: bool = False) -> QLabel:
    """A section's title in the panel's one form, set off from the section above it."""
    label = QLabel(text)
    font = label.font()
    font.setBold(True)
    label.setFont(font)
    label.setContentsMargins(0, 0 if first else 5, 0, 0)
    return label


def row_of(*widgets: QWidget) -> QWidget:
    """Controls side by side in one field of the form: a row less for settings that belong together."""
    host = QWidget()
    row = QHBoxLayout(host)
    row.setContentsMargins(0, 0, 0, 0)
    for w in widgets:
        row.addWidget(w)
    return host


class TrainingPanel(QWidget):
    """Edits produce a whole new spec through `spec_edited`; the controller decides live vs reset. Each control
    changes only its own field: no value is read back from a control the user did not touch."""

    spec_edited = Signal(object)  # SessionSpec

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.spec: SessionSpec | None = None
        self.optimizer = QComboBox()
        for i, entry in enumerate(OPTIMIZERS.values()):
            self.optimizer.addItem(entry.label, entry.kind)
            self.optimizer.setItemData(i, entry.doc, Qt.ItemDataRole.ToolTipRole)
        self.optimizer.setToolTip("The update rule. Changing it keeps the weights; the new optimizer starts "
                                  "with fresh state (momentum, running averages)")
        self.schedule = QComboBox()
        for kind, label in SCHEDULES.items():
            self.schedule.addItem(label, kind)
        self.schedule.setToolTip("How the learning rate changes over training")
        self.refused = QLabel()  # why the last optimizer or schedule edit was not applied
        self.refused.setWordWrap(True)
        self.refused.setStyleSheet("color: #b71c1c;")
        self.refused.hide()
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
        self.clip = SciSpinBox(3)
        self.clip.setRange(0.001, 1e6)
        self.clip.setValue(1.0)
        self.clip.setKeyboardTracking(False)
        self.clip.setToolTip("Largest allowed global gradient norm")
        self.early_on = QCheckBox("Early stopping, patience")
        self.early_on.setToolTip("Stop when the validation loss (test loss for 2-D sets) has not improved for this many epochs")
        self.patience = spin_for(EarlyStopping, "patience", 10)
        self.restore = QCheckBox("restore best")
        self.restore.setChecked(True)
        self.restore.setToolTip("When stopping early, go back to the weights with the lowest validation (or test) loss")
        self._early = EarlyStopping()  # the last early stopping shown: switching it back on restores min_delta
        self.beta = spin_for(Regularization, "beta", 1.0)
        self.beta.setToolTip("β, the weight of the KL term (β-VAE): higher pulls the codes toward N(0, I) for "
                             "a smoother, more regular latent space and blurrier pictures; 0 makes a plain "
                             "autoencoder. Changes apply at once, without a restart")
        self.beta_warmup = spin_for(Regularization, "beta_warmup", 0)
        self.beta_warmup.setSuffix(" epochs")
        self.beta_warmup.setToolTip("KL annealing: β rises linearly from 0 over this many epochs (0: full β "
                                    "from the start), so the decoder learns before the codes are squeezed")
        self.teacher = QSpinBox()
        self.teacher.setRange(0, 100)
        self.teacher.setSingleStep(5)
        self.teacher.setSuffix(" %")
        self.teacher.setKeyboardTracking(False)
        self.teacher.setToolTip(tooltip(Training.model_fields["teacher_forcing"], "teacher_forcing")
                                + ". 100 %: always the true token. Changing it restarts training (same seed)")
        for combo in (self.optimizer, self.schedule, self.loss):  # fit a narrow dock instead of clipping
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(10)

        # One form with headings, not a framed box per section: the frames cost about a row each, and the
        # default window's Training dock then cut off the last rows. One form also lines up every field.
        form = QFormLayout(self)
        form.setContentsMargins(9, 4, 9, 4)
        form.setVerticalSpacing(3)
        form.addRow(heading("Optimizer", first=True))
        form.addRow("method", self.optimizer)
        self.opt_fields = ModelForm(form, self._on_optimizer, after=self.optimizer)
        form.addRow("lr schedule", self.schedule)
        self.sched_fields = ModelForm(form, self._on_schedule, after=self.schedule)
        form.addRow(self.refused)
        form.addRow(heading("Loss and regularization"))
        form.addRow("loss", self.loss)
        # Encoder–decoders only (a decoder_input block): how often the decoder reads the true previous token. Under
        # the loss, without a heading of its own, so that it shows in the default window's Training dock.
        form.addRow("teacher forcing", self.teacher)
        form.addRow("L1, L2 rate", row_of(self.l1, self.l2))
        form.addRow("weight decay", self.wd)
        form.addRow(self.clip_on, self.clip)
        form.addRow(self.early_on, row_of(self.patience, self.restore))
        # Image sets only: random changes to each training image, live like the other regularizers.
        self.aug_heading = heading("Augmentation (training images)")
        self.aug_heading.setToolTip("Random changes to each training image at every step: the network sees "
                                    "more variety and overfits less; the test images are never changed")
        self.aug_box = QWidget()
        aug_form = QFormLayout(self.aug_box)
        aug_form.setContentsMargins(0, 0, 0, 0)
        aug_form.setVerticalSpacing(3)
        self.aug_fields = ModelForm(aug_form, self._on_augment, skip=())
        form.addRow(self.aug_heading)
        form.addRow(self.aug_box)
        # Networks with a VAE's sampling block only: the KL term's weight, live.
        self.vae_heading = heading("VAE")
        self.vae_heading.setToolTip("The VAE's loss is its reconstruction plus β times the KL divergence of its "
                                    "codes from N(0, I)")
        form.addRow(self.vae_heading)
        form.addRow("KL weight β", self.beta)
        form.addRow("β warm-up", self.beta_warmup)
        self.vae_rows = [self.beta, self.beta_warmup]
        self.optimizer.currentIndexChanged.connect(self._on_optimizer_kind)
        self.schedule.currentIndexChanged.connect(self._on_schedule_kind)
        self.loss.currentIndexChanged.connect(self._on_loss)
        self.l1.valueChanged.connect(lambda v: self._regularize(l1=v))
        self.l2.valueChanged.connect(lambda v: self._regularize(l2=v))
        self.wd.valueChanged.connect(lambda v: self._regularize(weight_decay=v))
        self.clip_on.toggled.connect(self._on_clip)
        self.clip.valueChanged.connect(self._on_clip)
        self.early_on.toggled.connect(self._on_early)
        self.restore.toggled.connect(self._on_early)
        self.patience.valueChanged.connect(self._on_early)
        self.beta.valueChanged.connect(lambda v: self._regularize(beta=v))
        self.beta_warmup.valueChanged.connect(lambda v: self._regularize(beta_warmup=v))
        self.teacher.valueChanged.connect(self._on_teacher)

    @property
    def opt_boxes(self) -> dict[str, QWidget]:
        """The optimizer's hyper-parameter spin boxes by field name."""
        return self.opt_fields.widgets()

    @property
    def sched_boxes(self) -> dict[str, QWidget]:
        return self.sched_fields.widgets()

    def _controls(self) -> list[QWidget]:
        return [self.optimizer, self.schedule, self.loss, self.l1, self.l2, self.wd, self.clip, self.clip_on,
                self.early_on, self.patience, self.restore, self.beta, self.beta_warmup, self.teacher]

    def set_spec(self, spec: SessionSpec) -> None:
        """Show a spec's settings without emitting edits."""
        self.spec = spec
        reg = spec.regularization
        with blocked(self._controls()):
            self.optimizer.setCurrentIndex(self.optimizer.findData(spec.optimizer.kind))
            self.schedule.setCurrentIndex(self.schedule.findData(spec.schedule.kind))
            self.loss.setCurrentIndex(self.loss.findData(spec.loss))
            self.l1.setValue(reg.l1)
            self.l2.setValue(reg.l2)
            self.wd.setValue(reg.weight_decay)
            self.clip_on.setChecked(reg.grad_clip is not None)
            if reg.grad_clip is not None:
                self.clip.setValue(reg.grad_clip)
            self.early_on.setChecked(reg.early_stopping is not None)
            self.beta.setValue(reg.beta)
            self.beta_warmup.setValue(reg.beta_warmup)
            self.teacher.setValue(round(spec.training.teacher_forcing * 100))
            if reg.early_stopping is not None:
                self._early = reg.early_stopping
                self.patience.setValue(reg.early_stopping.patience)
                self.restore.setChecked(reg.early_stopping.restore_best)
        self.clip.setEnabled(reg.grad_clip is not None)
        self.patience.setEnabled(reg.early_stopping is not None)
        self.restore.setEnabled(reg.early_stopping is not None)
        self.opt_fields.show(spec.optimizer)
        self.sched_fields.show(spec.schedule)
        self._label_schedule()
        images = family_of(spec.dataset).kind == "images"
        reconstruction = spec.dataset.task == "reconstruction"
        self.aug_heading.setText("Augmentation and denoising" if reconstruction else "Augmentation (training images)")
        vae = any(n.op == "reparam" for n in spec.model.nodes)
        self.vae_heading.setVisible(vae)
        for w in self.vae_rows:
            self.layout().setRowVisible(w, vae)
        self.layout().setRowVisible(self.teacher, has_decoder(spec.model.nodes))
        cross_entropy = self.loss.model().item(self.loss.findData("cross_entropy"))  # no classes to score
        cross_entropy.setEnabled(not reconstruction)
        self.aug_heading.setVisible(images)
        self.aug_box.setVisible(images)
        if images:
            self.aug_fields.show(reg.augment)
        self.refused.hide()

    def _emit(self, **update: Any) -> None:
        assert self.spec is not None
        self.spec_edited.emit(self.spec.model_copy(update=update))

    @Slot()
    def _on_optimizer_kind(self) -> None:
        if self.spec is None:
            return
        # A new method starts from its own defaults but keeps the learning rate the user chose.
        entry = OPTIMIZERS[self.optimizer.currentData()]
        lr = self.opt_fields.data().get("lr")
        try:
            optimizer = entry.spec.model_validate({} if lr is None else {"lr": lr})
        except ValidationError:  # a learning rate outside this method's range: its own default
            optimizer = entry.spec()
        self.opt_fields.show(optimizer)
        self._on_optimizer()

    @Slot()
    def _on_schedule_kind(self) -> None:
        if self.spec is not None:
            self.sched_fields.show(_schedule.validate_python({"kind": self.schedule.currentData()}))
            self._label_schedule()
            self._on_schedule()

    def _label_schedule(self) -> None:
        """Readable labels for the schedule's rows (the form names them after the fields)."""
        form = self.layout()
        for name, widget in self.sched_boxes.items():
            label = form.labelForField(widget)
            if isinstance(label, QLabel) and name in SCHEDULE_LABELS:
                label.setText(SCHEDULE_LABELS[name])

    @Slot()
    def _on_optimizer(self) -> None:
        optimizer = self._valid(OPTIMIZERS[self.optimizer.currentData()].spec.model_validate, self.opt_fields.data())
        if optimizer is not None:
            self._emit(optimizer=optimizer)

    @Slot()
    def _on_schedule(self) -> None:
        schedule = self._valid(_schedule.validate_python, self.sched_fields.data())
        if schedule is not None:
            self._emit(schedule=schedule)

    def _valid(self, parse: Callable[[dict[str, Any]], Any], data: dict[str, Any]) -> Any:
        """The parsed edit, or None with the reason shown when the schema refuses it (warm-up too long)."""
        try:
            value = parse(data)
        except ValidationError as exc:
            self.refused.setText(f"Not applied: {format_pydantic(exc)}")
            self.refused.show()
            return None
        self.refused.hide()
        return value

    def _regularize(self, **changes: Any) -> None:
        if self.spec is not None:
            self._emit(regularization=self.spec.regularization.model_copy(update=changes))

    @Slot()
    def _on_augment(self) -> None:
        try:
            augment = Augment.model_validate(self.aug_fields.data())
            if self.spec is not None:
                check_augment(self.spec.dataset.task, augment)
        except ValidationError as exc:
            self.refused.setText(f"⚠ not applied: {format_pydantic(exc, 'augment')}")
            self.refused.show()
            return
        except SpecError as exc:
            self.refused.setText(f"⚠ not applied: {exc.what.removeprefix('regularization.augment.')}: {exc.why}")
            self.refused.show()
            return
        self.refused.hide()
        self._regularize(augment=augment)

    @Slot()
    def _on_clip(self) -> None:
        self.clip.setEnabled(self.clip_on.isChecked())
        self._regularize(grad_clip=self.clip.value() if self.clip_on.isChecked() else None)

    @Slot()
    def _on_early(self) -> None:
        on = self.early_on.isChecked()
        self.patience.setEnabled(on)
        self.restore.setEnabled(on)
        # Built on the spec's own early stopping, so fields without a control here (min_delta) survive.
        early = self._early.model_copy(update={"patience": self.patience.value(),
                                               "restore_best": self.restore.isChecked()})
        self._regularize(early_stopping=early if on else None)

    @Slot(int)
    def _on_teacher(self, value: int) -> None:
        """A training setting, not a live one (``engine.Configure`` takes optimizer, schedule and regularization):
        the controller restarts the run with it, from the same seed."""
        if self.spec is not None:
            self._emit(training=self.spec.training.model_copy(update={"teacher_forcing": value / 100}))

    @Slot()
    def _on_loss(self) -> None:
        if self.spec is not None:
            self.spec_edited.emit(with_loss(self.spec, self.loss.currentData()))  # the head follows the loss
