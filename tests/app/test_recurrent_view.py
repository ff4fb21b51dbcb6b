"""The Recurrent view drawn from real runs of recurrent networks: the hidden state's path, the gate heatmap and its
selector, the gradient norm per step, the controls and the hover readout. The view is not in the window's table
yet, so each test builds it on its own controller."""
from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import numpy as np
import pytest

from app.controller import Controller
from app.main import configure
from app.views.recurrent import HOVER, NONE, RecurrentView, has_recurrent
from engine.presets import load_preset
from tests.app.helpers import train_epochs


@pytest.fixture
def make_view(qtbot) -> Iterator:
    configure()
    made: list[Controller] = []

    def make(spec, size=(440, 900)) -> RecurrentView:
        c = Controller(spec)
        made.append(c)
        view = RecurrentView(c)
        qtbot.addWidget(view)
        view.resize(*size)
        view.show()
        qtbot.waitExposed(view)
        qtbot.waitUntil(lambda: not c.probes_pending)
        return view

    yield make
    for c in made:
        c.pause()
        assert c.shutdown()


def smaller(name: str, **dataset):
    """A preset with fewer sequences: the same network and task, a quicker epoch."""
    spec = load_preset(name)
    return spec.model_copy(update={"dataset": spec.dataset.model_copy(update={"samples": 1000, **dataset})})


def arrays(view: RecurrentView, name: str) -> dict[str, np.ndarray]:
    return view.controller.snapshot.probes[name].arrays


def shows(view: RecurrentView) -> bool:
    """The view's items hold the latest probe arrays."""
    snap = view.controller.snapshot
    if snap is None or not {"gates", "step_grad_norms"} <= snap.probes.keys() or view.path.xData is None:
        return False
    a, g = arrays(view, "gates"), arrays(view, "step_grad_norms")
    values, _key = view.heat_values()
    return (view.arrays is a and np.allclose(view.path.xData, a["hidden_pca"][:, 0])
            and np.allclose(view.path.yData, a["hidden_pca"][:, 1])
            and np.array_equal(view.image.image, values.T)
            and np.allclose(10 ** view.grad_curve.yData, g["norms"], rtol=1e-6))


def test_an_lstm_run_shows_its_path_gates_and_gradient_and_the_selector_switches_the_heatmap(make_view, qtbot):
    view = make_view(smaller("count-zeros-lstm"))
    c = view.controller
    qtbot.waitUntil(lambda: shows(view), timeout=10_000)  # the starting point, drawn before any step
    train_epochs(qtbot, SimpleNamespace(controller=c), 3)
    qtbot.waitUntil(lambda: shows(view) and c.snapshot.probes["gates"].step == c.trainer.step, timeout=10_000)
    a = arrays(view, "gates")
    t, h = a["hidden"].shape
    assert (t, h) == (40, 32)
    assert [view.gate.itemText(i) for i in range(view.gate.count())] == [
        "input gate i", "forget gate f", "cell candidate g", "output gate o", "hidden state h", "cell state c"]
    assert not view.layer.isVisibleTo(view) and view.split.isVisibleTo(view)  # one block; a longer set exists
    assert len(view.dots.data) == t and len(view.ends.data) == 2
    assert np.allclose(view.ends.data["x"], a["hidden_pca"][[0, -1], 0])
    # the heatmap: time across, units down, the gate chosen; token names along the time axis
    assert view.image.image.shape == (h, t)
    np.testing.assert_array_equal(view.image.image, a["gates"][0].T)
    assert view.bar.levels() == (0.0, 1.0)
    ticks = view.heat_plot.getAxis("bottom")._tickLevels[0]
    assert ticks and all(label == a["tokens"][round(x)] for x, label in ticks)
    view.gate.setCurrentIndex(1)
    np.testing.assert_array_equal(view.image.image, a["gates"][1].T)
    assert view.gate.toolTip().startswith("forget gate f: how much of the cell state is kept")
    view.gate.setCurrentIndex(view.gate.findData("cell_state"))
    np.testing.assert_array_equal(view.image.image, a["cell"].T)
    lo, hi = view.bar.levels()
    assert lo == -hi and hi >= np.abs(a["cell"]).max()
    view.gate.setCurrentIndex(view.gate.findData("cell"))
    assert view.bar.levels() == (-1.0, 1.0)  # tanh: a diverging scale
    # the gradient per step, on a log axis, and the caption's ratio
    norms = arrays(view, "step_grad_norms")["norms"]
    assert view.grad_curve.xData.tolist() == list(range(t))
    assert view.grad_title.text().endswith(f"step 0 gets {norms[0] / norms[-1]:.2g}× the last step's")
    assert "vanishing gradients" in view.grad_note.text()
    assert f"test example 0: {' '.join(a['tokens'][:16])} … (40 steps)" in view.caption.text()
    assert f"→ answer {a['target'][0]}, the network says {a['predicted'][0]} " in view.caption.text()
    # hovering names the step, its token and the value
    g = view.heat_values()[0]
    assert view.hover_text("heat", 5.2, 3.9) == (f"step t = 5 (token {a['tokens'][5]}), unit 4: cell candidate g = "
                                                 f"{g[5, 4]:.3f}")
    assert view.hover_text("grad", 39.0, 0.0) == f"step t = 39: mean ‖∂loss/∂h_t‖ = {norms[39]:.3g}"
    assert view.hover_text("heat", 40.6, 0.0) is None
    x0, y0 = a["hidden_pca"][7]
    assert view.hover_text("path", float(x0), float(y0)).startswith(f"step t = 7, token {a['tokens'][7]}: ")
    view.grab().save("/tmp/recurrent_lstm.png")

    # another example and the longer set are asked of the probe, and drawn
    view.example.setValue(5)
    assert c.probe_requests["gates"].sample == 5
    qtbot.waitUntil(lambda: shows(view) and int(arrays(view, "gates")["sample"][0]) == 5, timeout=10_000)
    view.split.setCurrentIndex(view.split.findData("long"))
    assert c.probe_requests["gates"].split == "long" and c.probe_requests["step_grad_norms"].split == "long"
    assert view.example.maximum() == len(c.run_info.data.x_long) - 1
    qtbot.waitUntil(lambda: shows(view) and len(arrays(view, "gates")["tokens"]) == 60, timeout=10_000)
    assert view.image.image.shape == (32, 60) and len(view.grad_curve.xData) == 60
    assert "· longer (held out) example 5: " in view.caption.text() and "(60 steps)" in view.caption.text()
    assert view.ui_state() == {"layer": "lstm", "split": "long", "gate": "cell"}


