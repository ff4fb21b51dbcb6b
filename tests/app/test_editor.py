"""The graph editor as a user drives it: palette drops, wiring by mouse, undo/redo, templates, sync, files."""
from __future__ import annotations

from typing import Literal

import numpy as np
import pytest
import torch
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent, QImage, QKeySequence, QPainter
from PySide6.QtWidgets import QApplication, QMessageBox, QStyleOptionGraphicsItem

from engine.ops.registry import FAMILIES, OPS, Family, Op, Params, register, register_family
from engine.session import load_session
from engine.stack import from_model
from engine.templates import TEMPLATES
from tests.app.helpers import train_epochs
from tests.conftest import train_one_step


def editor_of(window, qtbot):
    window.tabs.setCurrentWidget(window.editor)
    qtbot.waitUntil(lambda: window.editor.view.isVisible())
    return window.editor


def view_point(editor, scene_point: QPointF) -> QPoint:
    return editor.view.mapFromScene(scene_point)


def wire(editor, src: str, dst: str):
    """The wire drawn from src to dst."""
    return next(w for w in editor.scene.wires if w.key() == (src, dst))


def visible_ops(palette) -> list[str]:
    """The ops the palette shows (neither they nor their family are filtered out)."""
    return [op for op, item in palette.items.items() if not item.isHidden() and not item.parent().isHidden()]


def drop_op(editor, op: str, at: QPoint) -> None:
    """Drag an op out of the palette and drop it on the canvas, through the same events Qt delivers."""
    item = editor.palette.items[op]
    mime = editor.palette.tree.mimeData([item])
    vp = editor.view.viewport()
    actions = Qt.DropAction.CopyAction
    buttons, mods = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    for event in (QDragEnterEvent(at, actions, mime, buttons, mods), QDragMoveEvent(at, actions, mime, buttons, mods),
                  QDropEvent(QPointF(at), actions, mime, buttons, mods)):
        QApplication.sendEvent(vp, event)


def drag_wire(qtbot, editor, src: str, dst: str, port: int = 0) -> None:
    """Press on src's output port, release on dst's input port."""
    scene = editor.scene
    a = view_point(editor, scene.blocks[src].out_port.centre())
    b = view_point(editor, scene.blocks[dst].in_ports[port].centre())
    vp = editor.view.viewport()
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=a)
    qtbot.mouseMove(vp, pos=b)
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=b)


def test_dragging_from_the_palette_creates_a_block_where_it_drops(open_window, qtbot):
    w = open_window("tfp-circle")
    ed = editor_of(w, qtbot)
    before = {n.id for n in ed.doc.model.nodes}
    at = QPoint(200, 120)
    drop_op(ed, "dense", at)
    added = {n.id for n in ed.doc.model.nodes} - before
    assert added == {"dense_4"}
    node_id = "dense_4"
    node = next(n for n in ed.doc.model.nodes if n.id == node_id)
    assert node.op == "dense"
    block = ed.scene.blocks[node_id]
    assert block.sceneBoundingRect().contains(ed.view.mapToScene(at)) and block.isSelected()
    assert ed.inspector.node_id == node_id  # the new block is selected and inspected
    # An unwired block is invalid: red, with the engine's reason, and training is refused.
    assert block.error == "takes 1 input but has 0" and ed.doc.diagnosis.problem == "dense_4 (dense) takes 1 input but has 0"
    assert w.controller.blocked is not None and w.controller.modified  # the draft is unsaved work
    for action in (w.play_action, w.epoch_action, w.batch_action):
        w.banner.hide()
        action.trigger()
        assert not w.controller.playing and "Training is refused until the graph is valid" in w.banner.label.text()
        assert w.banner.action.isHidden()  # Reset would not mend the graph
    assert w.controller.trainer.step == 0


