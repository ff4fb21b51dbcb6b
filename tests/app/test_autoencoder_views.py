"""The autoencoder views in the window, drawn from real probes and history of training autoencoders:
reconstructions (clean, noisy and output rows), the manifold's decoded grid, and the loss split into its
reconstruction and KL parts."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QPointF

from app.views.loss_split import NO_KL
from app.views.manifold import span_text
from app.views.reconstructions import to_rgb
from tests.app.helpers import train_epochs


def probe(window, name: str) -> dict[str, np.ndarray]:
    return window.controller.snapshot.probes[name].arrays


def shows(view, a: dict[str, np.ndarray]) -> bool:
    """The Reconstructions view's image holds the probe's rows, each picture where the view says it drew it."""
    pic = view.picture
    noisy = bool(np.any(a["noisy_error"] > 0))
    rows = [("input", a["inputs"]), *([("noisy", a["noisy"])] if noisy else []), ("output", a["outputs"])]
    if pic.names != [name for name, _ in rows] or pic.image is None:
        return False
    h, w = a["inputs"].shape[-2:]
    for r, (_name, pictures) in enumerate(rows):
        expected = to_rgb(pictures)
        for k in range(len(pictures)):
            y, x = pic.origin(k, r)
            if not np.array_equal(pic.mosaic[y:y + h, x:x + w], expected[k]):
                return False
    return True


def test_reconstructions_show_inputs_above_outputs_and_the_noisy_pictures_between(open_window, qtbot):
    w = open_window("digits-denoise")
    view = w.views["reconstructions"]
    c = w.controller
    assert view.showing()  # the first of its dock's tabs in an autoencoder session
    train_epochs(qtbot, w, 1)
    qtbot.waitUntil(lambda: shows(view, probe(w, "reconstruction")), timeout=10_000)
    a = probe(w, "reconstruction")
    assert view.picture.names == ["input", "output"] and len(a["rows"]) == 16
    assert not np.array_equal(a["outputs"], a["inputs"])
    assert f"output <b>{a['error'].mean():.4f}</b>" in view.caption.text()
    grab = view.picture.grab().toImage()
    dark = sum(grab.pixelColor(x, y).lightness() < 60 for x in range(0, grab.width(), 3)
               for y in range(0, grab.height(), 3))
    assert dark > 50  # pictures drawn (the data's dark background), not a blank panel
    pic = view.picture
    y, x = pic.origin(3, 1)  # picture 3 of the output row, hovered at its middle
    target = pic._target()
    at = QPoint(target.x() + round((x + 4) * pic.scale), target.y() + round((y + 4) * pic.scale))
    assert pic.at(at) == (1, 3)
    assert pic.tips[1][3] == (f"test picture 3 (label {int(a['labels'][3])}), the network's output: error "
                              f"{a['error'][3]:.4f}")

    view.noise.setValue(30)
    assert view.noise_label.text() == "30 %" and c.probe_requests["reconstruction"].eps == 0.3
    qtbot.waitUntil(lambda: view.picture.names == ["input", "noisy", "output"], timeout=10_000)
    a = probe(w, "reconstruction")
    assert shows(view, a)
    assert a["noisy_error"].mean() > 0.03 and not np.array_equal(a["noisy"], a["inputs"])
    assert f"noisy input <b>{a['noisy_error'].mean():.4f}</b>" in view.caption.text()
    assert view.picture.mosaic.shape[0] > 3 * 8  # three rows of 8-pixel pictures (or more blocks of them)
    assert view.ui_state() == {"noise": 30}
    view.noise.setValue(0)
    qtbot.waitUntil(lambda: view.picture.names == ["input", "output"], timeout=10_000)


def test_a_vae_shows_its_manifold_over_the_prior_and_its_loss_split_with_kl(open_window, qtbot):
    w = open_window("digits-vae-2d")
    c = w.controller
    manifold, split = w.views["manifold"], w.views["loss_split"]
    w.docks["Manifold"].raise_()
    w.docks["Loss split"].raise_()
    qtbot.waitUntil(lambda: manifold.showing() and split.showing())
    train_epochs(qtbot, w, 2)
    qtbot.waitUntil(lambda: manifold.image.image is not None
                    and np.array_equal(manifold.image.image, probe(w, "manifold")["mosaic"]), timeout=10_000)
    assert manifold.image.image.shape == (12 * 8, 12 * 8)
    assert manifold.image.levels is not None and list(manifold.image.levels) == [0.0, 1.0]
    text = manifold.caption.text()
    assert "quantiles 5 % to 95 % (-1.64 to 1.64)" in text and "z₁" in text
    assert manifold.plot.getAxis("bottom").labelText == "z₁ →"
    manifold.side.setValue(6)
    assert c.probe_requests["manifold"].size == 6 and manifold.side_label.text() == "6 × 6"
    qtbot.waitUntil(lambda: manifold.image.image.shape == (6 * 8, 6 * 8), timeout=10_000)
    assert manifold.point_at(47.5, 0.5) == (0, 5) and manifold.point_at(48.5, 0.5) is None
    assert manifold.ui_state() == {"grid": 6}
    grid = probe(w, "manifold")["grid"]
    manifold._on_mouse(manifold.plot.vb.mapViewToScene(QPointF(8 * 2 + 4, 8 * 1 + 4)))  # hover row 1, column 2
    assert manifold.readout.text() == f"row 2, column 3: z = ({grid[1, 2, 0]:.2f}, {grid[1, 2, 1]:.2f})"

    h = c.history
    qtbot.waitUntil(lambda: len(split.traces["epoch_kl"].xy()[0]) == h.n_epochs >= 2, timeout=10_000)
    for key in ("epoch_train_loss", "epoch_recon_loss", "epoch_kl"):
        x, y = split.traces[key].xy()
        np.testing.assert_array_equal(x, np.arange(1, h.n_epochs + 1))
        np.testing.assert_array_equal(y, h.epochs[key].view())
    kl = split.traces["epoch_kl"].xy()[1]
    total, recon = (split.traces[k].xy()[1] for k in ("epoch_train_loss", "epoch_recon_loss"))
    assert (kl > 0).all() and (total > recon).all()  # total = reconstruction + β·KL, β warming up from 0
    assert split.kl_plot.isVisible()
    assert "β = 1" in split.beta.text() and "warming up over 10 epochs" in split.beta.text()
    assert split.numbers.text().startswith(f"epoch {h.n_epochs}: ") and "KL" in split.numbers.text()
    assert split.values_at(1.2).startswith("epoch 1: total ")
    spec = c.spec
    c.set_spec(spec.model_copy(update={"regularization": spec.regularization.model_copy(
        update={"beta": 0.5, "beta_warmup": 0})}))  # a live change: the β line follows at once, paused
    assert split.beta.text() == "β = 0.5: the loss adds β·KL to the reconstruction"


def test_a_plain_autoencoder_spans_its_codes_and_has_no_kl_curve(open_window, qtbot):
    w = open_window("digits-ae-2d")
    manifold, split = w.views["manifold"], w.views["loss_split"]
    w.docks["Manifold"].raise_()
    w.docks["Loss split"].raise_()
    qtbot.waitUntil(lambda: manifold.showing() and split.showing())
    train_epochs(qtbot, w, 1)
    h = w.controller.history
    qtbot.waitUntil(lambda: len(split.traces["epoch_recon_loss"].xy()[0]) == h.n_epochs >= 1, timeout=10_000)
    np.testing.assert_array_equal(split.traces["epoch_recon_loss"].xy()[1], h.epochs["epoch_recon_loss"].view())
    assert not split.kl_plot.isVisible() and split.beta.text() == NO_KL
    # no KL: the total is the reconstruction loss, drawn once
    assert len(split.traces["epoch_kl"].xy()[0]) == len(split.traces["epoch_train_loss"].xy()[0]) == 0
    assert "reconstruction" in split.numbers.text() and "KL" not in split.numbers.text()
    qtbot.waitUntil(lambda: manifold.image.image is not None
                    and np.array_equal(manifold.image.image, probe(w, "manifold")["mosaic"]), timeout=10_000)
    plane = probe(w, "manifold")["plane"]
    assert "2nd to 98th percentiles" in manifold.caption.text()
    assert f"from {plane[0, 0, 0]:.2f} to {plane[0, -1, 0]:.2f}" in manifold.caption.text()


def test_the_manifold_caption_names_the_plane_and_its_span():
    n = 4
    a, b = np.meshgrid(np.linspace(-2.0, 3.0, n), np.linspace(5.0, -1.0, n))  # top row: the largest 2nd value
    plane = np.stack([a, b], axis=-1)
    text = span_text(plane, "code", 16, variational=False)
    assert "two principal axes through the test codes' mean, in the 16-number code" in text
    assert "PC 1 of code from -2.00 to 3.00, PC 2 of code from -1.00 to 5.00" in text and "percentiles" in text
    text = span_text(plane, "z", 8, variational=True)
    assert "through the origin (the prior's mean)" in text and "quantiles 5 % to 95 %" in text
    assert "z₁ grows left to right, z₂ bottom to top" in span_text(plane, "z", 2, variational=True)
