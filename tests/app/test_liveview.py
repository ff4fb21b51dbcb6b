"""Live views as a family: hidden views cost nothing (no drawing, no probes), visible ones redraw only what
changed, RunInfo is what they read, the VIEWS table builds the window, and a session's `ui` cannot break it."""
from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path

import pytest

from app.controller import RunInfo
from app.views.base import LiveView
from app.views.table import VIEWS
from engine.session import save_session
from tests.app.helpers import train_epochs

HEALTH = {"grad_norms", "dead_units", "weights"}




def count_draws(monkeypatch, view: LiveView) -> list[int]:
    """Record the step of every snapshot the view draws."""
    drawn: list[int] = []
    original = view.draw

    def draw(snap):
        drawn.append(snap.step if snap is not None else -1)
        original(snap)

    monkeypatch.setattr(view, "draw", draw)
    return drawn


def test_hidden_views_get_no_probes_and_shown_ones_get_fresh_ones(open_window, qtbot):
    w = open_window("tfp-circle")
    c = w.controller
    assert not w.health.showing()  # tabbed behind Curves
    assert c.wanted == {"boundary", "neurons", "weights"}  # Output and Network show
    assert c.trainer.prober.wanted == c.wanted & c.run_info.probes
    assert "grad_norms" not in c.snapshot.probes
    train_epochs(qtbot, w, 2)
    assert "grad_norms" not in c.snapshot.probes and c.history.probe_steps.total == 0
    w.docks["Health"].raise_()  # between runs: the probes are computed at once, for this step
    qtbot.waitUntil(lambda: w.health.grad_curves.get("dense_1") is not None
                    and w.health.grad_curves["dense_1"].yData is not None)
    assert c.wanted >= HEALTH and c.snapshot.probes["grad_norms"].step == c.trainer.step
    w.tabs.setCurrentWidget(w.editor)
    w.docks["Output"].close()
    qtbot.waitUntil(lambda: not c.probes_pending)
    assert c.wanted == HEALTH  # neither the network nor the boundary is seen
    assert c.trainer.prober.wanted == {"grad_norms", "weights"}  # tanh: no dead-ReLU probe applies


def test_a_view_shown_while_training_gets_its_probes_at_a_later_snapshot(open_window, qtbot):
    w = open_window("tfp-circle")
    c = w.controller
    c.play()
    qtbot.waitUntil(lambda: c.snapshot.epoch >= 2, timeout=30_000)
    shown_at = c.snapshot.step
    w.docks["Health"].raise_()
    qtbot.waitUntil(lambda: "grad_norms" in c.snapshot.probes and c.snapshot.probes["grad_norms"].step > shown_at,
                    timeout=30_000)
    qtbot.waitUntil(lambda: w.health.grad_curves.get("dense_1") is not None)
    c.pause()


def test_visible_views_redraw_only_what_changed_and_minimised_windows_draw_nothing(open_window, qtbot, monkeypatch):
    w = open_window("tfp-circle")
    c = w.controller
    output, curves = count_draws(monkeypatch, w.output), count_draws(monkeypatch, w.curves)
    c.frame.emit()  # the same snapshot again
    assert output == [] and curves == []
    w.output.discretize.setChecked(True)  # an option redraws at once
    assert output == [c.snapshot.step]
    w.showMinimized()
    qtbot.waitUntil(lambda: not c.probes_pending)
    assert not w.output.showing() and c.wanted == frozenset()
    before = len(output), len(curves)
    train_epochs(qtbot, w, 2)
    assert (len(output), len(curves)) == before  # nothing drawn while minimised
    assert not c.snapshot.probes or all(p.step < c.snapshot.step for p in c.snapshot.probes.values())
    w.showNormal()
    qtbot.waitUntil(lambda: output and output[-1] == c.trainer.step)  # caught up, with a fresh boundary
    assert curves[-1] == c.trainer.step
    assert len(w.curves.train_curve.xy()[1]) == c.history.n_epochs


def test_run_info_describes_each_run(open_window):
    w = open_window("spiral")
    c = w.controller
    info = c.run_info
    assert isinstance(info, RunInfo) and info.run_id == c.trainer.run_id == c.snapshot.run_id
    assert info.order == tuple(c.trainer.info.order) and info.total_params == c.trainer.info.total_params
    assert info.nodes["dense_1"].shape == (8,) and info.nodes["dense_1"].n_params == 7 * 8 + 8
    assert info.task == "classification" and info.output_activation == "tanh"
    assert info.probes == set(c.trainer.applicable_probes) and info.dataset == c.spec.dataset
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.run_id = 0  # type: ignore[misc]
    w.reset_action.trigger()
    assert c.run_info is not info and c.run_info.run_id == c.trainer.run_id != info.run_id


