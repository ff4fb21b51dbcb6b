"""The vision transformer: patch embedding (shape rule, count, patch order), the class-token readout, attention
maps over the patches, and the shapes-vit preset trained headless to ≥ 90 % test accuracy (the "done when")."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from engine.check import parse_spec
from engine.errors import GraphError
from engine.graph import GraphModule, analyse
from engine.ops import OPS, BuildContext, ShapeError
from engine.presets import load_preset
from tests.conftest import build_op as build
from tests.conftest import n_params, spec_dict


@pytest.mark.parametrize("class_token, steps", [(True, 17), (False, 16)])
def test_patch_embedding_shape_and_count(class_token, steps):
    emb, p, spec = build("patch_embedding", {"patch": 7, "dim": 12, "class_token": class_token}, [(3, 28, 28)])
    assert spec.shape(p, [(3, 28, 28)]) == (steps, 12)
    assert emb(torch.randn(5, 3, 28, 28)).shape == (5, steps, 12)
    assert spec.count(p, [(3, 28, 28)]) == n_params(emb) == 12 * 3 * 49 + 12 + 12 * class_token
    named = dict(emb.named_parameters())
    assert all(name in named for name in spec.penalized)  # weight decay reaches the projection's weights
    _, p, _ = build("patch_embedding", {"patch": 4, "dim": 8}, [(1, 8, 12)])
    assert spec.shape(p, [(1, 8, 12)]) == (2 * 3 + 1, 8)  # rectangles: rows × columns
    assert "4 rows" in spec.explain(build("patch_embedding", {"patch": 7}, [(1, 28, 28)])[1], [(1, 28, 28)])


def test_patch_embedding_refuses_a_patch_that_does_not_divide_the_image():
    spec = OPS["patch_embedding"]
    with pytest.raises(ShapeError, match=r"5×5 patches.*28×28 image: pick a patch side of 1, 2, 4, 7, 14 or 28"):
        spec.shape(spec.params(patch=5), [(1, 28, 28)])
    with pytest.raises(ShapeError, match=r"4×4 patches.*6×9 image: pick a patch side of 1 or 3$"):
        spec.shape(spec.params(patch=4), [(1, 6, 9)])
    with pytest.raises(ShapeError, match=r"expects images"):
        spec.shape(spec.params(), [(16, 8)])
    data = spec_dict("shapes-vit")
    for node in data["model"]["nodes"]:
        if node["op"] == "patch_embedding":
            node["params"]["patch"] = 5
    with pytest.raises(GraphError, match=r"model.nodes\[1\]: patch_embedding cuts 5×5 patches.*28×28"):
        parse_spec(data)


@pytest.mark.parametrize("class_token", [True, False])
def test_patches_are_read_left_to_right_then_top_to_bottom(class_token):
    emb, _, _ = build("patch_embedding", {"patch": 7, "dim": 3, "class_token": class_token}, [(1, 28, 21)])
    with torch.no_grad():
        emb.proj.weight.fill_(1.0)
        emb.proj.bias.zero_()
    for row, col in [(0, 0), (0, 2), (1, 0), (2, 1), (3, 2)]:  # a 4 × 3 grid of patches
        x = torch.zeros(1, 1, 28, 21)
        x[0, 0, row * 7:(row + 1) * 7, col * 7:(col + 1) * 7] = 1.0
        tokens = emb(x)[0, :, 0]  # (steps,)
        k = row * 3 + col
        assert tokens.argmax().item() == k + class_token
        assert tokens[k + class_token].item() == pytest.approx(49.0)
        assert tokens.abs().sum().item() == pytest.approx(49.0 + (emb.cls[0, 0, 0].abs().item() if class_token else 0))


def test_the_class_token_is_learned_and_shared_by_every_image():
    emb, _, _ = build("patch_embedding", {"patch": 2, "dim": 4}, [(1, 4, 4)])
    out = emb(torch.randn(3, 1, 4, 4))
    assert torch.equal(out[0, 0], out[2, 0]) and torch.equal(out[1, 0], emb.cls[0, 0])
    out.sum().backward()
    assert emb.cls.grad is not None and emb.cls.grad.abs().sum() > 0


def test_readout_first_takes_step_zero():
    readout, p, spec = build("readout", {"reduce": "first"}, [(5, 6)])
    x = torch.randn(4, 5, 6)
    assert torch.equal(readout(x), x[:, 0])
    assert spec.shape(p, [(5, 6)]) == (6,)


def test_vit_attention_maps_cover_the_class_token_and_every_patch():
    info = analyse(load_preset("shapes-vit").model, (1, 28, 28))
    net = GraphModule(info, BuildContext())
    maps = net.attention_maps(torch.randn(3, 1, 28, 28))
    blocks = [n.id for n in load_preset("shapes-vit").model.nodes if n.op == "transformer_block"]
    assert set(maps) == set(blocks) and len(blocks) >= 2
    for w in maps.values():
        assert w.shape == (3, 4, 17, 17)
        torch.testing.assert_close(w.sum(-1), torch.ones(3, 4, 17))
    assert net(torch.randn(2, 1, 28, 28)).shape == (2, 4)


def test_shapes_vit_trains_headless_to_90_percent(tmp_path):
    metrics = tmp_path / "m.json"
    done = subprocess.run([sys.executable, "-m", "engine", "train", "shapes-vit", "--quiet",
                           "--metrics-json", str(metrics)], check=False, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    m = json.loads(metrics.read_text())
    assert m["epochs"] == load_preset("shapes-vit").training.epochs
    assert m["test_accuracy"] >= 0.90, m["test_accuracy"]
