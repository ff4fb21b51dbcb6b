"""The sequence views in the window, drawn from real probes and history of training sequence networks: the
predictions' cells (input, target, the answer coloured right or wrong), their set and decoding controls, and the
per-epoch token and exact-sequence accuracy curves on the test set and the longer held-out set."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PySide6.QtCore import QPointF

from app.views.sequence_curves import SERIES, SequenceCurvesView
from app.views.sequence_predictions import SHOWN, SequencePredictionsView, token_colours, verdict_colour
from engine.probes import ProbeRequest
from tests.app.helpers import train_epochs
from tests.engine.test_sequence_core import chain, encoder, node, seq2seq, session


@pytest.fixture
def spec_file(tmp_path):
    def write(data: dict) -> str:
        path = tmp_path / "spec.json"
        path.write_text(json.dumps(data))
        return str(path)
    return write


def brackets() -> dict:
    model = chain(node("input", "input"), node("embedding", "embedding", vocab=10, dim=16),
                  node("rnn", "gru", hidden=32, output="last"), node("dense", "dense", units=2),
                  node("output", "output", activation="softmax"))
    return {**session(model, "brackets"), "loss": "cross_entropy"}


def shown(qtbot, cls, window, size=(900, 600)):
    view = cls(window.controller)
    qtbot.addWidget(view)
    view.resize(*size)
    view.show()
    qtbot.waitExposed(view)
    return view


def probe(window) -> dict[str, np.ndarray] | None:
    snap = window.controller.snapshot
    return None if snap is None or "predictions" not in snap.probes else snap.probes["predictions"].arrays


def drawn(view, window) -> bool:
    """The view shows the probe's latest arrays."""
    a = probe(window)
    return a is not None and view.rows.a is a and view.rows.pixmap is not None


def pixel(view, rect) -> tuple[int, int, int]:
    """The fill of a cell, inside its border and away from its text."""
    c = view.rows.pixmap.toImage().pixelColor(rect.x() + 2, rect.y() + 2)
    return c.red(), c.green(), c.blue()


def rgb(colour) -> tuple[int, int, int]:
    return colour.red(), colour.green(), colour.blue()


def test_an_encoders_predictions_are_its_cells_and_follow_the_set_and_the_first_example(open_window, qtbot,
                                                                                          spec_file):
    w = open_window(spec_file(session(encoder())))
    c = w.controller
    view = shown(qtbot, SequencePredictionsView, w)
    assert c.probe_requests["predictions"] == ProbeRequest(samples=(0, SHOWN), split="test")
    assert not view.decoding.isEnabled() and not view.width_spin.isEnabled() and not view.temperature.isEnabled()
    assert view.split.itemText(0) == "test (length 8)" and view.split.itemText(1) == "longer held-out (length 12)"
    train_epochs(qtbot, w, 3)
    qtbot.waitUntil(lambda: drawn(view, w), timeout=30_000)
    a = view.rows.a
    assert a["inputs"].shape == a["outputs"].shape == (SHOWN, 8)
    np.testing.assert_array_equal(a["inputs"], c.trainer.data.x_test[:SHOWN].astype(np.int64))
    tints = token_colours(len(a["token_names"]))
    for k in (0, 5, SHOWN - 1):  # every cell of these rows holds the probe's token, coloured as it says
        for t in range(8):
            assert pixel(view, view.rows.cell(k, 0, t)) == rgb(tints[a["inputs"][k, t]])
            assert pixel(view, view.rows.cell(k, 1, t)) == rgb(tints[a["targets"][k, t]])
            assert pixel(view, view.rows.cell(k, 2, t)) == rgb(verdict_colour(bool(a["correct"][k, t]),
                                                                              float(a["confidence"][k, t])))
    assert a["correct"].any()  # three epochs: some tokens right (green cells), and their names as tooltips
    k, t = map(int, np.argwhere(a["correct"])[0])
    tip = view.rows.tip(k, 2, t)
    assert tip.startswith(f"example {k}, position {t + 1}: output '{a['token_names'][a['outputs'][k, t]]}', right")
    hit = view.rows.cell(k, 2, t).center()
    assert view.rows.at(hit) == (k, 2, t)
    assert f"tokens right <b>{float(a['token_accuracy']):.1%}</b>" in view.summary.text()
    assert "each position's likeliest token" in view.summary.text()

    view.split.setCurrentIndex(view.split.findData("long"))  # longer held-out: longer rows
    assert c.probe_requests["predictions"] == ProbeRequest(samples=(0, SHOWN), split="long")
    qtbot.waitUntil(lambda: drawn(view, w) and view.rows.a["inputs"].shape[1] == 12, timeout=30_000)
    long = view.rows.a
    np.testing.assert_array_equal(long["inputs"], c.trainer.data.x_long[:SHOWN].astype(np.int64))
    last = view.rows.cell(0, 2, 11)
    assert last.right() > view.rows.cell(0, 2, 7).right() and pixel(view, last) == rgb(
        verdict_colour(bool(long["correct"][0, 11]), float(long["confidence"][0, 11])))
    assert "of the longer held-out set (length 12)" in view.summary.text()
    view.first.setValue(SHOWN)
    assert c.probe_requests["predictions"].samples == (SHOWN, 2 * SHOWN)
    qtbot.waitUntil(lambda: drawn(view, w) and int(view.rows.a["rows"][0]) == SHOWN, timeout=30_000)
    assert view.ui_state() == {"split": "long", "decoding": "greedy", "beam_width": 4}
    assert view.rows.grab().toImage().pixelColor(last.x() + 2, last.y() + 2).name() != "#ffffff"