def test_a_gru_offers_its_own_gates_and_a_plain_rnn_its_hidden_state(make_view, qtbot):
    view = make_view(smaller("parity-gru"), size=(380, 760))
    c = view.controller
    train_epochs(qtbot, SimpleNamespace(controller=c), 1)
    qtbot.waitUntil(lambda: shows(view), timeout=10_000)
    assert [view.gate.itemData(i) for i in range(view.gate.count())] == ["reset", "update", "new", "hidden"]
    a = arrays(view, "gates")
    view.gate.setCurrentIndex(1)
    np.testing.assert_array_equal(view.image.image, a["gates"][1].T)  # the update gate
    assert a["hidden"].shape == (8, 32) and set(a["tokens"]) <= {"0", "1"}
    view.grab().save("/tmp/recurrent_gru.png")

    c.load(smaller("count-zeros-rnn"))  # another session: the view follows the new run
    qtbot.waitUntil(lambda: shows(view) and arrays(view, "gates")["kind"][0] == "rnn", timeout=10_000)
    assert [view.gate.itemData(i) for i in range(view.gate.count())] == ["hidden"]
    np.testing.assert_array_equal(view.image.image, arrays(view, "gates")["hidden"].T)
    assert view.bar.levels() == (-1.0, 1.0)


def test_several_recurrent_blocks_get_a_block_menu_and_a_network_without_one_says_so(make_view, qtbot):
    spec = smaller("count-zeros-lstm", length=12, long_length=16)
    nodes = [n.model_copy() for n in spec.model.nodes]
    first = nodes[2].model_copy(update={"id": "gru", "op": "gru", "params": {"hidden": 8, "output": "all"}})
    nodes[3] = nodes[3].model_copy(update={"params": {"units": spec.dataset.n_classes}})
    model = spec.model.model_copy(update={"nodes": [*nodes[:2], first, *nodes[2:]], "edges": [
        ("input", "embedding"), ("embedding", "gru"), ("gru", "lstm"), ("lstm", "dense"), ("dense", "output")]})
    view = make_view(spec.model_copy(update={"model": model}))
    c = view.controller
    qtbot.waitUntil(lambda: shows(view), timeout=10_000)
    assert view.layer.isVisibleTo(view) and [view.layer.itemData(i) for i in range(view.layer.count())] == ["gru",
                                                                                                           "lstm"]
    assert arrays(view, "gates")["node"][0] == "gru" and view.gate.count() == 4
    view.layer.setCurrentIndex(1)
    assert c.probe_requests["gates"].layer == "lstm" and c.probe_requests["step_grad_norms"].layer == "lstm"
    qtbot.waitUntil(lambda: shows(view) and arrays(view, "gates")["node"][0] == "lstm", timeout=10_000)
    assert view.gate.count() == 6 and view.image.image.shape == (32, 12)
    assert view.readout.text() == HOVER

    assert has_recurrent(c.spec) and not has_recurrent(load_preset("tfp-circle"))
    assert not has_recurrent(load_preset("digits-cnn"))
    c.load(load_preset("tfp-circle"))
    qtbot.waitUntil(lambda: view.caption.text() == NONE, timeout=10_000)
    assert view.path.xData.size == 0 and view.image.image is None
