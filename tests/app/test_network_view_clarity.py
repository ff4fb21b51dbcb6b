"""The network view reads as TensorFlow Playground does (issue 12): hovering a neuron points the controller at
it, clicking a link edits its weight in place, skip connections are drawn, and a repaint with nothing new
blits the cached picture."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QFocusEvent
from PySide6.QtWidgets import QApplication

from engine import EngineError
from engine.head import Head
from engine.presets import load_preset
from engine.templates import TEMPLATES
from tests.app.helpers import train_epochs


def param(window, name: str):
    return dict(window.controller.trainer.model.named_parameters())[name].detach()


def spec_file(tmp_path, model: dict, preset: str = "tfp-circle") -> str:
    """A spec file of `preset` with another network."""
    spec = load_preset(preset)
    spec = spec.model_copy(update={"model": type(spec.model).model_validate(model)})
    path = tmp_path / "net.json"
    path.write_text(spec.model_dump_json())
    return str(path)


def residual_file(tmp_path) -> str:
    spec = load_preset("tfp-circle")
    return spec_file(tmp_path, TEMPLATES["residual_mlp"].model(Head.of(spec)).model_dump(mode="json"))


def midpoint(canvas, row: int) -> QPointF:
    """A point on straight link `row` that no other link passes nearer (so that the mouse picks that one)."""
    path = canvas.link_path(row)
    for t in np.linspace(0.2, 0.8, 25):
        p = path.pointAtPercent(float(t))
        if canvas.link_at(p) == row and canvas.unit_at(p) is None:
            return p
    raise AssertionError(f"link {row} is hidden under others")


def straight_row(canvas, column: int) -> int:
    """The first straight link out of `column` that the mouse can single out."""
    for row, (c, _u, d, _v) in enumerate(canvas.ends.tolist()):
        if c == column and d == column + 1:
            try:
                midpoint(canvas, row)
            except AssertionError:
                continue
            return row
    raise AssertionError(f"no link out of column {column} to point at")


# --- hover a neuron: the controller's focus --------------------------------------------------------------------


def test_hovering_a_neuron_focuses_it_and_leaving_clears_it(open_window, qtbot):
    w = open_window("tfp-circle")  # features x1, x2 on; hidden layers dense_1 (4) and dense_2 (2)
    c, canvas = w.controller, w.network.canvas
    seen = []
    c.focus_changed.connect(lambda: seen.append(c.focus))
    qtbot.mouseMove(canvas, canvas.columns[1].rects[2].center().toPoint())
    qtbot.waitUntil(lambda: c.focus == ("dense_1", 2))
    assert canvas.hovered == (1, 2)
    qtbot.mouseMove(canvas, canvas.columns[2].rects[1].center().toPoint())
    qtbot.waitUntil(lambda: c.focus == ("dense_2", 1))
    assert c.snapshot.probes["neurons"].arrays["dense_2"].shape[0] > 1  # the focus names a map the probe has
    # A feature that is on is an input neuron: its map is the input node's unit, in the input vector's order.
    qtbot.mouseMove(canvas, canvas.columns[0].rects[1].center().toPoint())  # x2
    qtbot.waitUntil(lambda: c.focus == ("input", 1))
    qtbot.mouseMove(canvas, canvas.columns[0].rects[2].center().toPoint())  # x1², switched off: not an input
    qtbot.waitUntil(lambda: c.focus is None)
    qtbot.mouseMove(canvas, canvas.columns[1].rects[0].center().toPoint())
    qtbot.waitUntil(lambda: c.focus == ("dense_1", 0))
    qtbot.mouseMove(canvas, canvas.columns[-1].rects[0].center().toPoint())  # the output view shows it already
    qtbot.waitUntil(lambda: c.focus is None)
    qtbot.mouseMove(canvas, canvas.columns[1].rects[3].center().toPoint())
    qtbot.waitUntil(lambda: c.focus == ("dense_1", 3))
    qtbot.mouseMove(canvas, QPoint(canvas.width() - 5, canvas.height() - 5))  # empty canvas
    qtbot.waitUntil(lambda: c.focus is None)
    qtbot.mouseMove(canvas, canvas.columns[1].rects[3].center().toPoint())
    qtbot.waitUntil(lambda: c.focus == ("dense_1", 3))
    QApplication.sendEvent(canvas, QEvent(QEvent.Type.Leave))  # the mouse left the canvas
    assert c.focus is None and canvas.hovered is None
    assert seen == [("dense_1", 2), ("dense_2", 1), ("input", 1), None, ("dense_1", 0), None, ("dense_1", 3), None,
                    ("dense_1", 3), None]


def test_a_new_network_under_the_mouse_drops_the_focus_and_the_editor(open_window, qtbot):
    w = open_window("tfp-circle")
    c, canvas = w.controller, w.network.canvas
    qtbot.mouseMove(canvas, canvas.columns[2].rects[1].center().toPoint())
    qtbot.waitUntil(lambda: c.focus == ("dense_2", 1))
    canvas.link_clicked.emit(straight_row(canvas, 1), QPointF(200, 200))
    assert canvas.editor.isVisible()
    w.network.layer_plus.click()  # a new run, drawn while the mouse rests on the canvas
    qtbot.waitUntil(lambda: len(canvas.columns) == 5 and bool(canvas.columns[3].images))
    assert c.focus is None and canvas.hovered is None and not canvas.editor.isVisible()


# --- click a link: edit its weight in place --------------------------------------------------------------------


def open_editor(qtbot, canvas, row: int):
    qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=midpoint(canvas, row).toPoint())
    assert canvas.editor.isVisible()
    return canvas.editor


def test_clicking_a_link_edits_its_weight(open_window, qtbot):
    w = open_window("tfp-circle")
    canvas = w.network.canvas
    row = straight_row(canvas, 1)  # dense_1 → dense_2
    _c, u, _d, v = canvas.ends[row].tolist()
    before = float(param(w, "layers.dense_2.weight")[v, u])
    assert canvas.weights[row] == pytest.approx(before)
    assert canvas.describe(midpoint(canvas, row)).endswith(f"{canvas.weights[row]:+.4f} — click to edit")
    downstream = canvas.columns[2].images[0]
    editor = open_editor(qtbot, canvas, row)
    assert float(editor.text()) == pytest.approx(before, rel=1e-5)  # it opens on the current weight
    editor.selectAll()
    qtbot.keyClicks(editor, "1.25")
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    assert not editor.isVisible()
    assert float(param(w, "layers.dense_2.weight")[v, u]) == 1.25
    # Paused, the view shows the edited model at once: the link, and the neurons downstream of it.
    assert canvas.weights[row] == 1.25 and canvas.link(row).weight == 1.25
    assert canvas.columns[2].images[0] is not downstream
    assert w.controller.modified

    editor = open_editor(qtbot, canvas, row)  # Escape cancels
    editor.selectAll()
    qtbot.keyClicks(editor, "-3")
    qtbot.keyClick(editor, Qt.Key.Key_Escape)
    assert not editor.isVisible() and float(param(w, "layers.dense_2.weight")[v, u]) == 1.25
    editor = open_editor(qtbot, canvas, row)  # so does clicking elsewhere
    editor.selectAll()
    qtbot.keyClicks(editor, "-3")
    QApplication.sendEvent(editor, QFocusEvent(QEvent.Type.FocusOut, Qt.FocusReason.MouseFocusReason))
    assert not editor.isVisible() and float(param(w, "layers.dense_2.weight")[v, u]) == 1.25


def test_links_from_features_and_into_the_output_edit_the_right_entry(open_window, qtbot):
    w = open_window("tfp-circle")
    canvas = w.network.canvas
    row = straight_row(canvas, 0)  # a feature → dense_1: the feature's thumbnail is not its input index
    _c, u, _d, v = canvas.ends[row].tolist()
    k = ("x1", "x2").index(("x1", "x2", "x1_sq", "x2_sq", "x1x2", "sin_x1", "sin_x2")[u])
    editor = open_editor(qtbot, canvas, row)
    editor.setText("-0.5")
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    assert float(param(w, "layers.dense_1.weight")[v, k]) == -0.5
    out = straight_row(canvas, len(canvas.columns) - 2)  # dense_2 → the output (its last dense layer)
    _c, u, _d, _v = canvas.ends[out].tolist()
    editor = open_editor(qtbot, canvas, out)
    editor.setText("2e-1")
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    assert float(param(w, "layers.dense_3.weight")[0, u]) == pytest.approx(0.2)


def test_a_refused_edit_is_explained_in_place_never_raised(open_window, qtbot, monkeypatch):
    w = open_window("tfp-circle")
    canvas = w.network.canvas
    row = straight_row(canvas, 1)
    _c, u, _d, v = canvas.ends[row].tolist()
    before = float(param(w, "layers.dense_2.weight")[v, u])
    editor = open_editor(qtbot, canvas, row)
    editor.setText("1e9")  # past what a float32 weight should hold: the field says so and stays open
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    assert editor.isVisible() and "Type a number" in editor.error and editor.toolTip() == editor.error
    assert float(param(w, "layers.dense_2.weight")[v, u]) == before

    def refuse(edit):
        raise EngineError("weight edit", "no parameter 'layers.gone.weight' in this network")

    monkeypatch.setattr(w.controller, "edit_weight", refuse)
    editor.setText("0.5")
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    assert editor.isVisible() and editor.error == "weight edit: no parameter 'layers.gone.weight' in this network"
    assert "border" in editor.styleSheet()
    qtbot.keyClick(editor, Qt.Key.Key_Escape)
    editor = open_editor(qtbot, canvas, row)  # opened again, it starts clean
    assert editor.error == "" and editor.styleSheet() == ""


# --- skip connections ------------------------------------------------------------------------------------------


def test_a_residual_network_draws_its_skip_connection_as_arcs(open_window, tmp_path, qtbot):
    w = open_window(residual_file(tmp_path))  # stem → res_a → res_b, add(stem, res_b) → relu → dense_out
    canvas = w.network.canvas
    assert [c.node for c in canvas.columns] == ["input", "stem", "res_a", "res_b", "output"]
    arcs = canvas.arcs
    assert len(arcs) == 8 and {(a.column, a.target) for a in arcs} == {(1, 4)}  # stem over res_a, res_b
    assert sorted(a.src for a in arcs) == list(range(8))
    assert canvas.lane_labels == {(1, 4): "skip: skip_add (add)"}
    # An add hands the same units on from both inputs: the arc from stem[u] shows dense_out's weight from unit
    # u, as the straight link from res_b[u] does.
    w_out = w.controller.snapshot.probes["weights"].arrays["dense_out"]  # (1, 8)
    straight = {link.src: link.weight for link in canvas.links if link.column == 3}
    for a in arcs:
        assert a.weight == float(w_out[0, a.src]) == straight[a.src]
    # The arc runs above every column it skips, and is pointed at (and edited) like any link.
    row = next(i for i, e in enumerate(canvas.ends.tolist()) if e[0] == 1 and e[2] == 4 and e[1] == 0)
    top = min(r.top() for c in canvas.columns for r in c.rects)
    lane = canvas.link_path(row).pointAtPercent(0.5)
    assert lane.y() < top and canvas.columns[2].rects[0].left() < lane.x() < canvas.columns[3].rects[0].right()
    assert canvas.link_at(lane) == row
    text = canvas.describe(lane)
    assert text.startswith("weight stem[1] → output:") and "skip connection past res_a, res_b" in text
    assert "through skip_add (add)" in text
    qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=lane.toPoint())
    assert canvas.editor.isVisible()
    canvas.editor.setText("0.75")
    qtbot.keyClick(canvas.editor, Qt.Key.Key_Return)
    assert float(param(w, "layers.dense_out.weight")[0, 0]) == 0.75
    assert canvas.weights[row] == 0.75


def test_a_concat_of_an_earlier_layer_links_each_input_to_its_own_weights(open_window, tmp_path):
    nodes = [{"id": "input", "op": "input"},
             {"id": "d1", "op": "dense", "params": {"units": 3, "activation": "tanh"}},
             {"id": "d2", "op": "dense", "params": {"units": 2, "activation": "tanh"}},
             {"id": "cat", "op": "concat"},
             {"id": "d3", "op": "dense", "params": {"units": 4, "activation": "tanh"}},
             {"id": "head", "op": "dense", "params": {"units": 1}},
             {"id": "output", "op": "output", "params": {"activation": "tanh"}}]
    edges = [["input", "d1"], ["d1", "d2"], ["d2", "cat"], ["d1", "cat"], ["cat", "d3"], ["d3", "head"],
             ["head", "output"]]  # concat order: d2's units first, then d1's
    w = open_window(spec_file(tmp_path, {"nodes": nodes, "edges": edges}))
    canvas = w.network.canvas
    assert [c.node for c in canvas.columns] == ["input", "d1", "d2", "d3", "output"]
    w3 = w.controller.snapshot.probes["weights"].arrays["d3"]  # (4, 2 + 3)
    arcs = canvas.arcs
    assert len(arcs) == 3 * 4 and {(a.column, a.target) for a in arcs} == {(1, 3)}  # d1 over d2, into d3
    assert canvas.lane_labels == {(1, 3): "skip: cat (concat)"}
    for a in arcs:
        assert a.weight == float(w3[a.dst, 2 + a.src])  # d1 sits after d2's two units in the concat
    for link in (link for link in canvas.links if link.column == 2):
        assert link.weight == float(w3[link.dst, link.src])


def test_arcs_keep_out_of_the_units_they_skip(open_window, tmp_path):
    w = open_window(residual_file(tmp_path))
    canvas = w.network.canvas
    rows = np.flatnonzero(canvas.ends[:, 2] > canvas.ends[:, 0] + 1)
    assert len(rows) == 8
    for row in rows.tolist():
        path = canvas.link_path(row)
        pts = np.array([(q.x(), q.y()) for q in map(path.pointAtPercent, np.linspace(0, 1, 400).tolist())])
        assert canvas.link_at(QPointF(*pts[len(pts) // 3])) is not None  # the mouse finds it along the way
        for c in canvas.columns[2:4]:  # res_a and res_b
            for r in c.rects:
                inside = (pts[:, 0] > r.left()) & (pts[:, 0] < r.right()) & (pts[:, 1] > r.top()) & (
                    pts[:, 1] < r.bottom())
                assert not inside.any(), (row, c.node)


# --- speed: a cached picture -----------------------------------------------------------------------------------


def test_the_canvas_repaints_from_its_pixmap_until_the_probes_change(open_window, qtbot):
    w = open_window("tfp-circle")
    view, canvas = w.network, w.network.canvas
    canvas.grab()  # the picture is up to date
    painted, based = canvas.renders, canvas.base_renders
    snap = w.controller.snapshot
    view.draw(snap)  # the same probe results: nothing to redo
    view.redraw()
    canvas.grab()
    canvas.repaint()
    qtbot.mouseMove(canvas, canvas.columns[1].rects[0].center().toPoint())  # a hover only outlines
    qtbot.waitUntil(lambda: canvas.hovered == (1, 0))
    canvas.grab()
    canvas.set_weights(canvas.weights * (1 + 1e-12))  # new weights that look the same: no link is painted again
    canvas.grab()
    assert (canvas.renders, canvas.base_renders) == (painted, based)
    first = canvas.columns[1].images[0]
    train_epochs(qtbot, w, 2)
    qtbot.waitUntil(lambda: w.controller.snapshot.probes["neurons"].step == w.controller.trainer.step)
    canvas.grab()
    assert canvas.renders > painted and canvas.columns[1].images[0] is not first  # new probes: a new picture
    painted, based = canvas.renders, canvas.base_renders
    canvas.set_weights(-canvas.weights)  # every link changes colour
    canvas.grab()
    assert (canvas.renders, canvas.base_renders) == (painted + 1, based + 1)
    canvas.resize(canvas.width() - 10, canvas.height())
    canvas.grab()
    assert (canvas.renders, canvas.base_renders) == (painted + 2, based + 2)  # a new size: painted again, once
