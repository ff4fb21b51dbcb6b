"""The Attention and Positional views, drawn from real probes of short real training runs: small maps per layer
and head holding the probe's weights, the enlarged map following a click, the example and set asked of the
probe, an encoder–decoder's sources, a vision transformer's overlay, and the positional table."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from app.views.attention import AttentionView, has_attention
from app.views.attention_parts import class_heat, overlay_rgba
from app.views.positional import PositionalView, has_positional
from engine.check import parse_spec
from engine.ops import OPS
from engine.ops.sequence import sinusoids
from tests.app.helpers import train_epochs
from tests.engine.test_attention_probe import transformer_seq2seq, vit
from tests.engine.test_sequence_core import encoder, session


def open_spec(open_window, tmp_path, spec: dict):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    return open_window(str(path))


def attach(qtbot, w, cls, size=(1000, 520)):
    """One of these views on the window's controller, shown as its own window."""
    view = cls(w.controller)
    qtbot.addWidget(view)
    view.resize(*size)
    view.show()
    qtbot.waitExposed(view)
    return view


def arrays(w, name: str) -> dict[str, np.ndarray]:
    return w.controller.snapshot.probes[name].arrays


def drawn(view: AttentionView, a: dict[str, np.ndarray], key: str = "weights") -> bool:
    """Every small map holds its (layer, head) of the probe's weights."""
    return bool(view.grid.images) and all(
        img.image is not None and np.array_equal(img.image, a[key][li, h]) for (li, h), img in view.grid.images.items())


def dark_share(widget) -> float:
    img = widget.grab().toImage()
    pts = [(x, y) for x in range(0, img.width(), 4) for y in range(0, img.height(), 4)]
    return sum(img.pixelColor(x, y).lightness() < 60 for x, y in pts) / len(pts)


def test_the_reverse_transformer_shows_every_head_and_enlarges_the_clicked_one(open_window, tmp_path, qtbot):
    spec = session(encoder())
    w = open_spec(open_window, tmp_path, spec)
    assert has_attention(parse_spec(spec)) and has_positional(parse_spec(spec))
    view = attach(qtbot, w, AttentionView)
    c = w.controller
    qtbot.waitUntil(lambda: "attention" in c.snapshot.probes and drawn(view, arrays(w, "attention")), timeout=10_000)
    before = arrays(w, "attention")["weights"].copy()
    train_epochs(qtbot, w, 2)
    qtbot.waitUntil(lambda: drawn(view, arrays(w, "attention")), timeout=10_000)
    a = arrays(w, "attention")
    assert not np.allclose(a["weights"], before)  # it follows training
    assert set(view.grid.images) == {(0, 0), (0, 1), (0, 2), (0, 3)}
    names = list(c.run_info.data.meta["tokens"])
    tokens = [names[int(t)] for t in c.run_info.data.x_test[0]]
    assert view.grid.labels == (tuple(tokens), tuple(tokens))  # query rows and key columns named by token
    assert [lab for _, lab in view.big.plot.getAxis("bottom")._tickLevels[0]] == tokens
    assert view.grid.plots[0, 1].titleLabel.text == "block_1 · head 2"
    np.testing.assert_array_equal(view.big.matrix.image, a["weights"][0, 0])
    assert dark_share(view.grid) > 0.1  # maps drawn (inferno is dark at small weights), not a blank panel

    plot = view.grid.plots[0, 2]
    at = view.grid.mapFromScene(plot.vb.sceneBoundingRect().center())
    qtbot.mouseClick(view.grid.viewport(), Qt.MouseButton.LeftButton, pos=at)
    assert view.grid.selected == (0, 2)
    np.testing.assert_array_equal(view.big.matrix.image, a["weights"][0, 2])
    assert "block_1 · head 3" in view.caption.text()
    view._on_hover(3.5, 1.5)  # row 1, column 3 of the enlarged map
    assert view.readout.text() == f"query step 1 “{tokens[1]}” → key step 3 “{tokens[3]}”: {a['weights'][0, 2, 1, 3]:.3f}"

    view.example.setValue(5)
    assert c.probe_requests["attention"].sample == 5
    qtbot.waitUntil(lambda: int(arrays(w, "attention")["sample"]) == 5 and drawn(view, arrays(w, "attention")),
                    timeout=10_000)
    assert view.grid.labels[0] == tuple(names[int(t)] for t in c.run_info.data.x_test[5])
    assert view.caption.text().startswith("Test example 5")
    assert view.split.isVisible() and view.split.count() == 2 and not view.source.isVisible()
    view.split.setCurrentIndex(view.split.findData("long"))
    assert c.probe_requests["attention"].split == "long" and view.example.maximum() == 99
    qtbot.waitUntil(lambda: view.big.matrix.image is not None and view.big.matrix.image.shape == (12, 12),
                    timeout=10_000)
    assert view.grid.selected == (0, 2) and view.caption.text().startswith("Longer held-out example 5")
    assert view.ui_state() == {"matrix": False, "split": "long", "source": "encoder"}
    view.close()