def test_wiring_by_mouse_creates_the_edge_in_the_spec(open_window, qtbot):
    w = open_window("tfp-circle")
    ed = editor_of(w, qtbot)
    c = w.controller
    wire(ed, "dense_1", "dense_2").setSelected(True)
    ed.delete_selection()
    assert ("dense_1", "dense_2") not in ed.doc.model.edges
    assert c.blocked is not None and "dense_2" in c.blocked
    assert ("dense_1", "dense_2") in c.spec.model.edges  # the session keeps its last valid network meanwhile
    drag_wire(qtbot, ed, "dense_1", "dense_2")
    assert ("dense_1", "dense_2") in ed.doc.model.edges
    assert c.blocked is None and ("dense_1", "dense_2") in c.spec.model.edges
    # Wiring into a single-input port that is taken rewires it; wiring a block into itself is refused.
    drag_wire(qtbot, ed, "input", "dense_2")
    assert ("input", "dense_2") in ed.doc.model.edges and ("dense_1", "dense_2") not in ed.doc.model.edges
    ed.doc.connect("dense_2", "dense_2")
    assert "cannot feed itself" in ed.status.text()


def test_named_ports_put_inputs_in_role_order(open_window, qtbot):
    w = open_window("tfp-circle")
    ed = editor_of(w, qtbot)
    drop_op(ed, "dense", QPoint(100, 100))
    drop_op(ed, "reparam", QPoint(300, 100))
    rep = next(n.id for n in ed.doc.model.nodes if n.op == "reparam")
    drag_wire(qtbot, ed, "dense_2", rep, port=1)  # log σ² first
    drag_wire(qtbot, ed, "dense_1", rep, port=0)  # then μ
    assert ed.doc.slots(rep) == ["dense_1", "dense_2"]
    assert [s for s, t in ed.doc.model.edges if t == rep] == ["dense_1", "dense_2"]
    # A wire dropped on a block's body rather than on a port goes to its (first empty) input port.
    drop_op(ed, "add", QPoint(300, 300))
    add = next(n.id for n in ed.doc.model.nodes if n.op == "add")
    vp = ed.view.viewport()
    a = view_point(ed, ed.scene.blocks["dense_3"].out_port.centre())
    b = view_point(ed, ed.scene.blocks[add].sceneBoundingRect().center())
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=a)
    qtbot.mouseMove(vp, pos=b)
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=b)
    assert ("dense_3", add) in ed.doc.model.edges


def test_undo_and_redo_restore_the_spec_exactly(open_window, qtbot):
    w = open_window("tfp-circle")
    ed = editor_of(w, qtbot)
    c = w.controller
    initial = ed.doc.model
    states = [initial]
    drop_op(ed, "dropout", QPoint(150, 200))
    states.append(ed.doc.model)
    ed.scene.clearSelection()  # the dropped block is selected; delete only the wire
    wire(ed, "dense_1", "dense_2").setSelected(True)
    ed.delete_selection()
    drag_wire(qtbot, ed, "dense_1", "dropout_1")
    drag_wire(qtbot, ed, "dropout_1", "dense_2")
    states.append(ed.doc.model)
    ed._select(["dense_1"])
    ed.inspector.fields["units"].widget.setValue(7)
    states.append(ed.doc.model)
    ed.doc.move({"dense_3": (900.0, 50.0)})
    states.append(ed.doc.model)
    final = ed.doc.model
    assert c.spec.model == final and c.trainer.info.nodes["dense_1"].shape == (7,)
    stack = ed.doc.undo_stack
    while stack.canUndo():
        ed.undo_action.trigger()
    assert ed.doc.model == initial and c.spec.model == initial
    assert c.trainer.info.nodes["dense_1"].shape != (7,)
    while stack.canRedo():
        ed.redo_action.trigger()
    assert ed.doc.model == final and c.spec.model == final


