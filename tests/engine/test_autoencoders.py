"""Autoencoders and VAEs: reconstruction tasks, β live with warm-up, the loss's parts in the history, and the
probes that draw them (reconstruction, decode, manifold), checked headless as the issue's "done when" asks."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from sklearn.neighbors import KNeighborsClassifier

from engine.check import parse_spec
from engine.errors import GraphError, SpecError
from engine.presets import load_preset
from engine.probes import ProbeRequest, run_probe
from engine.session import load_session, save_session
from engine.spec import spec_to_dict
from engine.templates import TEMPLATES
from engine.train.snapshot import Configure
from engine.train.trainer import Trainer


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "engine", *args], check=False, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    return done


def test_digits_vae_2d_trains_headless_to_a_latent_space_that_sorts_the_digits(tmp_path):
    """KL > 0, falling reconstruction loss, and 5-NN on the latent means scores ≥ 0.8 on held-out digits."""
    session, metrics = tmp_path / "vae.dlp", tmp_path / "m.json"
    cli("train", "digits-vae-2d", "--quiet", "--out", str(session), "--metrics-json", str(metrics))
    m = json.loads(metrics.read_text())
    recon, kl = m["history"]["epoch_recon_loss"], m["history"]["epoch_kl"]
    assert len(recon) == len(kl) == m["epochs"] == 60
    assert m["kl"] > 0 and min(kl) > 0
    assert recon[-1] < 0.8 * recon[0]
    assert m["train_loss"] == pytest.approx(m["recon_loss"] + 1.0 * m["kl"], rel=1e-4)  # β = 1 after warm-up
    codes = {}
    for split in ("train", "test"):
        out = tmp_path / f"{split}.npz"
        cli("probe", str(session), "--probe", "embedding", "--split", split, "--out", str(out), "--quiet")
        with np.load(out) as npz:
            codes[split] = (npz["points"], npz["labels"], str(npz["layer"][0]))
    assert codes["test"][2] == "z" and codes["test"][0].shape[1] == 2  # the means, by default
    knn = KNeighborsClassifier(5).fit(codes["train"][0], codes["train"][1])
    assert knn.score(codes["test"][0], codes["test"][1]) >= 0.8


def test_digits_ae_2d_loss_falls_below_0_8_of_its_first_epoch_within_30(tmp_path):
    metrics = tmp_path / "m.json"
    cli("train", "digits-ae-2d", "--quiet", "--epochs", "30", "--metrics-json", str(metrics))
    m = json.loads(metrics.read_text())
    loss = m["history"]["epoch_train_loss"]
    assert min(loss[:30]) < 0.8 * loss[0]
    assert m["history"]["epoch_recon_loss"] == loss and "kl" not in m  # no VAE: the loss is all reconstruction
    assert "train_accuracy" not in m  # nothing to classify


def test_beta_changes_live_without_a_reset_and_warms_up_linearly():
    spec = load_preset("digits-vae-2d")
    tr = Trainer(spec, probes=False)
    warm = spec.regularization.beta_warmup
    assert warm == 10 and tr.beta == 0.0
    list(tr.run(epochs=2))
    assert tr.beta == pytest.approx(spec.regularization.beta * 2 / warm)
    step, weights = tr.step, {k: v.clone() for k, v in tr.model.state_dict().items()}
    tr.post(Configure(regularization=spec.regularization.model_copy(update={"beta": 4.0, "beta_warmup": 0})))
    tr.apply_commands()
    assert tr.step == step and tr.beta == 4.0  # the same run: no reset
    assert all(torch.equal(v, tr.model.state_dict()[k]) for k, v in weights.items())
    list(tr.run(epochs=1))
    h = tr.history
    assert len(h["step_loss"]) == tr.step == step + tr.steps_per_epoch  # the history goes on
    assert h["epoch_train_loss"][-1] == pytest.approx(h["epoch_recon_loss"][-1] + 4.0 * h["epoch_kl"][-1], rel=1e-5)


def test_the_loss_parts_add_up_and_follow_beta():
    """With running metrics, an epoch's training loss is its reconstruction part plus β times its KL part."""
    d = spec_to_dict(load_preset("digits-vae-2d"))
    d["regularization"] = {"beta": 2.5}
    tr = Trainer(parse_spec(d), probes=False)
    list(tr.run(epochs=2))
    h = tr.history
    for e in range(2):
        assert h["epoch_train_loss"][e] == pytest.approx(h["epoch_recon_loss"][e] + 2.5 * h["epoch_kl"][e], rel=1e-5)
    scores = tr.evaluate()  # full passes in eval mode: the losses include 2.5·KL of the means
    assert scores["train_loss"] == pytest.approx(scores["recon_loss"] + 2.5 * scores["kl"], rel=1e-5)


