"""The latent view in the window: a layer's activations drawn as points coloured by label (directly, by PCA or
by t-SNE run off the GUI thread), the input under the pointer, and an autoencoder decoding clicks and drags."""
from __future__ import annotations

import threading

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QObject, QPoint, QPointF, Qt, Slot
from PySide6.QtGui import QImage
from PySide6.QtTest import QTest

from app.views.latent import STRIP, Shown
from app.views.latent_parts import class_palette
from engine.datasets.registry import CLASS_RGB
from engine.presets import load_preset
from engine.projection import pca
from tests.app.helpers import train_epochs


def latent(open_window, qtbot, preset: str):
    """The window on ``preset`` with the Latent tab in front and its first points drawn."""
    w = open_window(preset)
    view = w.views["latent"]
    w.deck.tabs.setCurrentWidget(view)
    qtbot.waitUntil(lambda: view.shown is not None, timeout=20_000)
    return w, view


def embedding(w):
    return w.controller.snapshot.probes["embedding"].arrays


def scatter_xy(view) -> np.ndarray:
    x, y = view.scatter.getData()
    return np.stack([x, y], axis=1)


def plane_at(view, fx: float, fy: float) -> tuple[float, float]:
    """The plane position at shares (fx, fy) of the plot's ranges."""
    (x0, x1), (y0, y1) = view.plot.getPlotItem().getViewBox().viewRange()
    return x0 + fx * (x1 - x0), y0 + fy * (y1 - y0)


def on_screen(view, x: float, y: float) -> QPoint:
    """A plane position as a pixel of the plot's viewport."""
    box = view.plot.getPlotItem().getViewBox()
    return view.plot.mapFromScene(box.mapViewToScene(QPointF(x, y)))


def hover(qtbot, view, k: int) -> int:
    """Point at the k-th point drawn (again, until the view has settled its layout); the index pointed at."""
    def pointed() -> bool:
        QTest.mouseMove(view.plot.viewport(), on_screen(view, *view.xy[k]))
        return view._hover is not None
    qtbot.waitUntil(pointed)
    return view._hover


def grey(image: QImage) -> np.ndarray:
    img = image.convertToFormat(QImage.Format.Format_Grayscale8)
    return np.array([[img.pixelColor(x, y).value() for x in range(img.width())] for y in range(img.height())])


def test_a_2d_code_is_drawn_as_it_is_coloured_by_label_and_a_wider_layer_by_pca(open_window, qtbot):
    w, view = latent(open_window, qtbot, "digits-vae-2d")
    train_epochs(qtbot, w, 1)
    qtbot.waitUntil(lambda: view.shown.step == w.controller.snapshot.step)
    a = embedding(w)
    n = len(w.controller.trainer.data.y_test)
    assert a["points"].shape == (n, 2) and view.mode == "direct"
    np.testing.assert_allclose(scatter_xy(view), a["points"], rtol=1e-6)
    colours = np.array([b.color().getRgb()[:3] for b in view.scatter.data["brush"]])
    np.testing.assert_array_equal(colours, class_palette(10)[a["labels"]])
    assert view.layer.currentText() == "bottleneck: z"
    assert f"z: 2 wide · {n:,} test points" in view.caption.text()
    assert view.legend.text().count("●") == 10
    # the points are on screen in their colours: most classes' colours show up in the plot's pixels
    img = view.plot.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    px = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine())[:, :img.width() * 3]
    seen = {tuple(c) for c in px.reshape(-1, 3)[::3].tolist()}
    assert sum(tuple(c) in seen for c in class_palette(10).tolist()) >= 8

    view.layer.setCurrentIndex(view.layer.findData("encoder_2"))
    assert w.controller.probe_requests["embedding"].layer == "encoder_2"
    qtbot.waitUntil(lambda: view.shown.layer == "encoder_2")
    a = embedding(w)
    assert a["points"].shape == (n, 128) and view.mode == "pca"
    np.testing.assert_allclose(scatter_xy(view), a["pca"], rtol=1e-4, atol=1e-4)  # the probe projects
    signs = np.sign((a["pca"] * pca(a["points"]).points).sum(axis=0))  # PCA up to each axis' sign
    np.testing.assert_allclose(a["pca"] * signs, pca(a["points"]).points, rtol=1e-3, atol=1e-3)
    assert "encoder_2: 128 wide" in view.caption.text() and "PCA: PC1 " in view.caption.text()
    assert "choose it as the layer" in view.hint.text()  # decoding starts from the bottleneck only
    view.split.setCurrentIndex(view.split.findData("train"))
    qtbot.waitUntil(lambda: view.shown.split == "train")
    assert len(view.shown.rows) == len(w.controller.trainer.data.y_train)
    assert view.ui_state() == {"layer": "encoder_2", "split": "train", "projection": "pca"}
    # a session reopened with t-SNE chosen draws PCA until asked: no computation starts by itself
    view.apply_ui({"layer": None, "split": "test", "projection": "tsne"})
    qtbot.waitUntil(lambda: view.shown.layer == "z" and view.shown.split == "test")
    assert view.mode == "direct" and not view.tsne_running() and "press Run t-SNE" in view.caption.text()


