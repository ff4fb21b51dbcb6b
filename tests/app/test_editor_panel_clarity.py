"""Clarity at the default window size: Fit shows the whole graph, a refusal banner goes once the graph is mended,
and the training panel shows its last rows without scrolling."""
from __future__ import annotations

import itertools

import pytest
from PySide6.QtCore import QPoint, QRect, QSize
from PySide6.QtWidgets import QApplication

from app.editor.canvas import FIT_MAX, MIN_ZOOM
from engine.spec import ModelSpec
from engine.templates import auto_layout
from tests.app.test_editor import drag_wire, editor_of, wire

DEFAULT_SIZE = QSize(1560, 940)  # MainWindow's size when no layout was saved (each test has a fresh home)


def visible_scene_rect(editor):
    view = editor.view
    return view.mapToScene(view.viewport().rect()).boundingRect()


def cut_off_blocks(editor) -> list[str]:
    """The blocks not wholly inside the part of the scene the canvas shows."""
    shown = visible_scene_rect(editor)
    return [n for n, b in editor.scene.blocks.items() if not shown.contains(b.sceneBoundingRect())]


def chain(n: int, column: bool = False) -> ModelSpec:
    """input → n dense blocks → output, laid out in one row (far wider than the canvas) or stacked in a column."""
    ids = ["input", *(f"dense_{i}" for i in range(1, n + 1)), "output"]
    nodes = [{"id": i, "op": i if i in ("input", "output") else "dense", "params": {}, "position": [0, 100 * k]}
             for k, i in enumerate(ids)]
    nodes[-2]["params"] = {"units": 1}  # tfp-circle's head: one tanh unit
    model = {"nodes": nodes, "edges": [list(pair) for pair in itertools.pairwise(ids)]}
    return ModelSpec.model_validate(model if column else auto_layout(model))


def test_fit_shows_every_block_of_the_transformer_at_the_default_window_size(open_window, qtbot):
    w = open_window("spiral")
    assert w.size() == DEFAULT_SIZE
    ed = editor_of(w, qtbot)
    ed.insert_template("transformer")
    assert len(ed.scene.blocks) == 9
    ed.view.zoom(4.0)  # read one block up close, then ask for the whole graph again
    assert cut_off_blocks(ed)
    ed.fit_action.trigger()
    QApplication.processEvents()  # scroll bars come and go with the zoom: check what the user then sees
    assert cut_off_blocks(ed) == []
    assert ed.view.transform().m11() < 0.7  # the old floor that cut the transformer off after two blocks
    # From there the wheel zooms in and back out to the whole graph.
    fitted = ed.view.transform().m11()
    ed.view.zoom(1.15)
    ed.view.zoom(1 / 1.15)
    assert ed.view.transform().m11() == pytest.approx(fitted)


def test_fit_shows_a_graph_far_wider_than_the_canvas_and_never_magnifies_a_small_one(open_window, qtbot):
    w = open_window("tfp-circle")
    ed = editor_of(w, qtbot)
    ed.doc.replace(chain(30), "long chain")
    assert w.controller.blocked is None and len(ed.scene.blocks) == 32
    ed.fit_action.trigger()
    QApplication.processEvents()
    assert cut_off_blocks(ed) == [] and ed.view.transform().m11() >= MIN_ZOOM
    ed.doc.replace(chain(0, column=True), "two blocks")
    ed.focus_action.trigger()  # the side panels make room: the canvas is far larger than the graph
    QApplication.processEvents()
    ed.fit_action.trigger()
    QApplication.processEvents()
    assert cut_off_blocks(ed) == [] and ed.view.transform().m11() == FIT_MAX
    for _ in range(100):  # the wheel stops at the limits instead of short of them
        ed.view.zoom(1 / 1.15)
    assert ed.view.transform().m11() == pytest.approx(MIN_ZOOM)


def refuse_training(w) -> None:
    """Press Play on an invalid graph: the window refuses and says why in the banner."""
    assert w.controller.blocked is not None
    w.play_action.trigger()
    assert not w.controller.playing
    assert w.banner.isVisible() and "Training is refused until the graph is valid" in w.banner.label.text()


# Undo gives back the very network the session trains: the run goes on, no new spec is announced, and only
# the controller's state_changed tells the window that training is no longer refused.
@pytest.mark.parametrize("mend", ["rewire", "undo"])
def test_the_refusal_banner_goes_when_the_same_network_is_wired_again(open_window, qtbot, mend):
    w = open_window("tfp-circle")
    ed = editor_of(w, qtbot)
    run = w.controller.trainer.run_id
    wire(ed, "dense_1", "dense_2").setSelected(True)
    ed.delete_selection()
    refuse_training(w)
    if mend == "rewire":
        drag_wire(qtbot, ed, "dense_1", "dense_2")  # the wire comes last in the edge list: a new run
    else:
        ed.undo_action.trigger()  # the very network the session trains: the run goes on
        assert w.controller.trainer.run_id == run
    assert w.controller.blocked is None
    assert not w.banner.isVisible()


def test_the_refusal_banner_goes_when_a_different_network_becomes_valid(open_window, qtbot):
    w = open_window("tfp-circle")
    ed = editor_of(w, qtbot)
    ed._select(["dense_2"])
    ed.delete_selection()  # dense_3 has no input now
    refuse_training(w)
    drag_wire(qtbot, ed, "dense_1", "dense_3")  # valid again, one hidden layer fewer: a new run
    assert w.controller.blocked is None and "dense_2" not in w.controller.trainer.info.nodes
    assert not w.banner.isVisible()


def rect_in(widget, ancestor) -> QRect:
    return QRect(widget.mapTo(ancestor, QPoint(0, 0)), widget.size())


@pytest.mark.parametrize("preset", ["tfp-circle", "spiral"])  # the default session; Adam's four fields
def test_the_training_panel_shows_its_last_rows_at_the_default_window_size(open_window, preset):
    w = open_window(preset)
    assert w.size() == DEFAULT_SIZE
    panel = w.training_panel
    viewport = w.docks["Training"].widget().viewport()
    shown = viewport.rect()
    for name in ("clip_on", "clip", "early_on", "patience", "restore"):  # "Clip gradients at norm" and below
        control = getattr(panel, name)
        assert control.isVisible(), name
        assert shown.contains(rect_in(control, viewport)), name
        assert control.visibleRegion().boundingRect() == control.rect(), name  # nothing of it is clipped
