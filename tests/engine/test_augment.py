"""Augmentation as a regularizer: what each change does to a batch, live switching, bit-identical resume."""
from __future__ import annotations

import dataclasses

import torch

from engine import Trainer
from engine.augment import augment
from engine.presets import load_preset
from engine.spec import Augment
from engine.train.snapshot import Configure


def batch() -> torch.Tensor:
    return torch.from_numpy(Trainer(load_preset("digits-cnn"), probes=False).data.x_test[:16].copy())


def test_each_change_does_what_it_says_and_leaves_the_input_alone():
    x = batch()
    keep = x.clone()
    g = torch.Generator().manual_seed(0)
    flipped = augment(x, Augment(flip=True), g)
    same = [torch.equal(a, b) for a, b in zip(flipped, x, strict=True)]
    mirrored = [torch.equal(a, b.flip(-1)) for a, b in zip(flipped, x, strict=True)]
    assert all(s or m for s, m in zip(same, mirrored, strict=True)) and 0 < sum(mirrored) < 16
    holed = augment(x, Augment(cutout=4), g)
    changed = (holed != x).any(dim=1)  # (B, H, W)
    for i in range(16):
        ys, xs = torch.nonzero(changed[i], as_tuple=True)
        if len(ys):  # a square of side ≤ 4 (cut at the border), set to the image's darkest value
            assert ys.max() - ys.min() < 4 and xs.max() - xs.min() < 4
            assert (holed[i][:, changed[i]] == x[i].amin()).all()
    noisy = augment(x, Augment(noise=0.5), g)
    assert abs(float((noisy - x).std()) - 0.5) < 0.05
    turned = augment(x, Augment(rotation=30, shift=2), g)
    assert turned.shape == x.shape and not torch.equal(turned, x) and torch.isfinite(turned).all()
    assert torch.equal(augment(x, Augment(rotation=0, shift=0), g), x)  # nothing asked, nothing changed
    assert torch.equal(x, keep)


def spec_with(augment_: Augment):
    spec = load_preset("digits-cnn")
    return spec.model_copy(update={"regularization": spec.regularization.model_copy(update={"augment": augment_})})


def test_augmentation_switches_on_live_and_a_run_with_it_resumes_bit_for_bit():
    on = Augment(shift=1, rotation=10, cutout=3, noise=0.1)
    a = Trainer(load_preset("digits-cnn"), probes=False)
    b = Trainer(load_preset("digits-cnn"), probes=False)
    for tr in (a, b):
        for _ in tr.run(steps=10):
            pass
    run = b.run_id
    b.post(Configure(regularization=spec_with(on).regularization))
    for tr in (a, b):
        for _ in tr.run(steps=10):
            pass
    assert b.run_id == run and b.step == 20 and b.spec.regularization.augment == on  # no reset
    assert not torch.equal(a.model.layers["conv_1"].weight, b.model.layers["conv_1"].weight)  # other batches
    ck = b.checkpoint()
    for _ in b.run(steps=15):
        pass
    resumed = Trainer(b.spec, probes=False, checkpoint=dataclasses.replace(ck))
    for _ in resumed.run(steps=15):
        pass
    for k, v in b.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
