"""Each view draws real data (item data and pixels), hover texts read values, and the network view edits."""
from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QMessageBox

from app.views.curves import loss_text
from engine.stack import from_model, with_stack
from tests.app.helpers import train_epochs


def pixels(widget) -> np.ndarray:
    img = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    arr = np.frombuffer(img.constBits(), dtype=np.uint8).reshape(img.height(), img.bytesPerLine())
    return arr[:, :img.width() * 3].copy()


def link_midpoint(canvas, link) -> QPointF:
    """Halfway along a drawn link: from the right edge of its source unit to the left edge of its target."""
    a = canvas.columns[link.column].rects[link.src]
    b = canvas.columns[link.column + 1].rects[link.dst]
    return QPointF((a.right() + b.left()) / 2, (a.center().y() + b.center().y()) / 2)


def test_network_view_draws_neurons_and_links_that_change(open_window, qtbot):
    w = open_window("spiral")
    canvas = w.network.canvas
    before = pixels(canvas)
    cols = canvas.columns
    assert [c.node for c in cols] == ["input", "dense_1", "dense_2", "dense_3", "dense_4", "output"]
    assert all(len(c.rects) == min(c.units, 16) for c in cols[1:-1])
    assert len(canvas.links) == 7 * 8 + 3 * 64 + 8  # all features are on in this preset
    train_epochs(qtbot, w, 5)
    after = pixels(canvas)
    h, wd = min(before.shape[0], after.shape[0]), min(before.shape[1], after.shape[1])  # docks may settle
    assert (before[:h, :wd] != after[:h, :wd]).any(axis=1).mean() > 0.05
    weights = w.controller.snapshot.probes["weights"].arrays["dense_2"]
    _c, u, v, wt = next(link for link in canvas.links if link[0] == 1)
    assert wt == float(weights[v, u])


def test_hovering_the_network_names_links_and_neurons(open_window):
    w = open_window("tfp-circle")
    canvas = w.network.canvas
    i = next(k for k, link in enumerate(canvas.links) if link[0] == 1)
    _c, _u, _v, wt = canvas.links[i]
    text = canvas.describe(link_midpoint(canvas, canvas.links[i]))
    assert text.startswith("weight dense_1[") and f"{wt:+.4f}" in text
    rect = canvas.columns[1].rects[0]
    text = canvas.describe(rect.center())
    assert "neuron 1 of" in text and "bias" in text
    assert canvas.describe(QPointF(-100, -100)) == ""


def test_output_view_shows_points_and_discretizes(open_window, qtbot):
    w = open_window("tfp-circle")
    data = w.controller.trainer.data
    xs, ys = w.output.train_points.getData()
    np.testing.assert_allclose(np.c_[xs, ys], data.points_train)
    assert not w.output.test_points.isVisible()
    w.output.show_test.setChecked(True)
    assert w.output.test_points.isVisible() and len(w.output.test_points.getData()[0]) == len(data.y_test)
    before = pixels(w.output.plot)
    train_epochs(qtbot, w, 5)
    assert (pixels(w.output.plot) != before).any(axis=1).mean() > 0.2  # the boundary moved on screen
    smooth = w.output.rgb.copy()
    w.output.discretize.setChecked(True)
    hard = w.output.rgb
    assert len(np.unique(hard.reshape(-1, 3), axis=0)) <= 3 < len(np.unique(smooth.reshape(-1, 3), axis=0))
    np.testing.assert_array_equal(w.output.image.image, hard)


def test_curves_hold_every_epoch_and_hover_reads_them(open_window, qtbot):
    w = open_window("tfp-circle")
    train_epochs(qtbot, w, 4)
    h = w.controller.history
    np.testing.assert_array_equal(w.curves.train_curve.xy()[1], h.epochs["epoch_train_loss"].view())
    np.testing.assert_array_equal(w.curves.test_acc.xy()[1], h.epochs["epoch_test_accuracy"].view())
    assert len(w.curves.step_curve.xy()[1]) == w.controller.trainer.step  # a short run: every step a point
    numbers = w.curves.numbers.text()
    assert loss_text(h.epochs["epoch_train_loss"].view()[-1]) in numbers
    assert loss_text(h.epochs["epoch_test_loss"].view()[-1]) in numbers
    text = w.curves.values_at(2.2)
    assert text.startswith("epoch 2: train loss") and f"{h.epochs['epoch_train_loss'].view()[1]:.4g}" in text
    w.curves.log_y.setChecked(True)
    assert w.curves.loss_plot.getAxis("left").logMode
    np.testing.assert_allclose(w.curves.train_curve.xy()[1], np.log10(h.epochs["epoch_train_loss"].view()))
    ticks = w.curves.acc_plot.getAxis("left")._tickLevels[0]
    assert ticks[-1] == (1.0, "1.0") and w.curves.acc_plot.vb.viewRange()[1][1] > 1.0  # the 1.0 label shows