def test_the_inspector_edits_parameters_with_typed_widgets_and_shows_the_arithmetic(open_window, qtbot):
    w = open_window("tfp-circle")
    ed = editor_of(w, qtbot)
    ed.insert_template("lenet")
    ed._select(["conv_1"])
    insp = ed.inspector
    assert insp.fields["activation"].widget.currentText() == "relu"
    assert insp.fields["filters"].widget.maximum() == 4096  # the schema's range
    assert "H: ⌊(28 + 2·2 − 5)/1⌋ + 1 = 28" in insp.shapes.text()
    insp.fields["stride"].widget.setValue(2)
    assert ed.doc.node("conv_1")["params"]["stride"] == 2
    assert ed.doc.diagnosis.shapes["conv_1"] == (6, 14, 14)
    assert "H: ⌊(28 + 2·2 − 5)/2⌋ + 1 = 14" in insp.shapes.text()
    ed._select(["pool_1"])
    stride = ed.inspector.fields["stride"].widget
    assert stride.text() == "auto"  # None = the kernel size
    # The input's declared shape is a text field: clearing it takes the dataset's shape.
    ed._select(["input"])
    shape = ed.inspector.fields["shape"].widget
    assert shape.text() == "1, 28, 28"
    shape.setText("")
    shape.editingFinished.emit()
    assert "shape" not in ed.doc.node("input")["params"]


def test_each_template_inserts_an_editable_graph_with_its_shapes(open_window, qtbot):
    w = open_window("spiral3")
    ed = editor_of(w, qtbot)
    for action in ed.templates_menu.actions():
        name = action.data()
        action.trigger()
        t = TEMPLATES[name]
        d = ed.doc.diagnosis
        assert set(d.shapes) == {n.id for n in ed.doc.model.nodes}, name  # every block has its shape
        if t.data == "session":
            assert d.valid, (name, d.problem)
            assert d.shapes["output"] == (3,)  # fitted to spiral3's three classes
            train_one_step(ed.doc.model, (2,))
        else:
            assert set(d.errors) == {"input"} and "the dataset gives (B, 2)" in d.problem, name
            train_one_step(ed.doc.model)  # on random data of its own kind (images, tokens, graphs)
    assert ed.doc.undo_stack.count() == len(TEMPLATES)


def test_a_template_trains_one_step_in_the_window(open_window, qtbot):
    w = open_window("tfp-circle")
    ed = editor_of(w, qtbot)
    ed.insert_template("residual_mlp")
    c = w.controller
    assert c.blocked is None and "skip_add" in c.trainer.info.nodes
    w.batch_action.trigger()
    qtbot.waitUntil(lambda: c.snapshot is not None and c.snapshot.step == 1, timeout=20_000)
    assert c.history.step_loss.n == 1 and np.isfinite(c.history.step_loss.view()).all()


def test_stack_editor_and_graph_editor_edit_the_same_spec(open_window, qtbot):
    w = open_window("tfp-circle")
    ed = editor_of(w, qtbot)
    n_dense = sum(n.op == "dense" for n in ed.doc.model.nodes)
    w.network.layer_plus.click()  # the quick layer-stack editor
    assert sum(n.op == "dense" for n in ed.doc.model.nodes) == n_dense + 1
    ed._select(["dense_1"])
    ed.inspector.fields["units"].widget.setValue(6)
    assert from_model(w.controller.spec.model).layers[0].units == 6
    assert w.network.headers[1].count.text() == "6"
    ed.insert_template("residual_mlp")
    assert from_model(w.controller.spec.model) is None
    assert not w.network.layer_plus.isEnabled() and "graph editor" in w.network.note.text()
    ed.undo_action.trigger()
    assert w.network.layer_plus.isEnabled() and w.network.note.text() == ""


