"""The sequences family in the panels: its data editor (task, lengths, symbols, delay, sequences, seed and a
picture of the data), moving between families and tasks with a network that checks and trains, and the training
panel's teacher-forcing row for encoder–decoders."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PySide6.QtWidgets import QLabel, QSpinBox, QWidget

import app.panels.datasets.sequences  # noqa: F401  (registers the editor before any panel is built)
from app.panels.data import DataPanel
from app.panels.datasets.sequences import EXPLAIN, LABELS, THUMB, SequencesEditor, legal
from app.panels.training import TrainingPanel
from engine import Trainer
from engine.check import check_spec, parse_spec
from engine.datasets.sequences import Sequences
from engine.presets import load_preset
from engine.spec import SessionSpec, Training, spec_to_dict
from engine.stack import fit_data, fit_head, template_for
from tests.app.helpers import train_epochs
from tests.app.test_images_editor import pixels
from tests.app.test_panels_data import rows

torch.set_num_threads(1)


def shown(qtbot, panel: QWidget, spec: SessionSpec) -> list[SessionSpec]:
    """Show `panel` on `spec`; the list of specs it emits."""
    qtbot.addWidget(panel)
    panel.set_spec(spec)
    panel.resize(380, panel.sizeHint().height())
    panel.show()
    emitted: list[SessionSpec] = []
    panel.spec_edited.connect(emitted.append)
    return emitted


def trains(spec: SessionSpec, steps: int = 20) -> SessionSpec:
    """The spec is one the window would apply (it survives a round trip through JSON and the full check) and
    trains `steps` steps to finite losses."""
    spec = parse_spec(spec_to_dict(spec))
    check_spec(spec)
    tr = Trainer(spec, probes=False)
    for _ in tr.run(steps=steps):
        pass
    assert len(tr.history["step_loss"]) == steps and np.isfinite(tr.history["step_loss"]).all()
    return spec


def small(spec: SessionSpec) -> SessionSpec:
    """Fewer sequences, so that building a run for 20 steps is quick."""
    data = spec.dataset.model_copy(update={"samples": 600})
    return spec.model_copy(update={"dataset": type(spec.dataset).model_validate(data.model_dump())})


def units(spec: SessionSpec) -> int:
    return next(n for n in spec.model.nodes if n.id == "dense").params["units"]


def test_toys_to_sequences_to_images_through_the_panel_each_train(qtbot):
    panel = DataPanel()
    emitted = shown(qtbot, panel, load_preset("tfp-circle"))
    picker = panel.family_picker
    picker.setCurrentIndex(picker.findData("sequences"))
    reverse = trains(small(emitted[-1]))
    assert reverse.dataset.name == "reverse" and any(n.op == "embedding" for n in reverse.model.nodes)
    panel.set_spec(emitted[-1])
    editor = panel.editor
    assert isinstance(editor, SequencesEditor) and editor.isVisible()
    assert rows(editor.form) == ["family", "task", "", "length", "longer test", "symbols", "delay", "sequences",
                                 "batch size", "seed"]
    assert [editor.task.itemText(i) for i in range(editor.task.count())] == list(LABELS.values())
    assert not editor.delay.isVisible() and editor.symbols.isVisible()  # the delay is the copy's alone

    # Between tasks: a class per sequence, then a token per step again, each fitted and trained.
    editor.task.setCurrentIndex(editor.task.findData("count_zeros"))
    counting = trains(small(emitted[-1]))
    assert counting.dataset.name == "count_zeros" and units(counting) == counting.dataset.n_classes == 13
    assert any(n.op == "readout" for n in counting.model.nodes)  # the steps pooled before the classes
    panel.set_spec(emitted[-1])
    editor.length.setValue(14)  # the longer set follows (21 tokens): 0 … 21 zeros, and the head with them
    assert emitted[-1].dataset.long_length == 21 and units(emitted[-1]) == emitted[-1].dataset.n_classes == 22
    panel.set_spec(emitted[-1])
    editor.task.setCurrentIndex(editor.task.findData("add"))
    adding = trains(small(emitted[-1]))
    assert adding.dataset.length == 15 and units(adding) == adding.dataset.vocab == 13  # add's lengths are odd
    panel.set_spec(emitted[-1])
    assert editor.length.singleStep() == 2 and not editor.symbols.isVisible()
    editor.task.setCurrentIndex(editor.task.findData("copy"))
    panel.set_spec(trains(small(emitted[-1])))
    assert editor.delay.isVisible() and editor.delay.maximum() == 14
    editor.delay.setValue(4)
    assert emitted[-1].dataset.delay == 4 and emitted[-1].dataset.name == "copy"
    panel.set_spec(emitted[-1])
    assert not editor.message.isVisible()  # nothing was replaced along the way

    picker.setCurrentIndex(picker.findData("images"))
    digits = emitted[-1]
    assert digits.dataset.kind == "images" and not any(n.op == "embedding" for n in digits.model.nodes)
    trains(digits.model_copy(update={"dataset": digits.dataset.model_copy(update={"samples": 300})}))


def test_every_control_has_a_label_and_a_tooltip_and_the_picture_shows_the_data(qtbot):
    panel = DataPanel()
    shown(qtbot, panel, fit_head(load_preset("tfp-circle"), Sequences(name="sort")))
    editor = panel.editor
    for box in editor.findChildren(QSpinBox):
        assert box.toolTip(), box
        label = editor.form.labelForField(box)
        assert isinstance(label, QLabel) and label.text(), box
    assert editor.task.toolTip() and editor.picture.toolTip()
    assert editor.length.toolTip().startswith("Tokens per training")  # the spec's own description
    assert editor.explain.text().startswith(EXPLAIN["sort"]) and "One answer token per input token" in \
        editor.explain.text()
    before = pixels(editor.picture.pixmap().toImage())
    assert before.shape == (THUMB, THUMB) and len(np.unique(before)) > 5  # coloured token cells
    emitted: list[SessionSpec] = []
    panel.spec_edited.connect(emitted.append)
    editor.task.setCurrentIndex(editor.task.findData("parity"))
    panel.set_spec(emitted[-1])
    assert "One class per sequence, of 2" in editor.explain.text()
    assert not np.array_equal(pixels(editor.picture.pixmap().toImage()), before)


def test_a_network_that_cannot_read_tokens_is_replaced_and_the_message_line_says_so(qtbot):
    seq2seq = fit_head(load_preset("tfp-circle"), Sequences(name="reverse", samples=600))
    seq2seq = seq2seq.model_copy(update={"model": template_for("seq2seq", seq2seq)})
    panel = DataPanel()
    emitted = shown(qtbot, panel, seq2seq)
    editor = panel.editor
    editor.task.setCurrentIndex(editor.task.findData("brackets"))  # one class: a decoder has nothing to write
    trains(emitted[-1])
    assert not any(n.op == "decoder_input" for n in emitted[-1].model.nodes)
    panel.set_spec(emitted[-1])  # the window shows the spec it applied: the note stays
    assert editor.message.isVisible() and "encoder–decoder" in editor.message.text()
    assert "LSTM" in editor.message.text()
    panel.set_spec(seq2seq)  # another spec (undo, a file): the note no longer applies
    assert not editor.message.isVisible()


def test_a_note_from_a_switch_of_family_stays_while_its_spec_is_shown(qtbot):
    toy = load_preset("tfp-circle")
    fitted = fit_data(toy, Sequences(name="reverse"))
    panel = DataPanel()
    shown(qtbot, panel, toy)
    panel.set_spec(fitted.spec)  # the family picker's edit, applied by the window
    panel.editor.show_note(fitted.note)  # what the data panel says about it
    panel.set_spec(fitted.spec)  # shown again (the window refreshes its panels): still said
    assert panel.editor.message.isVisible() and "could not read tokens" in panel.editor.message.text()


def test_lengths_follow_each_tasks_rules():
    assert legal({"name": "add", "length": 8, "long_length": 12})["length"] == 9
    assert "long_length" not in legal({"name": "add", "length": 9, "long_length": 9})  # back to its default
    assert legal({"name": "brackets", "length": 7, "long_length": 0}) == {"name": "brackets", "length": 8,
                                                                         "long_length": 0}
    assert legal({"name": "copy", "length": 4, "long_length": 0, "delay": 6})["delay"] == 3
    assert Sequences.model_validate(legal({"name": "add", "length": 64, "long_length": 128})).length == 63


def test_teacher_forcing_shows_for_encoder_decoders_only_and_edits_the_spec(qtbot):
    transformer = fit_head(load_preset("tfp-circle"), Sequences(name="reverse"))
    seq2seq = transformer.model_copy(update={"model": template_for("seq2seq", transformer)})
    panel = TrainingPanel()
    emitted = shown(qtbot, panel, transformer)
    form = panel.layout()
    assert not panel.teacher.isVisible() and not form.labelForField(panel.teacher).isVisible()
    panel.set_spec(seq2seq)
    assert panel.teacher.isVisible() and form.labelForField(panel.teacher).isVisible()
    assert form.labelForField(panel.teacher).text() == "teacher forcing" and panel.teacher.value() == 100
    description = Training.model_fields["teacher_forcing"].description
    assert description[1:] in panel.teacher.toolTip() and "restarts" in panel.teacher.toolTip()
    panel.teacher.setValue(60)
    edited = emitted[-1]
    assert edited.training.teacher_forcing == pytest.approx(0.6)
    assert edited.model_copy(update={"training": seq2seq.training}) == seq2seq  # that field alone
    trains(small(edited), 10)
    panel.set_spec(edited)
    assert panel.teacher.value() == 60
    panel.set_spec(transformer)
    assert not panel.teacher.isVisible()


def test_the_warm_up_schedule_rows_are_labelled_with_tooltips(qtbot):
    panel = TrainingPanel()
    emitted = shown(qtbot, panel, load_preset("tfp-circle"))
    panel.schedule.setCurrentIndex(panel.schedule.findData("warmup_cosine"))
    assert emitted[-1].schedule.kind == "warmup_cosine"
    boxes = panel.sched_boxes
    labels = {name: panel.layout().labelForField(w).text() for name, w in boxes.items()}
    assert labels == {"warmup_epochs": "warm-up epochs", "total_epochs": "total epochs",
                      "min_factor": "min lr factor"}
    assert all(w.toolTip() for w in boxes.values())
    panel.set_spec(emitted[-1])  # shown again in place: the labels stay
    assert panel.layout().labelForField(boxes["warmup_epochs"]).text() == "warm-up epochs"


def test_the_window_on_a_transformer_learning_to_reverse(open_window, qtbot, tmp_path):
    spec = fit_head(load_preset("tfp-circle"), Sequences(name="reverse", samples=1000, long_samples=100))
    spec = spec.model_copy(update={"name": "reverse-transformer-template",
                                   "model": template_for("transformer", spec)})
    path = tmp_path / "reverse.json"
    path.write_text(json.dumps(spec_to_dict(spec)))
    w = open_window(str(path))
    assert isinstance(w.data_panel.editor, SequencesEditor) and w.data_panel.editor.isVisible()
    assert w.data_panel.editor.task.currentData() == "reverse"
    assert not w.training_panel.teacher.isVisible()
    train_epochs(qtbot, w, 2)
    assert w.controller.trainer.history["epoch_test_accuracy"][-1] > 0.3
    w.grab().save(str(tmp_path / "window.png"))
    w.grab().save("/tmp/sequence_window.png")  # to look at (the task's brief asks for it)

    # Teacher forcing is a training setting: an encoder–decoder's run restarts with it.
    c = w.controller
    c.set_spec(c.spec.model_copy(update={"model": template_for("seq2seq", c.spec)}))
    qtbot.waitUntil(lambda: w.training_panel.teacher.isVisible())
    run = c.trainer.run_id
    w.training_panel.teacher.setValue(50)
    assert c.spec.training.teacher_forcing == 0.5 and c.trainer.run_id != run
    train_epochs(qtbot, w, 1)
    w.grab().save("/tmp/sequence_window_seq2seq.png")