def test_a_vae_saved_mid_epoch_continues_bit_for_bit(tmp_path):
    spec = load_preset("digits-vae-2d")
    whole = Trainer(spec, probes=False)
    list(whole.run(steps=60))  # an epoch is 40 steps
    half = Trainer(spec, probes=False)
    list(half.run(steps=50))
    save_session(tmp_path / "s.dlp", half.spec, half.checkpoint())
    s = load_session(tmp_path / "s.dlp")
    again = Trainer(s.spec, probes=False, checkpoint=s.checkpoint)
    list(again.run(steps=10))
    list(whole.run(steps=30))
    list(again.run(steps=30))
    for key in ("step_loss", "epoch_train_loss", "epoch_recon_loss", "epoch_kl", "epoch_test_loss"):
        assert whole.history[key] == again.history[key], key


def test_decode_gives_pictures_of_the_inputs_shape_and_inverts_nothing_it_should_not():
    tr = Trainer(load_preset("digits-vae-8d"), probes=False)
    list(tr.run(steps=80))
    ctx = tr.prober.ctx
    a = run_probe(ctx, "decode", tr.step, ProbeRequest(points=(0.0,) * 8 + (1.0,) * 8)).arrays
    assert a["images"].shape == (2, 1, 8, 8) and a["layer"][0] == "z"
    assert 0.0 <= a["images"].min() and a["images"].max() <= 1.0
    assert not np.array_equal(a["images"][0], a["images"][1])
    # Decoding a test digit's mean gives exactly the network's own reconstruction of it (eval mode: z = μ).
    mu = run_probe(ctx, "embedding", tr.step, ProbeRequest(samples=(0, 3))).arrays["points"]
    decoded = run_probe(ctx, "decode", tr.step, ProbeRequest(points=tuple(mu.ravel().tolist()))).arrays["images"]
    rec = run_probe(ctx, "reconstruction", tr.step, ProbeRequest(samples=(0, 3))).arrays
    np.testing.assert_allclose(decoded, rec["outputs"], atol=1e-5)
    with pytest.raises(KeyError, match="8 values per point"):
        run_probe(ctx, "decode", tr.step, ProbeRequest(points=(0.0, 1.0, 2.0)))
    with pytest.raises(KeyError, match="not a block between"):
        run_probe(ctx, "decode", tr.step, ProbeRequest(layer="output"))


def test_decode_from_a_block_a_skip_connection_passes_is_refused():
    d = spec_to_dict(load_preset("digits-ae-2d"))
    nodes = [{"id": "input", "op": "input", "params": {"shape": [1, 8, 8]}}, {"id": "flatten", "op": "flatten"},
             {"id": "code", "op": "dense", "params": {"units": 2}}, {"id": "dec", "op": "dense", "params": {"units": 64}},
             {"id": "skip", "op": "add"}, {"id": "output", "op": "output", "params": {"activation": "sigmoid"}}]
    edges = [["input", "flatten"], ["flatten", "code"], ["code", "dec"], ["dec", "skip"], ["flatten", "skip"],
             ["skip", "output"]]
    d["model"] = {"nodes": nodes, "edges": edges}
    tr = Trainer(parse_spec(d), probes=True)
    assert "decode" not in tr.applicable_probes and "manifold" not in tr.applicable_probes
    assert {"reconstruction", "embedding"} <= set(tr.applicable_probes)
    list(tr.run(steps=3))  # every probe that applies runs: none raises into training
    assert tr.status == "finished"
    with pytest.raises(KeyError, match="cannot be computed from code alone"):
        run_probe(tr.prober.ctx, "decode", 0, ProbeRequest(layer="code", points=(0.0, 0.0)))
    assert run_probe(tr.prober.ctx, "decode", 0, ProbeRequest(layer="skip", points=(0.0,) * 64)).arrays[
        "images"].shape == (1, 1, 8, 8)