def test_an_encoder_decoder_decodes_as_the_controls_say(open_window, qtbot, spec_file):
    w = open_window(spec_file(session(seq2seq())))
    c = w.controller
    view = shown(qtbot, SequencePredictionsView, w)
    assert view.decoding.isEnabled() and not view.width_spin.isEnabled() and not view.temperature.isEnabled()
    assert c.probe_requests["predictions"].method == "greedy"
    train_epochs(qtbot, w, 2)
    qtbot.waitUntil(lambda: drawn(view, w), timeout=30_000)
    assert str(view.rows.a["method"]) == "greedy" and "written greedily" in view.summary.text()

    view.decoding.setCurrentIndex(view.decoding.findData("beam"))
    assert view.width_spin.isEnabled() and not view.temperature.isEnabled()
    assert c.probe_requests["predictions"] == ProbeRequest(samples=(0, SHOWN), split="test", method="beam", width=4)
    qtbot.waitUntil(lambda: drawn(view, w) and str(view.rows.a["method"]) == "beam", timeout=30_000)
    assert "written by beam search" in view.summary.text()
    view.width_spin.setValue(2)
    assert c.probe_requests["predictions"].width == 2

    view.decoding.setCurrentIndex(view.decoding.findData("sample"))
    view.temperature.setValue(2.0)
    assert view.temperature.isEnabled() and not view.width_spin.isEnabled()
    request = c.probe_requests["predictions"]
    assert (request.method, request.width, request.temperature) == ("sample", None, 2.0)
    qtbot.waitUntil(lambda: drawn(view, w) and str(view.rows.a["method"]) == "sample", timeout=30_000)
    a = view.rows.a
    k = SHOWN - 1
    for t in range(8):
        assert pixel(view, view.rows.cell(k, 2, t)) == rgb(verdict_colour(bool(a["correct"][k, t]),
                                                                          float(a["confidence"][k, t])))
    assert view.rows.tip(k, 3, -1).startswith(f"example {k}: ") and "log-probability" in view.rows.tip(k, 3, -1)
    assert view.decoding.itemData(1, 3).startswith("Beam search")  # every entry explains itself (ToolTipRole)


