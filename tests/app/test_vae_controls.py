"""A VAE's β and its warm-up in the Training panel: shown for networks with a sampling block only, and an edit
reaches the running trainer without a reset. Autoencoders cannot pick cross-entropy (no classes to score)."""
from __future__ import annotations

import pytest

from engine.presets import load_preset
from tests.app.helpers import train_epochs


def test_beta_changes_the_running_vae_without_a_reset(open_window, qtbot):
    w = open_window("digits-vae-2d")
    panel, c = w.training_panel, w.controller
    assert not panel.beta.isHidden() and not panel.vae_heading.isHidden()
    assert panel.beta.value() == 1.0 and panel.beta_warmup.value() == 10
    train_epochs(qtbot, w, 1)
    run, step = c.run_info.run_id, c.trainer.step
    panel.beta.setValue(2.5)
    panel.beta_warmup.setValue(0)
    assert c.spec.regularization.beta == 2.5  # the session's spec at once; the run's at its next boundary
    c.trainer.apply_commands()
    assert c.trainer.beta == 2.5 and c.trainer.spec.regularization.beta_warmup == 0
    assert c.run_info.run_id == run and c.trainer.step == step  # the same run, not a restart
    train_epochs(qtbot, w, 2)  # the pause may fall mid-epoch: the last epoch is all at the new β
    h = c.trainer.history
    assert h["epoch_train_loss"][-1] == pytest.approx(h["epoch_recon_loss"][-1] + 2.5 * h["epoch_kl"][-1], rel=1e-5)


def test_the_vae_rows_show_only_for_a_vae_and_autoencoders_cannot_pick_cross_entropy(qtbot):
    from app.panels.training import TrainingPanel

    panel = TrainingPanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.set_spec(load_preset("tfp-circle"))
    assert panel.beta.isHidden() and panel.vae_heading.isHidden()
    assert panel.loss.model().item(panel.loss.findData("cross_entropy")).isEnabled()
    panel.set_spec(load_preset("digits-ae-2d"))
    assert panel.beta.isHidden()  # an autoencoder without a KL term
    assert not panel.loss.model().item(panel.loss.findData("cross_entropy")).isEnabled()
    assert panel.aug_heading.text() == "Augmentation and denoising"
    panel.set_spec(load_preset("digits-vae-8d"))
    assert panel.beta.isVisible() and panel.beta_warmup.isVisible()


def test_the_training_panel_refuses_a_shift_for_an_autoencoder_and_says_why(qtbot):
    from app.panels.training import TrainingPanel

    panel = TrainingPanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.set_spec(load_preset("digits-denoise"))
    emitted: list = []
    panel.spec_edited.connect(emitted.append)
    panel.aug_fields.widgets()["shift"].setValue(2)
    assert emitted == [] and panel.refused.isVisible() and "shift" in panel.refused.text()
    panel.aug_fields.widgets()["shift"].setValue(0)
    panel.aug_fields.widgets()["cutout"].setValue(3)
    assert emitted and emitted[-1].regularization.augment.cutout == 3 and not panel.refused.isVisible()
