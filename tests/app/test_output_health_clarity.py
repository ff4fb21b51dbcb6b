"""The Output and Health views read clearly (issue 12): points stand out on any boundary, a hovered neuron's map
shows in the big plot, the plane fills its plot without clipped labels, and the Health tab's parts never overlap
and tell layers apart."""
from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest
from PySide6.QtGui import QImage

from app.colors import (
    CLASS_COLORS,
    LAYER_COLORS,
    LIGHT_DIVERGING,
    NEGATIVE,
    POSITIVE,
    label_colors,
    neuron_rgb,
    output_rgb,
)
from app.views.output import resample
from engine.stack import from_model, with_stack
from tests.app.helpers import train_epochs


def luminance(rgb: np.ndarray) -> np.ndarray:
    """WCAG relative luminance of sRGB colours (…, 3) in 0‥255."""
    c = np.asarray(rgb, dtype=np.float64) / 255
    c = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return c @ np.array([0.2126, 0.7152, 0.0722])


def lab(rgb: np.ndarray) -> np.ndarray:
    """CIE L*a*b* (D65) of sRGB colours (…, 3) in 0‥255: distances in it track how different colours look."""
    c = np.asarray(rgb, dtype=np.float64) / 255
    c = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = c @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]).T
    f = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(f > 0.008856, np.cbrt(f), 7.787 * f + 16 / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def pixels(widget) -> np.ndarray:
    img = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    arr = np.frombuffer(img.constBits(), dtype=np.uint8).reshape(img.height(), img.bytesPerLine())
    return arr[:, :img.width() * 3].reshape(img.height(), img.width(), 3).copy()


def brush_colours(item) -> np.ndarray:
    return np.array([b.color().getRgb()[:3] for b in item.data["brush"]])


@pytest.mark.parametrize(("output", "activation", "task"), [
    (np.array([[[-1.0, 1.0]]]), "tanh", "classification"),
    (np.array([[[0.0, 1.0]]]), "sigmoid", "classification"),
    (np.array([[[1.0, 0.0]], [[0.0, 1.0]]]), "softmax", "classification"),
    (np.array([[[-1.0, 1.0]]]), "linear", "regression"),
])
def test_the_map_is_lighter_than_the_points_of_the_same_value(output, activation, task):
    """A saturated map (one class everywhere) still leaves that class's points visible: the map is the point colour
    painted lighter, as TensorFlow Playground does."""
    for discretize in (False, True):
        background = output_rgb(output, activation, discretize)[0]  # (2, 3): the map at "class 0" and "class 1"
        points = label_colors(np.array([0, 1]) if task == "classification" else np.array([-1.0, 1.0]), task)
        assert (luminance(background) > luminance(points) + 0.1).all()
        # the same hue, lighter: each channel moves toward white, none away from it
        assert (background.astype(int) >= points.astype(int)).all()
        assert (np.linalg.norm(lab(background) - lab(points), axis=-1) > 15).all()


def test_points_are_full_colour_with_a_dark_outline_and_test_points_differ(open_window):
    w = open_window("tfp-circle")
    out = w.output
    y = w.controller.trainer.data.y_train
    np.testing.assert_array_equal(brush_colours(out.train_points), CLASS_COLORS[y].astype(int))
    assert {NEGATIVE, POSITIVE} == {tuple(c) for c in brush_colours(out.train_points)}
    outline = out.train_points.opts["pen"].color().getRgb()[:3]
    assert luminance(np.array(outline)) < 0.05  # dark on both the light orange and the light blue
    # the map on screen is drawn from the lightened scale only, whose ends are lighter than the two classes' points
    assert {tuple(p) for p in out.rgb.reshape(-1, 3)} <= {tuple(c) for c in LIGHT_DIVERGING}
    assert (luminance(LIGHT_DIVERGING[[0, -1]]) > luminance(np.array([NEGATIVE, POSITIVE])) + 0.1).all()
    # test points: another marker, which the option's tooltip names
    assert out.test_points.opts["symbol"] != out.train_points.opts["symbol"]
    assert "diamond" in out.show_test.toolTip() and "circle" in out.show_test.toolTip()


def test_regression_points_keep_full_colour_over_a_lighter_surface(open_window, qtbot):
    w = open_window("plane")
    run = w.controller.run_info
    assert run.task == "regression"
    train_epochs(qtbot, w, 1)
    points = brush_colours(w.output.train_points)
    np.testing.assert_array_equal(points, label_colors(run.data.y_train, "regression").astype(int))
    extremes = label_colors(np.array([-1.0, 1.0]), "regression")
    surface = output_rgb(np.array([[[-1.0, 1.0]]]), run.output_activation)[0]
    assert (luminance(surface) > luminance(extremes) + 0.1).all()
    assert luminance(w.output.rgb.reshape(-1, 3)).min() > luminance(extremes).min()


def test_resample_is_exact_at_the_samples_and_linear_between():
    ramp = np.add.outer(np.arange(4.0), 2 * np.arange(4.0))  # (4, 4), linear in both axes
    big = resample(ramp, 10)
    assert big.shape == (10, 10)
    np.testing.assert_allclose(big, np.add.outer(np.linspace(0, 3, 10), 2 * np.linspace(0, 3, 10)), atol=1e-5)
    np.testing.assert_allclose(resample(ramp, 4), ramp, atol=1e-6)
    nan = ramp.copy()
    nan[1, 1] = np.nan
    assert np.isfinite(resample(nan, 10)).all()  # one NaN does not blank its rows and columns


def test_focusing_a_neuron_draws_its_map_and_clearing_draws_the_output(open_window, qtbot):
    w = open_window("tfp-circle")  # the Network tab shows: the trainer computes the neurons probe
    c, out = w.controller, w.output
    train_epochs(qtbot, w, 2)
    snap = c.snapshot
    assert "neurons" in snap.probes
    output = out.rgb.copy()
    np.testing.assert_array_equal(output, output_rgb(snap.probes["boundary"].arrays["output"], "tanh"))
    acts = snap.probes["neurons"].arrays["dense_1"][2]
    g = snap.probes["boundary"].arrays["output"].shape[-1]
    c.set_focus(("dense_1", 2))  # paused: drawn at once, without a new frame
    expected = neuron_rgb(resample(acts, g))
    np.testing.assert_array_equal(out.rgb, expected)
    np.testing.assert_array_equal(out.image.image, expected)
    assert (out.rgb != output).any(axis=-1).mean() > 0.05  # a different picture from the output
    np.testing.assert_array_equal(out.rgb[[0, 0, -1, -1], [0, -1, 0, -1]],  # the corners are samples, not blends
                                  neuron_rgb(acts)[[0, 0, -1, -1], [0, -1, 0, -1]])
    assert out.caption.isVisible() and out.caption.toPlainText().startswith("neuron 3 of dense_1")
    c.set_focus(("input", 0))  # a feature hovered: its values over the plane, named by its label
    np.testing.assert_array_equal(out.rgb, neuron_rgb(resample(snap.probes["neurons"].arrays["input"][0], g)))
    assert out.caption.toPlainText().startswith("feature x₁")
    out.discretize.setChecked(True)
    assert len(np.unique(out.rgb.reshape(-1, 3), axis=0)) <= 3
    out.discretize.setChecked(False)
    c.set_focus(None)
    np.testing.assert_array_equal(out.rgb, output)
    assert not out.caption.isVisible()


def test_a_focus_without_the_neurons_probe_keeps_the_output(open_window, qtbot):
    w = open_window("tfp-circle")
    c, out = w.controller, w.output
    w.tabs.setCurrentWidget(w.editor)  # the Network view hides: nobody asks for the neurons probe
    qtbot.waitUntil(lambda: "neurons" not in c.wanted)
    train_epochs(qtbot, w, 1)
    assert "neurons" not in c.snapshot.probes
    output = out.rgb.copy()
    c.set_focus(("dense_1", 0))
    np.testing.assert_array_equal(out.rgb, output)
    assert not out.caption.isVisible()
    c.set_focus(("no_such_layer", 0))
    np.testing.assert_array_equal(out.rgb, output)


def test_the_plane_is_square_fills_its_axes_and_no_label_is_clipped(open_window, qtbot):
    w = open_window("tfp-circle")
    out = w.output
    holder = out.plot.parentWidget()
    extent = [float(v) for v in w.controller.snapshot.probes["boundary"].arrays["extent"]]
    for size in (None, (220, 180), (900, 500), (300, 800)):  # the default dock, then small, wide and tall ones
        if size is not None:
            holder.resize(*size)
            holder.setFixedSize(*size)
            qtbot.waitUntil(lambda: abs(out.plot.getViewBox().width() - out.plot.getViewBox().height()) <= 1)
        vb = out.plot.getViewBox()
        assert abs(vb.width() - vb.height()) <= 1 and vb.width() > 60
        x_range, y_range = vb.viewRange()
        np.testing.assert_allclose(x_range, extent, atol=0.02 * (extent[1] - extent[0]))  # no band past the data
        np.testing.assert_allclose(y_range, extent, atol=0.02 * (extent[1] - extent[0]))
        geo = out.plot.geometry()
        assert geo.left() >= 0 and geo.top() >= 0 and geo.right() < holder.width() and geo.bottom() < holder.height()
        img = pixels(out.plot)
        edges = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
        assert (edges == 255).all(), "something is drawn at the plot's edge: a tick label is clipped there"
        ticks = out.plot.getPlotItem().getAxis("left").tickValues(*y_range, vb.height())
        assert any(np.isclose(extent[1], v) for _spacing, vs in ticks for v in vs)  # the top label is shown


def test_health_palette_tells_layers_apart():
    colours = np.array(LAYER_COLORS)
    assert len(colours) >= 8
    for a, b in itertools.combinations(lab(colours), 2):
        assert np.linalg.norm(a - b) > 20  # CIE76 ΔE: > 20 reads as clearly different at a glance
    assert (luminance(colours) < 0.75).all()  # none fades into the white plot


def test_health_parts_never_overlap_and_the_key_is_outside_the_curves(open_window, qtbot):
    w = open_window("tfp-circle")
    w.docks["Health"].raise_()
    h = w.health
    qtbot.waitUntil(lambda: h.showing() and bool(h.grad_curves))
    train_epochs(qtbot, w, 2)
    nodes = [n for n in w.controller.run_info.order if w.controller.run_info.nodes[n].n_params > 0]
    assert h.grad_plot.legend is None  # no key drawn over the curves
    assert all(n in h.legend.text() for n in nodes)
    pens = [h.grad_curves[n].pen().color().getRgb()[:3] for n in nodes]
    assert pens == [LAYER_COLORS[i] for i in range(len(nodes))]
    assert all(h.grad_curves[n].pen().color().alpha() == 255 for n in nodes)  # opaque: cheap to stroke
    # tanh only: the dead-unit plot gives its room to the others and a note says why, in full
    note = h.dead_note
    assert note.isVisible() and not h.dead_plot.getViewWidget().isVisible()
    assert note.fontMetrics().horizontalAdvance(note.text()) <= note.contentsRect().width()
    shown = [wd for wd in h.findChildren(type(note)) + [p.getViewWidget() for p in (h.grad_plot, h.hist_plot)]
             if wd.isVisible()]
    rects = [wd.geometry() for wd in shown if wd.parentWidget() is h]
    assert len(rects) >= 5
    for a, b in itertools.combinations(rects, 2):
        assert not a.intersects(b), (a, b)
    for p in (h.grad_plot, h.hist_plot):
        assert p.getViewWidget().height() >= 60 and p.vb.height() >= 30
    # ReLU layers: the dead-unit plot comes back in the note's place
    spec = w.controller.spec
    stack = from_model(spec.model)
    assert w.apply_spec(with_stack(spec, replace(stack, layers=tuple(replace(x, activation="relu")
                                                                       for x in stack.layers))))
    train_epochs(qtbot, w, 2)
    assert not note.isVisible() and h.dead_plot.getViewWidget().isVisible()
    assert h.dead_plot.getViewWidget().height() >= 60