def test_a_classifier_of_sequences_shows_its_class_beside_the_true_one(open_window, qtbot, spec_file):
    w = open_window(spec_file(brackets()))
    view = shown(qtbot, SequencePredictionsView, w)
    assert not view.decoding.isEnabled()
    train_epochs(qtbot, w, 1)
    qtbot.waitUntil(lambda: drawn(view, w), timeout=30_000)
    a = view.rows.a
    assert a["outputs"].shape == (SHOWN,) and list(a["class_names"]) == ["unbalanced", "balanced"]
    for k in range(SHOWN):
        assert pixel(view, view.rows.class_cell(k)) == rgb(verdict_colour(bool(a["correct"][k]),
                                                                          float(a["confidence"][k])))
    assert view.rows.tip(0, 3, -1).startswith(f"example 0: the network says {a['class_names'][a['outputs'][0]]}")
    assert f"classified right <b>{float(a['token_accuracy']):.1%}</b>" in view.summary.text()


def test_the_curves_hold_the_token_and_exact_sequence_accuracies(open_window, qtbot, spec_file):
    w = open_window(spec_file(session(encoder())))
    view = shown(qtbot, SequenceCurvesView, w, (460, 380))
    train_epochs(qtbot, w, 3)
    h = w.controller.history
    keys = [key for key, *_ in SERIES]
    qtbot.waitUntil(lambda: all(len(view.traces[k].xy()[0]) == h.n_epochs >= 3 for k in keys), timeout=30_000)
    for key in keys:
        x, y = view.traces[key].xy()
        np.testing.assert_array_equal(x, np.arange(1, h.n_epochs + 1))
        np.testing.assert_array_equal(y, h.epochs[key].view())
    assert np.isfinite(h.epochs["epoch_long_sequence_accuracy"].view()).all()
    last = h.epochs["epoch_test_sequence_accuracy"].view()[-1]
    assert view.numbers.text().startswith(f"epoch {h.n_epochs}: ") and f"<b>{last:.1%}</b>" in view.numbers.text()
    view.hover.moved(view.plot.vb.mapViewToScene(QPointF(2.2, 0.5)))
    e = h.epochs
    assert view.readout.text() == (f"epoch 2: train tokens {e['epoch_train_accuracy'].view()[1]:.1%}, test tokens "
                                   f"{e['epoch_test_accuracy'].view()[1]:.1%}, test exact "
                                   f"{e['epoch_test_sequence_accuracy'].view()[1]:.1%}, longer tokens "
                                   f"{e['epoch_long_accuracy'].view()[1]:.1%}, longer exact "
                                   f"{e['epoch_long_sequence_accuracy'].view()[1]:.1%}")
    assert view.hover.cursors[0].isVisible() and view.hover.cursors[0].value() == 2
    picture = view.graphics.grab().toImage()
    colours = {picture.pixelColor(x, y).name() for x in range(0, picture.width(), 2)
               for y in range(0, picture.height(), 2)}
    assert {"#0877bd", "#f59322", "#8e24aa"} <= colours  # the curves drawn, in their colours


def test_a_classifiers_curves_have_no_exact_sequence_score(open_window, qtbot, spec_file):
    w = open_window(spec_file(brackets()))
    view = shown(qtbot, SequenceCurvesView, w, (460, 380))
    train_epochs(qtbot, w, 2)
    h = w.controller.history
    qtbot.waitUntil(lambda: len(view.traces["epoch_test_accuracy"].xy()[0]) == h.n_epochs >= 2, timeout=30_000)
    for key in ("epoch_test_sequence_accuracy", "epoch_long_sequence_accuracy"):
        assert len(view.traces[key].xy()[0]) == 0
    np.testing.assert_array_equal(view.traces["epoch_long_accuracy"].xy()[1], h.epochs["epoch_long_accuracy"].view())
    assert "test&nbsp;exact" not in view.numbers.text() and "longer</span>" in view.numbers.text()


def test_a_network_of_one_length_says_it_cannot_read_the_longer_set(open_window, qtbot, spec_file):
    from tests.engine.test_sequence_predictions import fixed_length

    w = open_window(spec_file(fixed_length()))
    view = shown(qtbot, SequencePredictionsView, w)
    qtbot.waitUntil(lambda: drawn(view, w), timeout=30_000)
    view.split.setCurrentIndex(view.split.findData("long"))
    qtbot.waitUntil(lambda: "cannot read the longer sequences" in view.summary.text(), timeout=30_000)
    assert view.rows.a["inputs"].shape[1] == 8 and str(view.rows.a["split"]) == "test"  # the test set instead