def test_the_positional_view_draws_the_sinusoid_table_and_says_so(open_window, tmp_path, qtbot):
    w = open_spec(open_window, tmp_path, session(encoder()))
    view = attach(qtbot, w, PositionalView, (420, 380))
    qtbot.waitUntil(lambda: view.image.image is not None, timeout=10_000)
    np.testing.assert_array_equal(view.image.image, sinusoids(12, 32).numpy())  # to the longer set's 12 steps
    assert np.array_equal(view.image.image, arrays(w, "positional")["table"])
    text = view.caption.text()
    assert "sinusoidal table, 12 positions × 32 dimensions" in text and "fixed" in text
    assert view.plot.getAxis("left").labelText == "position t ↓"
    assert view.plot.getAxis("bottom").labelText == "dimension →"
    assert not view.node.isVisible()  # one positional block: nothing to choose
    assert dark_share(view.widget) < 0.5 and view.widget.isVisible()
    view._on_mouse(view.plot.vb.mapViewToScene(QPointF(10.5, 3.5)))  # hover dimension 10 of position 3
    assert view.readout.text() == f"position 3, dimension 10: {view.image.image[3, 10]:+.3f}"
    view.close()


def test_no_positional_encoding_is_a_clear_message(open_window, tmp_path, qtbot):
    w = open_spec(open_window, tmp_path, session(encoder(positional="none")))
    view = attach(qtbot, w, PositionalView, (420, 380))
    qtbot.waitUntil(lambda: "adds no position" in view.caption.text(), timeout=10_000)
    assert "cannot tell their order apart" in view.caption.text() and not view.widget.isVisible()


def test_an_encoder_decoder_offers_its_decoder_and_cross_attention(open_window, tmp_path, qtbot):
    w = open_spec(open_window, tmp_path, session(transformer_seq2seq()))
    view = attach(qtbot, w, AttentionView)
    positional = attach(qtbot, w, PositionalView, (420, 380))
    train_epochs(qtbot, w, 1)
    qtbot.waitUntil(lambda: view.source.count() == 3 and drawn(view, arrays(w, "attention")), timeout=10_000)
    assert view.source.isVisible()
    assert [view.source.itemData(i) for i in range(3)] == ["encoder", "decoder", "cross"]
    view.source.setCurrentIndex(1)
    a = arrays(w, "attention")
    assert drawn(view, a, "decoder_weights") and set(view.grid.images) == {(0, 0), (0, 1)}
    big = view.big.matrix.image
    assert np.all(big[np.triu_indices(8, 1)] == 0) and big[0, 0] == pytest.approx(1.0)  # causal
    assert view.grid.labels[0][0] == "▶"  # the decoder reads ▶ then the answer so far
    view.source.setCurrentIndex(2)
    assert drawn(view, a, "cross_weights") and len(view.grid.images) == 4
    assert view.big.plot.getAxis("bottom").labelText == "key step (encoder input) →"
    assert positional.node.isVisible() and positional.node.count() == 2
    positional.node.setCurrentIndex(1)
    assert "learned table, 12 positions × 32 dimensions" in positional.caption.text()
    np.testing.assert_array_equal(positional.image.image, arrays(w, "positional")["table_1"])
    view.close()
    positional.close()


@pytest.mark.skipif("patch_embedding" not in OPS, reason="the patch_embedding op (engine/ops/vision.py) is not there yet")
def test_a_vision_transformer_lays_the_class_tokens_attention_over_the_picture(open_window, tmp_path, qtbot):
    spec = {"dataset": {"kind": "images", "name": "shapes", "samples": 400}, "model": vit(), "loss": "cross_entropy",
            "optimizer": {"kind": "adam", "lr": 0.003}, "training": {"batch_size": 32}}
    w = open_spec(open_window, tmp_path, spec)
    view = attach(qtbot, w, AttentionView)
    train_epochs(qtbot, w, 1)
    qtbot.waitUntil(lambda: drawn(view, arrays(w, "attention")) and view.big.overlay.image is not None,
                    timeout=10_000)
    a = arrays(w, "attention")
    assert len(view.grid.images) == 4 + 2  # block_1's 4 heads, block_2's 2
    assert view.big.overlay.image.shape == (28, 28, 4) and view.big.overlay.isVisible()
    np.testing.assert_array_equal(view.big.picture.image, a["image"])
    assert view.grid.selected == (1, 0)  # a new network starts on its last layer
    expected, top = overlay_rgba(class_heat(a["weights"][1, 0], (4, 4), True), (28, 28))
    np.testing.assert_array_equal(view.big.overlay.image, expected)
    assert top == pytest.approx(float(a["weights"][1, 0, 0, 1:].max()))
    assert "class token's attention over the 4×4 patches" in view.caption.text()
    assert view.caption.text().startswith(f"Test example 0 (label {view.class_name(int(a['target']))})")
    w.controller.select_sample(7)  # a picture picked in the Samples view is the one shown
    assert view.example.value() == 7 and w.controller.probe_requests["attention"].sample == 7
    view.matrix.setChecked(True)
    assert not view.big.overlay.isVisible() and view.big.matrix.isVisible()
    assert view.big.matrix.image.shape == (17, 17)
    view.close()