def test_health_view_plots_gradients_dead_units_and_histograms(open_window, qtbot):
    w = open_window("tfp-circle")
    w.docks["Health"].raise_()
    spec = w.controller.spec
    stack = from_model(spec.model)
    relu = replace(stack, layers=tuple(replace(layer, activation="relu") for layer in stack.layers))
    assert w.apply_spec(with_stack(spec, relu))
    train_epochs(qtbot, w, 3)
    qtbot.waitUntil(lambda: w.health.grad_curves["dense_1"].yData is not None)
    weights = w.controller.snapshot.probes["weights"].arrays
    assert set(w.health.dead_curves) == {"dense_1", "dense_2"}
    assert not w.health.dead_note.isVisible()
    grads = w.health.grad_curves["dense_1"].yData
    assert np.isfinite(grads).any() and (grads[np.isfinite(grads)] > -10).all()  # log10 of real norms
    counts = w.health.hist_curves["dense_1"].yData
    assert counts.sum() == weights["dense_1"].size


def test_network_buttons_edit_the_stack_and_reset(open_window):
    w = open_window("tfp-circle")
    c = w.controller
    layers = from_model(c.spec.model).layers
    run = c.trainer.run_id
    w.network.layer_plus.click()
    assert len(from_model(c.spec.model).layers) == len(layers) + 1 and c.trainer.run_id != run
    header = w.network.headers[1]
    header.findChildren(type(w.network.layer_plus))[1].click()  # "+" neuron on hidden layer 1
    assert from_model(c.spec.model).layers[0].units == layers[0].units + 1
    w.network.headers[1].activation.setCurrentText("relu")
    assert from_model(c.spec.model).layers[0].activation == "relu"
    w.network.headers[2].bn.setChecked(True)
    w.network.headers[2].dropout.setValue(0.3)
    stack = from_model(c.spec.model)
    assert stack.layers[1].batch_norm and stack.layers[1].dropout == 0.3
    assert [n.op for n in c.spec.model.nodes].count("dropout") == 1
    w.network.layer_minus.click()
    assert len(from_model(c.spec.model).layers) == len(layers)
    assert w.isWindowModified()


def test_elu_selu_and_maxout_from_the_activation_menu_train_and_draw(open_window, qtbot, dialogs):
    w = open_window("tfp-circle")
    c, canvas = w.controller, w.network.canvas
    for name in ("elu", "selu", "maxout"):
        dialogs.answers = [QMessageBox.StandardButton.Yes]  # the reset after training is confirmed
        combo = w.network.headers[1].activation
        assert combo.findText(name) >= 0
        combo.setCurrentText(name)
        assert from_model(c.spec.model).layers[0].activation == name and c.trainer.step == 0
        before = pixels(canvas)
        train_epochs(qtbot, w, 6)
        qtbot.waitUntil(lambda: c.snapshot.probes["weights"].step == c.trainer.step)
        losses = c.history.epochs["epoch_train_loss"].view()
        assert losses[-1] < losses[0], (name, losses)
        assert [col.node for col in canvas.columns] == ["input", "dense_1", "dense_2", "output"]
        assert len(canvas.columns[1].rects) == 4 and len(canvas.links) == 2 * 4 + 4 * 2 + 2  # one link per unit
        after = pixels(canvas)
        assert after.shape == before.shape and (after != before).any(axis=1).mean() > 0.05
    w1 = c.snapshot.probes["weights"].arrays["dense_1"]
    assert w1.shape == (8, 2)  # 4 units × 2 pieces, from x₁ and x₂
    for link in (link for link in canvas.links if link.column == 0):
        pieces = w1[2 * link.dst:2 * link.dst + 2, link.src]
        assert link.weight == float(pieces[np.abs(pieces).argmax()])  # the strongest piece
    text = canvas.describe(link_midpoint(canvas, canvas.links[0]))
    assert "strongest of its 2 pieces" in text
    assert "maxout of 2" in canvas.describe(canvas.columns[1].rects[0].center())


def test_clicking_a_feature_toggles_it(open_window, qtbot):
    w = open_window("tfp-circle")
    canvas = w.network.canvas
    x1_sq = canvas.columns[0].rects[2]
    qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=x1_sq.center().toPoint())
    assert w.controller.spec.dataset.features == ("x1", "x2", "x1_sq")
    assert w.data_panel.editor.features["x1_sq"].isChecked()
    qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=x1_sq.center().toPoint())
    assert w.controller.spec.dataset.features == ("x1", "x2")


