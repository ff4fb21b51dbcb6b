"""The Latent view on a sequence network: its embedding block drawn as the token table, one labelled point per
token on the tokens probe's principal plane, and the chosen token's nearest tokens marked and listed, live while
a real reverse-task transformer trains."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest

from app.views.latent_tokens import CHOSEN, NEAR, readable
from tests.app.helpers import train_epochs
from tests.engine.test_token_embeddings import reverse_spec


@pytest.fixture
def reverse_file(tmp_path):
    path = tmp_path / "reverse.json"
    path.write_text(json.dumps(reverse_spec()), encoding="utf-8")
    return str(path)


def tokens(w) -> dict[str, np.ndarray]:
    return w.controller.snapshot.probes["tokens"].arrays


def drawn(view, w) -> bool:
    """The view shows the latest tokens probe."""
    snap = w.controller.snapshot
    return snap is not None and "tokens" in snap.probes and view.tokens.arrays is tokens(w)


def text_positions(view) -> np.ndarray:
    return np.array([[t.pos().x(), t.pos().y()] for t in view.tokens.texts])


def ring(item) -> np.ndarray:
    x, y = item.getData()
    return np.stack([x, y], axis=1)


def test_the_embedding_block_is_drawn_as_its_labelled_token_table(open_window, qtbot, reverse_file, tmp_path):
    w = open_window(reverse_file)
    c, view = w.controller, w.views["latent"]
    w.deck.tabs.setCurrentWidget(view)
    qtbot.waitUntil(view.showing)
    # a sequence set: the vocabulary first, and chosen by default
    assert view.layer.currentData() == "embedding" and view.layer.itemText(0) == "embedding: token table"
    assert view.tokens.active and view.tokens.panel.isVisible() and not view.settings.isVisible()
    assert not view.scatter.isVisible() and not view.legend.isVisible()
    assert c.probe_requests["tokens"].layer == "embedding"
    assert c.probe_requests["embedding"].samples == (0, 1)  # the samples' points are not drawn meanwhile
    train_epochs(qtbot, w, 2)
    qtbot.waitUntil(lambda: drawn(view, w), timeout=10_000)
    a = tokens(w)
    names = a["names"].tolist()
    assert names == list(w.controller.run_info.data.meta["tokens"]) and len(names) == 10
    # every token named at its point on the probe's plane
    texts = [t.toPlainText() for t in view.tokens.texts]
    assert texts == readable(a["names"]) and [t.split(" ")[0] for t in texts] == names
    assert texts[0] == "· blank" and texts[-1] == "▶ start" and all(t.isVisible() for t in view.tokens.texts)
    np.testing.assert_allclose(text_positions(view), a["pca"], rtol=1e-6)
    np.testing.assert_allclose(ring(view.tokens.points), a["pca"], rtol=1e-6)
    assert view.caption.text().startswith("embedding: 10 tokens × 32 numbers · PCA: PC1 ")
    assert view.plot.getAxis("bottom").labelText == "PC1"

    # the chosen token (default "a") and its nearest tokens, as the probe ranks them
    assert view.tokens.combo.currentData() == 1 and view.tokens.combo.count() == 10
    view.tokens.combo.setCurrentIndex(4)  # "d"
    t, near, sims = 4, a["nearest"][4], a["similarity"][4]
    np.testing.assert_allclose(ring(view.tokens.chosen), a["pca"][[t]], rtol=1e-6)
    np.testing.assert_allclose(ring(view.tokens.near), a["pca"][near], rtol=1e-6)
    scores = [s for s in view.tokens.scores if s.isVisible()]
    assert [s.toPlainText() for s in scores] == [f"{v:+.2f}" for v in sims]
    np.testing.assert_allclose([[s.pos().x(), s.pos().y()] for s in scores], a["pca"][near], rtol=1e-6)
    lines = np.stack([view.tokens.lines.xData, view.tokens.lines.yData], axis=1).reshape(-1, 3, 2)
    np.testing.assert_allclose(lines[:, 0], np.repeat(a["pca"][[t]], len(near), axis=0), rtol=1e-6)
    np.testing.assert_allclose(lines[:, 1], a["pca"][near], rtol=1e-6)
    bold = [i for i, text in enumerate(view.tokens.texts) if text.textItem.font().bold()]
    assert sorted(bold) == sorted([t, *near.tolist()])
    listing = view.tokens.listing.text()
    assert "nearest to" in listing and ">d<" in listing
    for j, s in zip(near.tolist(), sims.tolist(), strict=True):
        assert f"{escape_name(readable(a['names'])[j])}</b></td><td align='right'>{s:+.2f}" in listing

    # a click on a token in the plane chooses it
    target = int(near[-1])
    box = view.plot.getPlotItem().getViewBox()
    at = view.plot.mapFromScene(box.mapViewToScene(QPointF(*a["pca"][target])))
    QTest.mouseClick(view.plot.viewport(), Qt.MouseButton.LeftButton, pos=at)
    assert view.tokens.combo.currentData() == target
    np.testing.assert_allclose(ring(view.tokens.chosen), a["pca"][[target]], rtol=1e-6)
    state = view.ui_state()
    assert state["nearest"] == target and state["layer"] == "embedding"
    view.tokens.combo.setCurrentIndex(2)
    view.apply_ui(state)  # the session file's choice comes back
    assert view.tokens.combo.currentData() == target and view.tokens.combo.currentText() == texts[target]

    # live: training moves the table, and the labels follow the new plane
    before = a["pca"].copy()
    train_epochs(qtbot, w, 1)
    qtbot.waitUntil(lambda: drawn(view, w) and tokens(w) is not a, timeout=10_000)
    b = tokens(w)
    assert not np.allclose(b["pca"], before)
    np.testing.assert_allclose(text_positions(view), b["pca"], rtol=1e-6)
    np.testing.assert_allclose(ring(view.tokens.near), b["pca"][b["nearest"][target]], rtol=1e-6)
    image = view.grab().toImage()
    image.save(str(tmp_path / "latent_tokens.png"))
    rgb = np.array([[image.pixelColor(x, y).getRgb()[:3] for x in range(0, image.width(), 2)]
                    for y in range(0, image.height(), 2)])
    for colour in (CHOSEN, NEAR):  # the chosen token's ring and label, its neighbours' rings, lines and labels
        assert (np.abs(rgb - colour).sum(axis=2) < 40).sum() > 20

    # another block: its samples' points again, the table put away
    view.layer.setCurrentIndex(view.layer.findData("block_1"))
    assert c.probe_requests["embedding"].samples is None and c.probe_requests["embedding"].layer == "block_1"
    qtbot.waitUntil(lambda: view.shown is not None and view.shown.layer == "block_1", timeout=10_000)
    assert view.scatter.isVisible() and view.settings.isVisible() and not view.tokens.panel.isVisible()
    assert not any(t.isVisible() for t in view.tokens.texts) and not view.tokens.points.isVisible()
    assert len(view.scatter.data) == len(w.controller.run_info.data.y_test)
    view.layer.setCurrentIndex(view.layer.findData(None))  # the bottleneck named, the table's entry kept
    qtbot.waitUntil(lambda: view.layer.currentText() == "bottleneck: norm", timeout=10_000)
    assert view.layer.itemText(0) == "embedding: token table"
    view.layer.setCurrentIndex(0)
    qtbot.waitUntil(lambda: drawn(view, w), timeout=10_000)
    assert view.tokens.points.isVisible() and view.tokens.combo.currentData() == target


def escape_name(name: str) -> str:
    return name.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def test_networks_without_an_embedding_show_no_token_table(open_window, qtbot):
    w = open_window("tfp-circle")
    view = w.views["latent"]
    w.deck.tabs.setCurrentWidget(view)
    qtbot.waitUntil(lambda: view.shown is not None, timeout=20_000)
    assert "tokens" not in w.controller.run_info.probes and not view.tokens.active
    assert not view.tokens.panel.isVisible() and view.settings.isVisible() and view.scatter.isVisible()
    assert view.layer.itemText(0).startswith("bottleneck") and "nearest" not in view.ui_state()