def test_hovering_a_point_shows_its_picture_and_label(open_window, qtbot):
    w, view = latent(open_window, qtbot, "digits-vae-2d")
    k = hover(qtbot, view, 7)
    x = view.xy[k, 0]
    assert view.pointed.image is not None
    row = int(view.shown.rows[k])
    raw = w.controller.trainer.data.meta["raw_test"][row, 0]
    np.testing.assert_allclose(grey(view.pointed.image) / 255, raw, atol=1 / 255 + 1e-6)
    label = int(w.controller.trainer.data.y_test[row])
    assert view.pointed.caption == f"test #{row}: label {label}"
    assert view.ring.getData()[0].tolist() == [x]


def test_a_toy_classifier_s_embedding_layer_shows_class_colours_and_positions(open_window, qtbot):
    w, view = latent(open_window, qtbot, "spiral-embedding")
    a = embedding(w)
    assert str(a["layer"][0]) == "embedding" and view.mode == "direct"
    colours = {b.color().getRgb()[:3] for b in view.scatter.data["brush"]}
    assert colours == {CLASS_RGB[0], CLASS_RGB[1]}
    row = int(view.shown.rows[hover(qtbot, view, 3)])
    p = w.controller.trainer.data.points_test[row]
    assert f"(x₁, x₂) = ({p[0]:.2f}, {p[1]:.2f})" in view.pointed.caption
    assert not view.decoded.isVisible() and not view.strip.isVisible()  # a classifier has no decoder


def test_a_click_decodes_that_code_and_a_drag_the_line_between_two(open_window, qtbot):
    w, view = latent(open_window, qtbot, "digits-vae-2d")
    train_epochs(qtbot, w, 1)
    vp = view.plot.viewport()
    a, b = plane_at(view, 0.3, 0.3), plane_at(view, 0.7, 0.7)
    tol = 3 * max(view.plot.getPlotItem().getViewBox().viewPixelSize())  # a pixel's rounding, and some
    QTest.mouseClick(vp, Qt.MouseButton.LeftButton, pos=on_screen(view, *a))
    qtbot.waitUntil(lambda: view.decoded.image is not None)
    first = w.controller.snapshot.probes["decode"].arrays
    code = first["points"][0]
    np.testing.assert_allclose(code, a, atol=tol)  # the code under the pointer
    assert first["images"].shape == (1, 1, 8, 8) and view.decoded.image.size().toTuple() == (8, 8)
    np.testing.assert_allclose(grey(view.decoded.image) / 255, first["images"][0, 0], atol=1 / 255 + 1e-6)
    assert view.marks.getData()[0].tolist() == [float(code[0])]
    before = grey(view.decoded.image)

    QTest.mouseClick(vp, Qt.MouseButton.LeftButton, pos=on_screen(view, *b))
    qtbot.waitUntil(lambda: view.decoded.image is not None and view.asked.latent[0, 0] > code[0] + 5 * tol)
    after = grey(view.decoded.image)
    assert np.abs(after.astype(int) - before).max() > 20  # another code, another picture
    view._show_decoded(first)  # an answer to the earlier click arriving late is not shown for the new one
    np.testing.assert_array_equal(grey(view.decoded.image), after)

    pa, pb = on_screen(view, *a), on_screen(view, *b)
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, pos=pa)
    for t in np.linspace(0, 1, 6):
        QTest.mouseMove(vp, pa + (pb - pa) * t)
    assert view.segment.xData is not None and len(view.segment.xData) == 2  # the line follows the pointer
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=pb)
    qtbot.waitUntil(lambda: len(view.strip.images) == STRIP)
    codes = w.controller.snapshot.probes["decode"].arrays["points"]
    np.testing.assert_allclose(codes[[0, -1]], [a, b], atol=tol)
    np.testing.assert_allclose(np.diff(codes, axis=0), np.diff(codes, axis=0)[:1].repeat(STRIP - 1, 0), atol=1e-5)
    pictures = np.stack([grey(img) for img in view.strip.images])
    assert pictures.shape == (STRIP, 8, 8) and np.abs(pictures[0].astype(int) - pictures[-1]).max() > 20