def test_architecture_change_after_training_asks_before_resetting(open_window, qtbot, dialogs):
    w = open_window("tfp-circle")
    ed = editor_of(w, qtbot)
    c = w.controller
    train_epochs(qtbot, w, 2)
    epoch = c.trainer.epoch
    before = ed.doc.model
    dialogs.answers = [QMessageBox.StandardButton.Cancel]
    ed._select(["dense_1"])
    ed.inspector.fields["units"].widget.setValue(5)
    assert "starts training over" in dialogs.texts("question")[-1]
    qtbot.waitUntil(lambda: ed.doc.model == before)  # declined: the edit is undone
    assert c.trainer.epoch == epoch
    # Moving a block is not an architecture change: no question, no reset, the position is kept.
    asked = len(dialogs.texts("question"))
    ed.doc.move({"dense_1": (10.0, 300.0)})
    assert len(dialogs.texts("question")) == asked and c.trainer.epoch == epoch
    assert next(n for n in c.spec.model.nodes if n.id == "dense_1").position == (10.0, 300.0)
    dialogs.answers = [QMessageBox.StandardButton.Yes]
    ed._select(["dense_1"])
    ed.inspector.fields["units"].widget.setValue(5)
    assert c.trainer.epoch == 0 and c.trainer.info.nodes["dense_1"].shape == (5,)


def test_positions_and_an_unfinished_draft_survive_save_and_load(open_window, qtbot, tmp_path):
    w = open_window("tfp-circle")
    ed = editor_of(w, qtbot)
    block = ed.scene.blocks["dense_2"]
    start = ed.view.mapFromScene(block.sceneBoundingRect().center())
    vp = ed.view.viewport()
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(vp, pos=start + QPoint(40, 90))
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=start + QPoint(40, 90))
    moved = next(n for n in ed.doc.model.nodes if n.id == "dense_2").position
    assert moved != (320.0, 0.0) and moved is not None
    path = tmp_path / "layout.dlp"
    w.files.write(path)
    saved = load_session(path)
    assert next(n for n in saved.spec.model.nodes if n.id == "dense_2").position == moved
    # An invalid draft (a block not wired yet) is saved beside the session's valid network and comes back.
    drop_op(ed, "dense", QPoint(100, 300))
    draft = ed.doc.model
    assert not ed.doc.diagnosis.valid
    w.files.write(path)
    w2 = open_window(str(path))
    ed2 = editor_of(w2, qtbot)
    assert ed2.doc.model == draft
    assert next(n for n in w2.controller.spec.model.nodes if n.id == "dense_2").position == moved
    assert w2.controller.blocked is not None


def test_copy_paste_delete_and_auto_layout(open_window, qtbot):
    w = open_window("tfp-circle")
    ed = editor_of(w, qtbot)
    ed._select(["dense_1", "dense_2"])
    ed.copy_action.trigger()
    ed.paste_action.trigger()
    ids = {n.id for n in ed.doc.model.nodes}
    new = ids - {"input", "output", "dense_1", "dense_2", "dense_3"}
    assert len(new) == 2
    pos = {n.id: n.position for n in ed.doc.model.nodes}
    a, b = sorted(new)
    assert pos[a] == (pos["dense_1"][0] + 40, pos["dense_1"][1] + 40)
    assert (a, b) in ed.doc.model.edges  # the wire between the copies came along
    assert ed.scene.selected_nodes() == new
    ed.delete_action.trigger()
    assert {n.id for n in ed.doc.model.nodes} == ids - new
    # Other text on the clipboard, or our marker with nonsense, pastes nothing and raises nothing.
    for text in ("hello", '{"dl_playground_blocks": 1, "nodes": [{"op": 3}], "edges": []}'):
        QApplication.clipboard().setText(text)
        ed.paste_action.trigger()
        assert {n.id for n in ed.doc.model.nodes} == ids - new
    ed.doc.move({"dense_1": (500.0, 500.0)})
    ed.layout_action.trigger()
    pos = {n.id: n.position for n in ed.doc.model.nodes}
    assert pos["input"][0] < pos["dense_1"][0] < pos["dense_2"][0] < pos["dense_3"][0] < pos["output"][0]
    assert pos["dense_1"][1] == 0.0
    ed.undo_action.trigger()
    assert next(n for n in ed.doc.model.nodes if n.id == "dense_1").position == (500.0, 500.0)


