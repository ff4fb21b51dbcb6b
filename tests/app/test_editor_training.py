"""How blocks learn, from the graph editor: frozen, at a multiple of the learning rate, or starting from a
trained network's weights (transfer learning)."""
from __future__ import annotations

from PySide6.QtCore import Qt

from tests.app.test_editor import editor_of


def test_the_inspector_freezes_a_block_and_sets_its_learning_rate_multiplier(open_window, qtbot):
    w = open_window("digits-cnn")
    ed = editor_of(w, qtbot)
    c = w.controller
    ed._select(["pool_1"])
    assert not ed.inspector.training_row.isVisibleTo(ed.inspector)  # no weights, nothing to freeze
    ed._select(["conv_1"])
    insp = ed.inspector
    assert insp.training_row.isVisibleTo(insp) and not insp.frozen.isChecked() and insp.lr_mult.value() == 1.0
    insp.frozen.setChecked(True)
    assert ed.doc.node("conv_1")["frozen"] is True and not insp.lr_mult.isEnabled()
    qtbot.waitUntil(lambda: next(n for n in c.spec.model.nodes if n.id == "conv_1").frozen)
    assert not c.trainer.model.layers["conv_1"].weight.requires_grad  # the run trains without it
    ed._select(["dense_1"])
    ed.inspector.lr_mult.setValue(0.5)
    qtbot.waitUntil(lambda: next(n for n in c.spec.model.nodes if n.id == "dense_1").lr_mult == 0.5)
    ed.undo_action.trigger()
    ed.undo_action.trigger()
    qtbot.waitUntil(lambda: all(not n.frozen and n.lr_mult == 1.0 for n in c.spec.model.nodes))


def test_the_inspector_starts_a_block_from_trained_weights_or_from_random_ones(open_window, qtbot):
    w = open_window("digits-transfer")
    ed = editor_of(w, qtbot)
    c = w.controller
    assert c.trainer.pretrained == ["conv_1", "conv_2", "conv_3"]
    block = ed.scene.blocks["conv_2"]
    assert block.lines[-1] == "frozen · pretrained"  # the block says how it learns
    assert "Starts from shapes-cnn's trained conv_2" in block.toolTip()
    assert "pretrained" not in ed.scene.blocks["head"].lines[-1]
    ed._select(["conv_2"])
    insp = ed.inspector
    assert insp.start.currentData() == "shapes-cnn" and insp.start.currentText() == "trained shapes-cnn"
    assert "test accuracy" in insp.start.itemData(insp.start.currentIndex(), Qt.ItemDataRole.ToolTipRole)
    insp.start.activated.emit(insp.start.findData(None))  # as a user picks "random weights"
    assert ed.doc.node("conv_2").get("pretrained") is None
    qtbot.waitUntil(lambda: c.trainer.pretrained == ["conv_1", "conv_3"])
    assert ed.scene.blocks["conv_2"].lines[-1] == "frozen"
    ed.undo_action.trigger()
    qtbot.waitUntil(lambda: c.trainer.pretrained == ["conv_1", "conv_2", "conv_3"])
    # a block edited away from its trained shape: the engine's error, naming the block, and the run goes on
    ed._select(["conv_2"])
    ed.doc.set_params("conv_2", {**ed.doc.node("conv_2")["params"], "filters": 8})
    text = ed.status.text()
    assert "pretrained" in text and "conv_2.weight is 8×16×3×3 here and 32×16×3×3 in shapes-cnn" in text
    assert c.blocked and "conv_2" in c.blocked
    assert c.trainer.pretrained == ["conv_1", "conv_2", "conv_3"]  # the last good network keeps training
    # a pasted copy of a trained block starts from random weights: its new id has no trained twin
    copies = ed.doc.paste([ed.doc.node("conv_1")], [], (40.0, 40.0))
    assert ed.doc.node(copies[0]).get("pretrained") is None