def test_the_denoising_preset_brings_a_noisy_digit_closer_to_the_clean_one():
    spec = load_preset("digits-denoise")
    assert spec.regularization.augment.noise > 0  # noise on the input only; the target stays clean
    tr = Trainer(spec, probes=False)
    before = run_probe(tr.prober.ctx, "reconstruction", 0, ProbeRequest(eps=0.3, samples=(0, 200))).arrays
    list(tr.run(epochs=spec.training.epochs))
    a = run_probe(tr.prober.ctx.fresh(), "reconstruction", tr.step, ProbeRequest(eps=0.3, samples=(0, 200))).arrays
    assert a["noisy"].shape == a["inputs"].shape == a["outputs"].shape == (200, 1, 8, 8)
    assert a["error"].mean() < 0.5 * a["noisy_error"].mean()
    assert (a["error"] < a["noisy_error"]).mean() > 0.9
    assert a["error"].mean() < before["error"].mean()
    clean = run_probe(tr.prober.ctx, "reconstruction", tr.step, ProbeRequest(samples=(0, 4))).arrays
    np.testing.assert_array_equal(clean["noisy"], clean["inputs"])  # eps 0: the clean pictures go in


def test_the_manifold_grid_runs_through_the_priors_quantiles():
    tr = Trainer(load_preset("digits-vae-2d"), probes=False)
    list(tr.run(steps=40))
    a = run_probe(tr.prober.ctx, "manifold", tr.step, ProbeRequest(size=5)).arrays
    assert a["mosaic"].shape == (40, 40) and a["grid"].shape == (5, 5, 2)
    q = torch.special.ndtri(torch.tensor([0.05, 0.95])).numpy()
    np.testing.assert_allclose(a["grid"][0, 0], [q[0], q[1]], rtol=1e-5)  # top left: low x, high y
    np.testing.assert_allclose(a["grid"][-1, -1], [q[1], q[0]], rtol=1e-5)
    d = run_probe(tr.prober.ctx, "decode", tr.step, ProbeRequest(points=tuple(a["grid"][1, 2].tolist()))).arrays
    np.testing.assert_allclose(a["mosaic"][8:16, 16:24], d["images"][0, 0], atol=1e-6)
    with pytest.raises(KeyError, match="grid side"):
        run_probe(tr.prober.ctx, "manifold", tr.step, ProbeRequest(size=100))