def test_no_view_reaches_into_the_trainer():
    views = Path(__file__).resolve().parents[2] / "app" / "views"
    offenders = [p.name for p in views.glob("*.py") if re.search(r"\.trainer\b", p.read_text(encoding="utf-8"))]
    assert not offenders, f"views read controller.run_info and snapshots, not the trainer: {offenders}"


def test_the_window_is_built_from_the_views_table(open_window):
    w = open_window("tfp-circle")
    assert len({e.name for e in VIEWS}) == len(VIEWS) and all(issubclass(e.cls, LiveView) for e in VIEWS)
    for entry in VIEWS:
        view = w.views[entry.name]
        assert type(view) is entry.cls and entry.probes == entry.cls.probes
        if entry.area is None:
            assert w.tabs.tabText(w.tabs.indexOf(view)) == entry.title
        else:
            assert w.docks[entry.title].widget() is view and w.dockWidgetArea(w.docks[entry.title]) == entry.area
    assert [w.tabs.tabText(i) for i in range(w.tabs.count())] == ["Network", "Samples", "Draw", "Latent",
                                                                   "Predictions", "Attention", "Graph editor"]
    assert [w.tabs.tabText(i) for i in range(w.tabs.count()) if w.tabs.isTabVisible(i)] == ["Network", "Latent",
                                                                                         "Graph editor"]
    assert w.tabifiedDockWidgets(w.docks["Curves"]) == [w.docks["Health"]]  # Confusion is put away here


def test_views_that_do_not_apply_are_put_away_and_cost_nothing(monkeypatch, open_window, qtbot):
    never = {"output", "network", "latent"}
    table = tuple(dataclasses.replace(e, applies=lambda spec: False) if e.name in never else e for e in VIEWS)
    monkeypatch.setattr("app.deck.VIEWS", table)
    w = open_window("tfp-circle")
    assert w.docks["Output"].isHidden() and not w.docks["Output"].toggleViewAction().isEnabled()
    assert not w.tabs.isTabVisible(w.tabs.indexOf(w.network)) and w.tabs.currentWidget() is w.editor
    assert w.controller.wanted == frozenset()  # Curves shows and needs no probe
    w.apply_ui({"views": {"Output": True}})
    assert w.docks["Output"].isHidden()


HOSTILE_UI = [
    {"views": []},
    {"views": {"Nowhere": True, "Health": "yes", "Curves": None}},
    {"output": [1, 2], "curves": None},
    {"output": {"show_test": "true", "discretize": 1, "bogus": True}},
    {"tab": "1"},
    {"tab": 99},
    {"tab": True},
    {"editor_draft": 5, "recovery": 3},
    [],
    "views",
]


@pytest.mark.parametrize("ui", HOSTILE_UI, ids=[repr(u)[:40] for u in HOSTILE_UI])
def test_apply_ui_takes_any_content_and_logs_what_it_skips(open_window, caplog, ui):
    w = open_window("tfp-circle")
    w.output.discretize.setChecked(True)
    before = {name: not dock.isHidden() for name, dock in w.docks.items()}
    with caplog.at_level(logging.WARNING, logger="app"):
        w.apply_ui(ui)
    assert not w.output.discretize.isChecked()  # missing or malformed: the default
    assert {name: not dock.isHidden() for name, dock in w.docks.items()} == before
    if ui not in ({"editor_draft": 5, "recovery": 3},):
        assert caplog.records, "a skipped part of the ui is logged"
    assert w.tabs.currentIndex() == 0


def test_a_session_with_a_broken_ui_opens(open_window, tmp_path, qtbot):
    w = open_window("tfp-circle")
    path = tmp_path / "odd.dlp"
    save_session(path, w.controller.spec, w.controller.checkpoint(), {"views": [], "output": "discretize"})
    assert w.files.open_path(path)
    w2 = open_window(str(path))
    assert w2.files.path == path and w2.output.rgb is not None


def test_plots_paint_without_python_and_still_prepare_their_scene(open_window, qtbot):
    """Every plot is painted by Qt alone (pyqtgraph's Python paintEvent held the GIL through the whole scene
    render, and the training thread waited); the scene's prepare step still runs before each paint."""
    import pyqtgraph as pg
    from PySide6.QtWidgets import QGraphicsView

    w = open_window("tfp-circle")
    w.deck.show_all()
    plots = w.findChildren(pg.GraphicsView)
    assert len(plots) >= 4  # curves, output, health's three
    for plot in plots:
        assert type(plot).paintEvent is QGraphicsView.paintEvent, type(plot)
    vb = w.curves.loss_plot.vb
    before = vb.childGroup.transform()
    vb.setXRange(0, 1234, padding=0)
    assert vb.childGroup.transform() == before  # pyqtgraph defers the new matrix to the next paint ...
    w.curves.graphics.viewport().repaint()
    assert vb.childGroup.transform() != before  # ... and the paint prepared it
