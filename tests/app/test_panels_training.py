"""The training panel builds its optimizer choices and fields from the engine's registry, and an edit changes
only the value edited: nothing is read back, rounded, from a control the user did not touch."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from app.panels.training import TrainingPanel
from engine.optimizers import OPTIMIZERS
from engine.presets import load_preset
from engine.schedules import StepDecay, WarmupCosine
from engine.spec import EarlyStopping, Regularization


def shown_panel(qtbot, spec) -> tuple[TrainingPanel, list]:
    panel = TrainingPanel()
    qtbot.addWidget(panel)
    panel.set_spec(spec)
    emitted: list = []
    panel.spec_edited.connect(emitted.append)
    return panel, emitted


def test_the_optimizer_menu_is_the_registry(qtbot):
    panel, _ = shown_panel(qtbot, load_preset("tfp-circle"))
    combo = panel.optimizer
    assert [combo.itemData(i) for i in range(combo.count())] == list(OPTIMIZERS)
    for i, entry in enumerate(OPTIMIZERS.values()):
        assert combo.itemText(i) == entry.label
        assert combo.itemData(i, Qt.ItemDataRole.ToolTipRole) == entry.doc
    assert {"NAdam", "RAdam", "Adamax"} <= {combo.itemText(i) for i in range(combo.count())}


@pytest.mark.parametrize("kind", list(OPTIMIZERS))
def test_every_optimizer_shows_its_defaults_exactly_and_an_edit_changes_only_that_field(qtbot, kind):
    entry = OPTIMIZERS[kind]
    defaults = entry.spec()
    panel, emitted = shown_panel(qtbot, load_preset("tfp-circle").model_copy(update={"optimizer": defaults}))
    boxes = panel.opt_boxes
    fields = {n for n in type(defaults).model_fields if n != "kind"}
    assert set(boxes) == fields
    for name, box in boxes.items():
        assert box.value() == getattr(defaults, name), name  # exact: no rounding to the box's decimals
        description = type(defaults).model_fields[name].description
        assert box.toolTip() == description[:1].upper() + description[1:]
    for name in sorted(fields):
        box = boxes[name]
        new = box.minimum() + (box.maximum() - box.minimum()) / 2 if name != "lr" else 0.005
        box.setValue(new)
        assert emitted[-1].optimizer == defaults.model_copy(update={name: box.value()}), name
        panel.set_spec(emitted[0].model_copy(update={"optimizer": defaults}))  # back to the defaults
        assert panel.opt_boxes[name] is box  # shown in place, not rebuilt under the mouse
        emitted.clear()


def test_values_finer_than_a_box_shows_survive_edits_of_other_controls(qtbot):
    spec = load_preset("tfp-circle").model_copy(update={
        "optimizer": OPTIMIZERS["adam"].spec(lr=0.00123456789, beta2=0.99995, eps=3.3e-9),
        "schedule": StepDecay(every_epochs=12.345, gamma=0.33333),
        "regularization": Regularization(l2=3e-5, grad_clip=0.125)})
    panel, emitted = shown_panel(qtbot, spec.model_copy(update={"optimizer": OPTIMIZERS["adam"].spec()}))
    panel.set_spec(spec)  # the same optimizer with values four decimals cannot show: boxes that can
    assert panel.opt_boxes["beta2"].value() == 0.99995 and panel.sched_boxes["gamma"].value() == 0.33333
    assert panel.opt_boxes["lr"].value() == 0.00123456789 and panel.opt_boxes["eps"].value() == 3.3e-9
    panel.opt_boxes["beta1"].setValue(0.8)
    assert emitted[-1].optimizer == spec.optimizer.model_copy(update={"beta1": 0.8})
    assert emitted[-1].schedule == spec.schedule and emitted[-1].regularization == spec.regularization
    panel.l1.setValue(0.001)
    assert emitted[-1].regularization == spec.regularization.model_copy(update={"l1": 0.001})
    assert emitted[-1].optimizer == spec.optimizer
    panel.early_on.setChecked(True)
    assert emitted[-1].regularization.l2 == 3e-5 and emitted[-1].regularization.grad_clip == 0.125


def test_numbers_read_as_people_write_them(qtbot):
    spec = load_preset("reverse-transformer")  # AdamW, warm-up + cosine over 2 and 30 epochs, weight decay 0.01
    panel, emitted = shown_panel(qtbot, spec)
    shown = {name: box.text() for name, box in {**panel.opt_boxes, **panel.sched_boxes}.items()}
    assert shown == {"lr": "0.003", "beta1": "0.9", "beta2": "0.999", "eps": "1e-08", "warmup_epochs": "2",
                     "total_epochs": "30", "min_factor": "0.05"}
    assert (panel.l1.text(), panel.wd.text(), panel.clip.text()) == ("0", "0.01", "1")
    box = panel.sched_boxes["total_epochs"]  # typed, with either decimal point
    box.lineEdit().selectAll()
    qtbot.keyClicks(box.lineEdit(), "40,5")
    qtbot.keyClick(box.lineEdit(), Qt.Key.Key_Return)
    assert emitted[-1].schedule.total_epochs == 40.5 and box.text() == "40.5"


def test_early_stopping_keeps_min_delta_when_patience_changes(qtbot):
    early = EarlyStopping(patience=10, min_delta=0.003, restore_best=True)
    spec = load_preset("tfp-circle").model_copy(update={"regularization": Regularization(early_stopping=early)})
    panel, emitted = shown_panel(qtbot, spec)
    panel.patience.setValue(20)
    assert emitted[-1].regularization.early_stopping == EarlyStopping(patience=20, min_delta=0.003)
    panel.set_spec(emitted[-1])
    panel.early_on.setChecked(False)
    assert emitted[-1].regularization.early_stopping is None
    panel.set_spec(emitted[-1])
    panel.early_on.setChecked(True)  # switched back on: the min_delta it had
    assert emitted[-1].regularization.early_stopping == EarlyStopping(patience=20, min_delta=0.003)


def test_a_refused_schedule_edit_is_explained_and_kept_until_mended(qtbot):
    spec = load_preset("tfp-circle").model_copy(update={"schedule": WarmupCosine()})
    panel, emitted = shown_panel(qtbot, spec)
    panel.show()
    panel.sched_boxes["warmup_epochs"].setValue(150)  # longer than the whole schedule (100)
    assert not emitted and panel.refused.isVisible() and "warmup_epochs" in panel.refused.text()
    panel.sched_boxes["total_epochs"].setValue(300)
    assert emitted[-1].schedule == WarmupCosine(warmup_epochs=150, total_epochs=300)
    assert panel.refused.isHidden()


def test_nadam_radam_and_adamax_apply_live_while_training(open_window, qtbot):
    w = open_window("tfp-circle")
    c, panel = w.controller, w.training_panel
    c.play()
    qtbot.waitUntil(lambda: c.snapshot is not None and c.snapshot.epoch >= 1, timeout=30_000)
    run = c.trainer.run_id
    for kind in ("nadam", "radam", "adamax"):
        lr = c.spec.optimizer.lr
        panel.optimizer.setCurrentIndex(panel.optimizer.findData(kind))
        entry = OPTIMIZERS[kind]
        assert c.spec.optimizer == entry.spec(lr=lr)  # its own defaults, the learning rate the user chose
        qtbot.waitUntil(lambda: isinstance(c.trainer.optimizer, entry.torch_class), timeout=20_000)  # noqa: B023
        step = c.trainer.step
        qtbot.waitUntil(lambda: c.trainer.step > step + 5, timeout=20_000)  # noqa: B023
        assert c.playing and c.trainer.run_id == run  # applied live: the run goes on
        group = c.trainer.optimizer.param_groups[0]
        assert group["eps"] == 1e-8 and group["betas"] == (0.9, 0.999)
        for name, box in panel.opt_boxes.items():
            assert box.value() == getattr(c.spec.optimizer, name), (kind, name)
    c.pause()