def test_a_plain_autoencoders_manifold_spans_its_codes_and_a_wide_code_uses_its_principal_plane():
    tr = Trainer(load_preset("shapes-conv-ae"), probes=False)
    list(tr.run(steps=20))
    a = run_probe(tr.prober.ctx, "manifold", tr.step, ProbeRequest(size=4)).arrays
    assert a["mosaic"].shape == (4 * 28, 4 * 28) and a["grid"].shape == (4, 4, 16) and a["axes"].shape == (2, 16)
    codes = run_probe(tr.prober.ctx, "embedding", tr.step, ProbeRequest(layer="code")).arrays["points"]
    coords = (codes - a["origin"]) @ a["axes"].T
    lo, hi = np.percentile(coords, 2, axis=0), np.percentile(coords, 98, axis=0)
    np.testing.assert_allclose(a["plane"][-1, 0], [lo[0], lo[1]], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(a["plane"][0, -1], [hi[0], hi[1]], rtol=1e-4, atol=1e-5)


def test_reconstruction_needs_the_picture_back():
    d = spec_to_dict(load_preset("digits-ae-2d"))
    d["model"]["nodes"] = [n if n["id"] != "reconstruct" else {**n, "params": {"units": 10}} for n in d["model"]["nodes"]]
    with pytest.raises(GraphError, match=r"must give the picture back, \(B, 1, 8, 8\) or \(B, 64\)"):
        parse_spec(d)
    d = spec_to_dict(load_preset("digits-ae-2d"))
    d["model"]["nodes"][-1]["params"]["activation"] = "softmax"
    with pytest.raises(SpecError, match="softmax does not suit reconstruction"):
        parse_spec(d)
    d = spec_to_dict(load_preset("digits-ae-2d"))
    d["dataset"]["task"] = "sorting"
    with pytest.raises(SpecError, match="dataset"):
        parse_spec(d)


@pytest.mark.parametrize("template", ["autoencoder", "vae", "conv_autoencoder"])
def test_the_editors_autoencoder_templates_now_learn_the_shapes(template):
    d = spec_to_dict(load_preset("shapes-conv-ae"))
    d["model"] = TEMPLATES[template].model().model_dump(mode="json")
    d["dataset"]["samples"] = 400
    tr = Trainer(parse_spec(d), probes=False)
    list(tr.run(epochs=3))
    loss = tr.history["epoch_train_loss"]
    assert loss[-1] < loss[0]
    assert (tr.history["epoch_kl"][-1] > 0) == (template == "vae")


def test_a_new_request_is_answered_at_the_next_step_boundary():
    """A click that decodes a point must not wait for the next probe round."""
    tr = Trainer(load_preset("digits-vae-2d"), probes={"decode"})
    run = tr.run()
    next(run)
    tr.prober._next_time = float("inf")  # no ordinary round for the rest of this test
    tr.set_probe_request("decode", ProbeRequest(points=(0.5, -0.5)))
    step = tr.step
    for _ in range(2):
        next(run)
    run.close()
    result = tr.probes["decode"]
    assert result.arrays["points"].tolist() == [[0.5, -0.5]] and result.step <= step + 2


def test_metrics_json_reports_the_loss_parts(tmp_path):
    metrics = tmp_path / "m.json"
    cli("train", "digits-vae-8d", "--quiet", "--epochs", "2", "--metrics-json", str(metrics))
    m = json.loads(metrics.read_text())
    assert {"recon_loss", "kl"} <= m.keys() and len(m["history"]["epoch_kl"]) == 2
    done = cli("probe", "digits-vae-8d", "--probe", "decode", "--points", "0,0,0,0,0,0,0,0;1,1,1,1,1,1,1,1",
               "--out", str(tmp_path / "d.npz"))
    assert "images" in done.stdout
    with np.load(tmp_path / "d.npz") as npz:
        assert npz["images"].shape == (2, 1, 8, 8)


def test_a_file_with_impossible_loss_parts_is_refused_naming_the_field(tmp_path):
    from engine.errors import SessionFileError
    from tests.engine.test_hostile import edit_manifest

    tr = Trainer(load_preset("digits-vae-2d"), probes=False)
    list(tr.run(steps=5))
    save_session(tmp_path / "s.dlp", tr.spec, tr.checkpoint())
    assert tr.checkpoint().epoch_parts[0] > 0  # what the file holds mid-epoch
    bad = edit_manifest(tmp_path / "s.dlp", tmp_path / "bad.dlp",
                        lambda m: m["state"].update(epoch_parts=[-1.0, 0.0]))
    with pytest.raises(SessionFileError, match="state.epoch_parts"):
        load_session(bad)


def test_a_request_the_run_cannot_answer_falls_back_to_the_default_instead_of_stopping_training():
    """Views keep their requests across runs; one that fits another network (its layer, its code width) must
    not raise in the training thread."""
    tr = Trainer(load_preset("digits-vae-2d"), probes={"embedding", "decode"})
    tr.set_probe_request("embedding", ProbeRequest(layer="conv_1"))
    tr.set_probe_request("decode", ProbeRequest(points=(0.0,) * 3))  # 3 values: no whole 2-D point
    list(tr.run(steps=3))
    assert tr.status == "finished"
    assert tr.probes["embedding"].arrays["layer"][0] == "z" and tr.probes["decode"].arrays["images"].shape == (1, 1, 8, 8)
    assert tr.prober.request("embedding") == ProbeRequest()  # dropped, not asked again every round


def test_a_diverging_vae_stops_as_diverged_whatever_the_probes_meet():
    d = spec_to_dict(load_preset("digits-vae-8d"))
    d["optimizer"] = {"kind": "sgd", "lr": 5.0}
    tr = Trainer(parse_spec(d), probes={"manifold", "embedding", "reconstruction", "decode"})
    list(tr.run(epochs=2))
    assert tr.status == "diverged" and "lower learning rate" in tr.message


def test_an_autoencoder_refuses_moving_its_input_alone_but_takes_noise_and_cutout():
    d = spec_to_dict(load_preset("digits-denoise"))
    for field, value in (("shift", 2), ("rotation", 10.0), ("flip", True)):
        bad = json.loads(json.dumps(d))
        bad["regularization"]["augment"] = {field: value}
        with pytest.raises(SpecError, match=rf"regularization.augment.{field}"):
            parse_spec(bad)
    d["regularization"]["augment"] = {"noise": 0.5, "cutout": 3}
    parse_spec(d)


def test_early_stopping_waits_for_the_beta_warm_up():
    """During warm-up a VAE's validation loss counts ever more of its KL: it is not compared until β is full."""
    d = spec_to_dict(load_preset("digits-vae-2d"))
    d["regularization"] = {"beta": 1.0, "beta_warmup": 6, "early_stopping": {"patience": 1, "min_delta": 1e9}}
    tr = Trainer(parse_spec(d), probes=False)
    list(tr.run(epochs=20))
    # an improvement of 1e9 never comes: patience 1 runs out one epoch after the first compared (epoch 6)
    assert tr.status == "early_stopped" and tr.epoch == 7