def test_dataset_thumbnails_switch_the_problem(open_window):
    w = open_window("tfp-circle")
    panel = w.data_panel.editor  # the toy2d family's editor
    panel.buttons["spiral3"].click()
    spec = w.controller.spec
    assert spec.dataset.name == "spiral3" and spec.loss == "cross_entropy"
    assert w.training_panel.loss.currentData() == "cross_entropy"
    panel.problem.setCurrentIndex(panel.problem.findData("regression"))
    assert w.controller.spec.dataset.name == "plane" and w.controller.spec.dataset.samples == 1200
    assert panel.buttons["multigauss"].isVisibleTo(panel) and not panel.buttons["xor"].isVisibleTo(panel)
    from app.colors import NEGATIVE, POSITIVE
    from app.panels.datasets.toy2d import thumbnail

    img = thumbnail("spiral").convertToFormat(QImage.Format.Format_RGB888)
    arr = np.frombuffer(img.constBits(), dtype=np.uint8).reshape(img.height(), img.bytesPerLine())
    colours = {tuple(p) for p in arr[:, :img.width() * 3].reshape(-1, 3)}
    assert NEGATIVE in colours and POSITIVE in colours  # both classes drawn from the real generator


def test_an_invalid_edit_is_explained_and_not_applied(open_window, dialogs):
    w = open_window("spiral3")
    spec = w.controller.spec
    w.training_panel.loss.setCurrentIndex(w.training_panel.loss.findData("bce"))
    assert w.controller.spec == spec
    assert dialogs.texts("warning") and "two classes" in dialogs.texts("warning")[0]
    assert w.training_panel.loss.currentData() == "cross_entropy"  # the panel shows the spec in force


def test_every_control_has_a_tooltip(open_window):
    from PySide6.QtWidgets import QAbstractButton, QAbstractSpinBox, QComboBox, QSlider

    w = open_window("tfp-circle")
    missing = []
    for kind in (QAbstractButton, QAbstractSpinBox, QComboBox, QSlider):
        for widget in w.findChildren(kind):
            if widget.isVisibleTo(w) and not widget.toolTip() and widget.objectName() != "qt_toolbar_ext_button":
                parent = widget.parent()
                if parent is not None and parent.metaObject().className() in ("QDockWidget", "QTabBar",
                                                                                "QScrollBar", "QAbstractSpinBox"):
                    continue
                missing.append((type(widget).__name__, getattr(widget, "text", lambda: "")()))
    actions = [a for a in w.findChildren(type(w.play_action)) if a.text() and not a.toolTip()]
    assert not missing, missing
    assert not actions