def test_palette_search_zoom_and_invalid_blocks_are_red(open_window, qtbot):
    w = open_window("tfp-circle")
    ed = editor_of(w, qtbot)
    ed.palette.search.setText("attention")
    # Names and descriptions both match: GAT is graph attention, positional encodings serve attention.
    assert set(visible_ops(ed.palette)) == {"self_attention", "cross_attention", "transformer_block", "gat",
                                             "positional"}
    ed.palette.search.setText("lstm")
    assert visible_ops(ed.palette) == ["lstm"]
    ed.palette.search.setText("")
    assert len(visible_ops(ed.palette)) == len(ed.palette.items)
    scale = ed.view.transform().m11()
    ed.view.zoom(1.25)
    assert ed.view.transform().m11() == pytest.approx(scale * 1.25)
    ed._select(["dense_3"])
    ed.inspector.fields["units"].widget.setValue(2)  # the head of a two-class tanh output takes one unit
    block = ed.scene.blocks["output"]
    assert block.error == "expects (B, 1) but gets (B, 2): give dense_3 1 unit"
    assert block.error in block.toolTip() and block.error in ed.status.text()
    ed.view.centerOn(block)
    img = ed.view.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    arr = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine())[:, :img.width() * 3]
    reds = (arr[:, 0::3].astype(int) > 150) & (arr[:, 1::3] < 80) & (arr[:, 2::3] < 80)
    assert reds.sum() > 50  # the invalid block's red border is drawn