def test_pca_clicks_decode_through_the_principal_plane(open_window, qtbot):
    w, view = latent(open_window, qtbot, "digits-vae-8d")
    assert view.mode == "pca" and view.shown.points.shape[1] == 8
    at = plane_at(view, 0.6, 0.4)
    QTest.mouseClick(view.plot.viewport(), Qt.MouseButton.LeftButton, pos=on_screen(view, *at))
    qtbot.waitUntil(lambda: view.decoded.image is not None)
    code = w.controller.snapshot.probes["decode"].arrays["points"][0]
    assert code.shape == (8,)
    proj = view.proj
    tol = 3 * max(view.plot.getPlotItem().getViewBox().viewPixelSize())
    np.testing.assert_allclose((code - proj.mean) @ proj.axes, at, atol=tol)  # back on the plane


def test_tsne_runs_in_the_background_and_its_map_stays(open_window, qtbot):
    w, view = latent(open_window, qtbot, "digits-vae-8d")
    n = len(view.shown.rows)
    view.run_tsne.click()
    assert view.progress.isVisible() and view.cancel.isVisible() and view.tsne_running()
    qtbot.waitUntil(lambda: view.tsne is not None, timeout=30_000)
    assert view.progress.value() == 100 and not view.progress.isVisible()
    assert view.mode == "tsne" and view.projection.currentData() == "tsne"
    xy = scatter_xy(view)
    assert xy.shape == (n, 2) and np.isfinite(xy).all()
    np.testing.assert_array_equal(xy, view.tsne.points)
    assert "t-SNE of step 0, kept until rerun" in view.caption.text()
    assert "cannot be inverted" in view.hint.text()
    QTest.mouseClick(view.plot.viewport(), Qt.MouseButton.LeftButton, pos=on_screen(view, *xy[0]))
    assert view.asked is None  # nothing decoded from a t-SNE map
    train_epochs(qtbot, w, 1)  # the map is kept while the network trains on
    np.testing.assert_array_equal(scatter_xy(view), view.tsne.points)
    view.projection.setCurrentIndex(view.projection.findData("pca"))
    assert view.mode == "pca" and "PC1" in view.caption.text()


class Answers(QObject):
    """Records what the t-SNE runner's jobs answered (a GUI-thread object, as the view's slots are)."""

    def __init__(self) -> None:
        super().__init__()
        self.got: list[object] = []
        self.threads: set[str] = set()

    @Slot(int, object)
    def take(self, job: int, points: object) -> None:
        self.got.append(points)
        self.threads.add(threading.current_thread().name)


def test_cancel_stops_tsne_and_goes_back_to_pca(open_window, qtbot):
    _w, view = latent(open_window, qtbot, "digits-vae-8d")
    answers = Answers()
    view.runner.finished.connect(answers.take)
    view.split.setCurrentIndex(view.split.findData("train"))  # more points: it runs long enough to cancel
    qtbot.waitUntil(lambda: view.shown.split == "train")
    view.run_tsne.click()
    qtbot.waitUntil(lambda: view.progress.value() > 0, timeout=20_000)
    view.cancel.click()
    qtbot.waitUntil(lambda: not view.tsne_running() and bool(answers.got), timeout=5_000)
    assert answers.got == [None]  # the computation itself stopped, with no map
    assert answers.threads == {threading.main_thread().name}  # delivered in the GUI thread, not the worker's
    assert view.tsne is None and view.mode == "pca" and view.projection.currentData() == "pca"
    assert not view.progress.isVisible() and "t-SNE cancelled" in view.caption.text()