def test_the_engine_imports_without_qt():
    code = ("import sys, engine, engine.cli, engine.stack, engine.session; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', 'pyqtgraph', 'app')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_gui_history_stays_bounded_and_draws_the_folded_part(open_window, qtbot, monkeypatch):
    from app import history

    monkeypatch.setattr(history, "KEEP", 512)
    w = open_window("tfp-circle")
    h = w.controller.history
    train_epochs(qtbot, w, 120)  # 20 steps an epoch: 2,400 steps, folded more than once at this KEEP
    assert h.step_loss.total == w.controller.snapshot.step and h.step_loss.n < 1024
    assert len(h.step_loss.folded) == 2 * h.step_loss.start // history.BUCKET
    w.curves.refresh()
    fx, fy = w.curves.folded_curve.xData, w.curves.folded_curve.yData  # the data set, not the drawn sample
    assert np.array_equal(fy, h.step_loss.folded)
    assert fx is not None and len(fx) == len(h.step_loss.folded) and fx.max() < h.step_x()[0]
    sx = w.curves.step_curve.xy()[0]
    assert sx[0] == pytest.approx(h.step_x()[0]) and len(sx) < 2 * 1024


def peaks(x0: float, dx: float, y: np.ndarray, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """The reference reduction (a one-shot pass, as the curves once did every frame): a series at x0, x0 + dx, … reduced to at most 2 × ``columns`` points: the min and max of each run of
    values that shares a pixel column, so the drawn line looks the same and costs the same at any length.
    NaNs are skipped unless a whole run is NaN (the gap then shows)."""
    n = len(y)
    per = max(1, -(-n // max(columns, 1)))  # values per column, rounded up
    if per <= 2:
        return x0 + dx * np.arange(n, dtype=np.float64), y
    whole = n - n % per
    with np.errstate(invalid="ignore"):
        block = y[:whole].reshape(-1, per)
        lo, hi = np.fmin.reduce(block, axis=1), np.fmax.reduce(block, axis=1)
    first = x0 + dx * per * np.arange(len(lo), dtype=np.float64)
    xs = np.stack([first, first + dx * (per - 1)], axis=1).ravel()
    ys = np.stack([lo, hi], axis=1).ravel()
    if whole < n:  # the newest values, not yet a full column, as they are
        xs = np.concatenate([xs, x0 + dx * np.arange(whole, n, dtype=np.float64)])
        ys = np.concatenate([ys, y[whole:]])
    return xs, ys


def test_the_step_curve_never_holds_more_points_than_pixel_columns():
    rng = np.random.default_rng(0)
    y = rng.normal(size=100_003)
    y[500] = np.nan
    x, r = peaks(10.0, 0.5, y, 1000)
    assert len(r) <= 2 * 1000 + 101  # full columns as (min, max), and the unfinished column as it is
    per = -(-len(y) // 1000)
    for c in (0, 5, len(y) // per - 1):  # each column keeps its extremes, at its first and last x
        block = y[c * per:(c + 1) * per]
        assert r[2 * c] == np.nanmin(block) and r[2 * c + 1] == np.nanmax(block)
        assert x[2 * c] == 10.0 + 0.5 * c * per and x[2 * c + 1] == 10.0 + 0.5 * ((c + 1) * per - 1)
    short_x, short_y = peaks(1.0, 1.0, y[:300], 1000)  # fewer values than columns: drawn as they are
    assert np.array_equal(short_y, y[:300]) and short_x[0] == 1.0


@pytest.mark.parametrize("per", [1, 3, 64])
def test_a_column_trace_fed_frame_by_frame_draws_what_one_reduction_would(qtbot, per):
    """The trace keeps its columns and extends them; whatever the frames' sizes, its line is the one-shot
    (min, max) reduction per column, the unfinished column included, and only the head moves between chunks."""
    import pyqtgraph as pg

    from app.views.plotting import ColumnTrace

    plot = pg.PlotItem()
    trace = ColumnTrace(plot, pg.mkPen("k"))
    rng = np.random.default_rng(per)
    y = rng.normal(size=5_000)
    y[77] = np.nan
    start = 128  # a series whose exact part starts later (a folded long run)
    cut, bodies = 0, set()
    while cut < len(y):
        cut = min(len(y), cut + int(rng.integers(1, 90)))
        trace.show(start, y[:cut], 0.5, 0.25, per, chunk=8)
        bodies.add(id(trace.body.yData))
        x, r = trace.xy()
        if per == 1:
            np.testing.assert_array_equal(r, y[:cut])
    full = (start + len(y)) // per * per - start  # the values in complete columns after the first
    first_full = -start % per
    ex, er = peaks(0.5 + 0.25 * (start + first_full), 0.25, y[first_full:full], (full - first_full) // per)
    x, r = trace.xy()
    if per > 1:  # the first column (partly before start), then the complete ones as one reduction would draw them
        body = slice(2 if first_full else 0, None)
        np.testing.assert_array_equal(r[body][:len(er)], er)
        np.testing.assert_array_equal(x[body][:len(ex)], ex)
        tail = y[full:]
        assert r[-2] == tail.min() and r[-1] == tail.max()  # the unfinished column, as (min, max)
    assert len(bodies) < len(y) / 90  # the body was set far less often than the frames came


def test_uneven_probe_series_are_reduced_per_pixel_column_too():
    from app.views.plotting import peaks_xy

    x = np.cumsum(np.random.default_rng(1).uniform(0.5, 3.0, size=50_000))
    y = np.sin(x / 100)
    rx, ry = peaks_xy(x, y, 500)
    assert len(rx) <= 2 * 500 and rx[0] == x[0] and rx[-1] == x[-1]
    assert ry.min() == y.min() and ry.max() == y.max()  # every extreme survives
    assert np.all(np.diff(rx) >= 0)


def test_a_running_span_matches_one_pass_over_the_whole_series():
    from app.views.plotting import RunningSpan

    y = np.random.default_rng(3).normal(size=3_000)
    y[10] = np.nan
    span = RunningSpan()
    for cut in (1, 7, 500, 2_000, 3_000):
        lo, hi = span.update("run", 0, y[:cut])
        assert (lo, hi) == (np.nanmin(y[:cut]), np.nanmax(y[:cut]))
    assert span.update("another run", 0, y[:5]) == (y[:5].min(), y[:5].max())  # a new run starts over