def test_summary_table_and_exports(open_window, qtbot, tmp_path):
    w = open_window("tfp-circle")
    ed = editor_of(w, qtbot)
    ed.insert_template("residual_mlp")
    table = ed.summary.table
    assert table.rowCount() == len(ed.doc.model.nodes)
    rows = {table.item(i, 0).text(): [table.item(i, j).text() for j in range(4)] for i in range(table.rowCount())}
    assert rows["stem"] == ["stem", "dense", "(B, 8)", "24"]
    ed.export("txt", tmp_path / "summary.txt")
    text = (tmp_path / "summary.txt").read_text()
    total = w.controller.trainer.info.total_params
    assert f"Total parameters: {total:,}" in text and "skip_add" in text and "Graph: valid" in text
    ed.export("png", tmp_path / "graph.png")
    img = QImage(str(tmp_path / "graph.png"))
    assert img.width() > 400 and len({img.pixel(x, img.height() // 2) for x in range(0, img.width(), 3)}) > 5
    ed.export("svg", tmp_path / "graph.svg")
    svg = (tmp_path / "graph.svg").read_text()
    assert "<svg" in svg and "skip_add" in svg


def test_keyboard_delete_undo_and_middle_button_pan(open_window, qtbot):
    w = open_window("tfp-circle")
    ed = editor_of(w, qtbot)
    before = ed.doc.model
    ed._select(["dense_2"])
    qtbot.keyClick(ed.view, Qt.Key.Key_Delete)
    assert "dense_2" not in {n.id for n in ed.doc.model.nodes}
    # The offscreen platform has no active window, so shortcuts cannot fire here: check the bindings instead.
    assert ed.undo_action.shortcut() == QKeySequence(QKeySequence.StandardKey.Undo)
    assert ed.undo_action.shortcutContext() == Qt.ShortcutContext.WidgetWithChildrenShortcut
    assert ed.undo_action in ed.actions() and ed.undo_action.isEnabled()
    ed.undo_action.trigger()
    assert ed.doc.model == before
    ed.view.zoom(2.0)  # something to pan over
    bar = ed.view.horizontalScrollBar()
    start = bar.value()
    vp = ed.view.viewport()
    qtbot.mousePress(vp, Qt.MouseButton.MiddleButton, pos=QPoint(200, 200))
    qtbot.mouseMove(vp, pos=QPoint(120, 200))
    qtbot.mouseRelease(vp, Qt.MouseButton.MiddleButton, pos=QPoint(120, 200))
    assert bar.value() == start + 80


def test_stepping_a_parameter_is_one_undo_step_and_keeps_the_form(open_window, qtbot):
    w = open_window("tfp-circle")
    ed = editor_of(w, qtbot)
    before = ed.doc.model
    ed._select(["dense_1"])
    units = ed.inspector.fields["units"].widget
    for _ in range(3):
        units.stepUp()  # the spin box's arrow
    assert ed.inspector.fields["units"].widget is units  # updated in place, not rebuilt under the mouse
    assert ed.doc.node("dense_1")["params"]["units"] == 7 and units.value() == 7
    assert ed.doc.undo_stack.count() == 1 and ed.doc.undo_stack.undoText() == "edit dense_1 units"
    ed.undo_action.trigger()
    assert ed.doc.model == before and units.value() == 4


def test_stack_edits_after_training_ask_too(open_window, qtbot, dialogs):
    w = open_window("tfp-circle")
    c = w.controller
    train_epochs(qtbot, w, 1)
    model = c.spec.model
    dialogs.answers = [QMessageBox.StandardButton.Cancel]
    w.network.layer_plus.click()
    assert "starts training over" in dialogs.texts("question")[-1]
    assert c.spec.model == model and c.trainer.epoch >= 1
    assert w.network.layer_label.text() == "2 hidden layers"
    dialogs.answers = [QMessageBox.StandardButton.Yes]
    w.network.layer_plus.click()
    assert c.trainer.epoch == 0 and w.network.layer_label.text() == "3 hidden layers"


class KnobParams(Params):
    gain: float = 2.5
    taps: int = 3
    mode: Literal["fast", "slow"] = "slow"


def test_a_registered_op_shows_in_the_palette_and_on_its_block_without_app_changes(open_window, qtbot):
    family = Family("test_family", "Test family", "#123456")
    op = Op(name="test_knob", family=family.name, doc="A throwaway op for a test.", params=KnobParams,
            inputs=(1, 1), shape=lambda p, s: s[0], build=lambda p, s, ctx: torch.nn.Identity(),
            key_params=("taps", "mode"))
    register_family(family)
    register(op)
    try:
        w = open_window("tfp-circle")
        ed = editor_of(w, qtbot)
        tree = ed.palette.tree
        titles = [tree.topLevelItem(i).text(0) for i in range(tree.topLevelItemCount())]
        assert titles == [f.title for f in FAMILIES.values()] and titles[-1] == "Test family"
        assert ed.palette.items["test_knob"].parent().text(0) == "Test family"
        ed.palette.search.setText("throwaway")
        assert visible_ops(ed.palette) == ["test_knob"]
        drop_op(ed, "test_knob", QPoint(200, 300))
        node_id = next(n.id for n in ed.doc.model.nodes if n.op == "test_knob")
        ed.inspector.fields["taps"].widget.setValue(5)
        block = ed.scene.blocks[node_id]
        assert "taps 5, slow" in block.lines and block.colour.name() == "#123456"
        drag_wire(qtbot, ed, "dense_1", node_id)  # wired in between, so the graph is valid and the block is drawn
        drag_wire(qtbot, ed, node_id, "dense_2")  # in its family's colour rather than the error red
        block = ed.scene.blocks[node_id]
        assert ed.doc.diagnosis.valid and block.error is None
        c = w.controller
        assert any(n.op == "test_knob" for n in c.spec.model.nodes) and c.blocked is None
        w.batch_action.trigger()  # and trains with it
        qtbot.waitUntil(lambda: c.snapshot is not None and c.snapshot.step == 1, timeout=20_000)
        image = QImage(int(block.boundingRect().width()), int(block.boundingRect().height()), QImage.Format.Format_RGB888)
        image.fill(0)
        painter = QPainter(image)
        painter.translate(-block.boundingRect().topLeft())
        block.paint(painter, QStyleOptionGraphicsItem())
        painter.end()
        arr = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
        rgb = arr[:, :image.width() * 3].reshape(image.height(), image.width(), 3)
        assert (rgb == (0x12, 0x34, 0x56)).all(axis=2).mean() > 0.3  # most of the block is its family's colour
        c.set_modified(False)
        w.close()  # while the op is still registered
    finally:
        OPS.pop(op.name, None)
        FAMILIES.pop(family.name, None)