def test_a_new_run_cancels_the_tsne_of_the_old_one(open_window, qtbot):
    w, view = latent(open_window, qtbot, "digits-vae-8d")
    answers = Answers()
    view.runner.finished.connect(answers.take)
    view.split.setCurrentIndex(view.split.findData("train"))
    qtbot.waitUntil(lambda: view.shown.split == "train")
    view.run_tsne.click()
    qtbot.waitUntil(lambda: view.progress.value() > 0, timeout=20_000)
    w.controller.reset()
    qtbot.waitUntil(lambda: not view.tsne_running() and bool(answers.got), timeout=5_000)
    assert answers.got == [None] and view.tsne is None and not view.progress.isVisible()
    qtbot.waitUntil(lambda: view.shown is not None and view.shown.split == "train")  # the new run drawn


@pytest.mark.parametrize("behind", [False, True], ids=["in front", "behind another tab"])
def test_closing_the_window_while_tsne_runs_ends_its_thread(open_window, qtbot, behind):
    w, view = latent(open_window, qtbot, "digits-vae-8d")
    view.split.setCurrentIndex(view.split.findData("train"))
    qtbot.waitUntil(lambda: view.shown.split == "train")
    view.run_tsne.click()
    qtbot.waitUntil(lambda: view.progress.value() > 0, timeout=20_000)
    threads = list(view.runner._threads)
    assert any(t.is_alive() for t in threads)
    if behind:  # a tab out of sight gets no hide event when the window closes
        w.tabs.setCurrentWidget(w.editor)
        assert not view.isVisible() and any(t.is_alive() for t in threads)
    w.controller.set_modified(False)
    w.close()
    assert not any(t.is_alive() for t in threads)  # cancelled and waited for before the window went


def test_ten_thousand_points_move_in_place_keeping_their_brushes(open_window, qtbot):
    _w, view = latent(open_window, qtbot, "digits-vae-8d")
    rng = np.random.default_rng(0)
    n = 10_000
    points = rng.normal(size=(n, 64)).astype(np.float32) * np.linspace(3, 0.5, 64, dtype=np.float32)
    labels = rng.integers(0, 10, n)
    view.shown = Shown(points, np.arange(n), labels, "x", "test", 0)
    view._probe_proj = first_proj = pca(points, 2)  # as the embedding probe projects them
    view._place()
    brushes = view.scatter.data["brush"].copy()
    assert len(brushes) == n and len({id(b) for b in brushes}) == 10  # one shared brush per class
    first = scatter_xy(view)
    view.shown = Shown(points * 2, np.arange(n), labels, "x", "test", 1)
    view._probe_proj = pca(points * 2, 2, previous=first_proj)
    view._place()
    np.testing.assert_allclose(scatter_xy(view), 2 * first, rtol=1e-4, atol=1e-4)  # PCA again, same signs
    assert all(a is b for a, b in zip(view.scatter.data["brush"], brushes, strict=True))
    assert isinstance(view.scatter, pg.ScatterPlotItem) and len(view.scatter.points()) == n


def test_another_network_drops_requests_that_would_not_fit_it(open_window, qtbot):
    w, view = latent(open_window, qtbot, "digits-vae-2d")
    QTest.mouseClick(view.plot.viewport(), Qt.MouseButton.LeftButton, pos=on_screen(view, *plane_at(view, 0.5, 0.5)))
    qtbot.waitUntil(lambda: view.decoded.image is not None)  # a 2-value code asked of the decoder
    w.controller.load(load_preset("digits-vae-8d"))  # whose code has 8
    qtbot.waitUntil(lambda: view.shown is not None and view.shown.points.shape[1] == 8)
    assert view.mode == "pca" and view.asked is None and view.decoded.image is None
    QTest.mouseClick(view.plot.viewport(), Qt.MouseButton.LeftButton, pos=on_screen(view, *plane_at(view, 0.5, 0.5)))
    qtbot.waitUntil(lambda: view.decoded.image is not None)  # an 8-value code of block z
    view.layer.setCurrentIndex(view.layer.findData("logvar"))
    qtbot.waitUntil(lambda: view.shown.layer == "logvar")
    w.controller.load(load_preset("digits-ae-2d"))  # no block of either name
    qtbot.waitUntil(lambda: view.shown is not None and view.shown.layer == "code")
    assert view.layer.currentData() is None and view.layer.currentText() == "bottleneck: code"
