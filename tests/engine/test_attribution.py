"""engine.attribution: saliency maps land on the pixels that decide the class, FGSM hurts, and nothing leaks."""
from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from engine.attribution import METHODS, attribute, fgsm, predict

STEPS, BATCH, LR = 300, 32, 3e-2
SIZE, PATCH = 16, 6  # the class is decided by the top-left PATCH×PATCH corner of a SIZE×SIZE image


class AddCoords(nn.Module):
    """Appends the pixel's row and column (in [-1, 1]) as two channels, so convolutions can tell where they are."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        rows = torch.linspace(-1, 1, h).view(1, 1, h, 1).expand(b, 1, h, w)
        cols = torch.linspace(-1, 1, w).view(1, 1, 1, w).expand(b, 1, h, w)
        return torch.cat([x, rows, cols], dim=1)


class TinyCNN(nn.Module):
    """Coordinates, a 2×2 stride-2 conv with batch norm, a 1×1 conv, global average pooling, dropout, dense.

    Chosen so that a trained model's dependence on the patch is sharp rather than smeared by the architecture:
    non-overlapping 2×2 receptive fields (which the 6×6 corner patch is aligned with) do not leak sensitivity into a
    border around the patch, and with global pooling the convolutions themselves must find the patch, which they can
    only do from the coordinates, so Grad-CAM's channel maps are about the patch too (with a dense head they would
    not be, whatever the attribution code did).
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(AddCoords(), nn.Conv2d(3, 8, 2, stride=2), nn.BatchNorm2d(8), nn.ReLU(),
                                      nn.Conv2d(8, 8, 1), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(8, 2))

    @property
    def cam_layer(self) -> nn.Module:
        return self.features[4]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def make_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Uniform noise in [-1, 1] everywhere, and in the corner patch a level ±[0.3, 1] plus a little noise; the class
    is whether the patch mean is above 0. Centred on 0 so that integrated gradients' zero baseline is not itself one
    of the classes (a black patch in a [0, 1] image would get no attribution from it)."""
    g = torch.Generator().manual_seed(seed)
    x = 2 * torch.rand(n, 1, SIZE, SIZE, generator=g) - 1
    level = 0.3 + 0.7 * torch.rand(n, 1, 1, generator=g)
    level = torch.where(torch.rand(n, 1, 1, generator=g) < 0.5, level, -level)
    x[:, 0, :PATCH, :PATCH] = (level + 0.1 * torch.randn(n, PATCH, PATCH, generator=g)).clamp(-1, 1)
    y = (x[:, 0, :PATCH, :PATCH].mean(dim=(1, 2)) > 0).long()
    return x, y


def fresh_model(seed: int = 0) -> TinyCNN:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return TinyCNN()


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, seed: int) -> None:
    """Adam on cross-entropy, written out: ``torch.optim`` imports ``torch._dynamo``, which takes longer (≈ 3 s here)
    than the training itself. Uses ``autograd.grad``, so no ``.grad`` is left on the parameters."""
    params = list(model.parameters())
    m1 = [torch.zeros_like(p) for p in params]
    m2 = [torch.zeros_like(p) for p in params]
    model.train()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for t in range(1, STEPS + 1):
            idx = torch.randint(0, len(x), (BATCH,))
            grads = torch.autograd.grad(F.cross_entropy(model(x[idx]), y[idx]), params)
            with torch.no_grad():
                for p, g, a, b in zip(params, grads, m1, m2, strict=True):
                    a.lerp_(g, 0.1)
                    b.lerp_(g * g, 0.001)
                    p.sub_(LR * (a / (1 - 0.9**t)) / ((b / (1 - 0.999**t)).sqrt() + 1e-8))
    model.eval()


@pytest.fixture(scope="module")
def trained() -> TinyCNN:
    model = fresh_model()
    train(model, *make_data(2048, seed=1), seed=2)
    return model


@pytest.fixture(scope="module")
def test_data() -> tuple[torch.Tensor, torch.Tensor]:
    return make_data(100, seed=3)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return (predict(model, x)[0] == y).float().mean().item()


def patch_share(a: torch.Tensor) -> torch.Tensor:
    """Per sample, the share of |attribution| that lies in the deciding patch."""
    mass = a.abs().sum(dim=1)
    return mass[:, :PATCH, :PATCH].sum(dim=(1, 2)) / mass.sum(dim=(1, 2)).clamp_min(1e-30)


# The patch is 14 % of the image. Measured: the 20th percentile of the patch's share is 0.81 for gradient and
# smoothgrad, 0.92 for gradcam and 0.96 for integrated gradients (at worst 0.49, 0.69 and 0.79 over eight other
# training seeds), while the untrained model's 80th percentile is 0.18 to 0.25 (at most 0.37 for the gradient
# methods over other initialisations); so 40 % of the mass for 80 % of the samples has margin on both sides.
MASS, SAMPLES = 0.4, 0.8


def share_ok(a: torch.Tensor) -> bool:
    """Whether more than MASS of the attribution lies in the patch for at least SAMPLES of the samples."""
    return (patch_share(a) > MASS).float().mean().item() >= SAMPLES


def run(model: nn.Module, x: torch.Tensor, target: torch.Tensor, method: str, **kw: object) -> torch.Tensor:
    layer = getattr(model, "cam_layer", None)
    return attribute(model, x, target, method, layer=layer, **kw)  # type: ignore[arg-type]


def test_trained_model_is_accurate(trained: TinyCNN, test_data: tuple[torch.Tensor, torch.Tensor]) -> None:
    assert accuracy(trained, *test_data) > 0.95


@pytest.mark.parametrize("method", METHODS)
def test_attribution_lands_on_the_deciding_patch(trained: TinyCNN, test_data: tuple[torch.Tensor, torch.Tensor],
                                                 method: str) -> None:
    x, y = test_data
    a = run(trained, x, y, method)
    assert share_ok(a), f"{method}: patch shares {patch_share(a)}"
    # The check has teeth: the same map moved to the opposite corner, or an untrained model's map, fails it.
    assert not share_ok(torch.roll(a, shifts=(SIZE // 2, SIZE // 2), dims=(2, 3)))
    assert not share_ok(run(fresh_model(seed=5), x, y, method))


@pytest.mark.parametrize("method", METHODS)
def test_shape_finite_and_deterministic(trained: TinyCNN, method: str) -> None:
    x, y = make_data(8, seed=4)
    a = run(trained, x, y, method, samples=4, steps=8)
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.isfinite(a).all() and not a.requires_grad and a.grad_fn is None
    trained.train()  # eval mode is the function's business: dropout and batch statistics must not change the map
    try:
        assert torch.equal(a, run(trained, x, y, method, samples=4, steps=8))
    finally:
        trained.eval()
    if method == "gradient":
        assert (a >= 0).all()
    if method == "gradcam":  # one map, repeated over the channels, ReLU'd
        x3 = x.expand(-1, 3, -1, -1).contiguous()  # a plain 3-channel CNN
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model3 = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(4), nn.Flatten(),
                                   nn.Linear(4 * (SIZE // 4) ** 2, 2))
        a3 = attribute(model3, x3, y, "gradcam", layer=model3[1])
        assert a3.shape == x3.shape and (a3 >= 0).all() and (a3 > 0).any()
        assert torch.equal(a3[:, 0], a3[:, 1]) and torch.equal(a3[:, 0], a3[:, 2])


def test_gradient_is_the_targets_input_gradient(trained: TinyCNN) -> None:
    x, y = make_data(8, seed=10)
    for target in (y, 1 - y):
        xr = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(trained(xr).gather(1, target[:, None]).sum(), xr)
        assert torch.allclose(attribute(trained, x, target, "gradient"), grad.abs(), rtol=1e-5, atol=1e-7)


def test_gradcam_matches_its_definition(trained: TinyCNN) -> None:
    """ReLU(Σ_k mean(∂logit/∂A_k)·A_k) on the layer, bilinearly upsampled, repeated over the input channels."""
    x, y = make_data(8, seed=12)
    seen: list[torch.Tensor] = []
    handle = trained.cam_layer.register_forward_hook(lambda module, args, out: seen.append(out))
    try:
        logits = trained(x)
    finally:
        handle.remove()
    (grad,) = torch.autograd.grad(logits.gather(1, y[:, None]).sum(), seen[0])
    cam = F.relu((grad.mean(dim=(2, 3), keepdim=True) * seen[0]).sum(dim=1, keepdim=True))
    want = F.interpolate(cam, size=(SIZE, SIZE), mode="bilinear").expand_as(x)
    assert torch.allclose(attribute(trained, x, y, "gradcam", layer=trained.cam_layer), want, rtol=1e-5, atol=1e-6)


def test_integrated_gradients_is_signed_and_complete(trained: TinyCNN) -> None:
    """Completeness: the attributions add up to logit(x) − logit(0) for the target class (zero baseline)."""
    x, y = make_data(16, seed=11)
    for target in (y, 1 - y):
        a = attribute(trained, x, target, "integrated_gradients")
        assert (a < 0).any() and (a > 0).any()
        with torch.no_grad():
            gap = (trained(x) - trained(torch.zeros_like(x))).gather(1, target[:, None])[:, 0]
        assert torch.allclose(a.sum(dim=(1, 2, 3)), gap, rtol=0.03, atol=1e-3)


def test_smoothgrad_seed_and_global_rng(trained: TinyCNN) -> None:
    x, y = make_data(4, seed=6)
    state = torch.get_rng_state()
    a = run(trained, x, y, "smoothgrad", seed=0)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a, run(trained, x, y, "smoothgrad", seed=0))
    assert not torch.equal(a, run(trained, x, y, "smoothgrad", seed=1))
    assert not torch.equal(a, run(trained, x, y, "gradient"))  # the noise does something
    assert torch.equal(torch.get_rng_state(), state)


def hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               + len(m._backward_pre_hooks) for m in model.modules())


CALLS: dict[str, Callable[[TinyCNN, torch.Tensor, torch.Tensor], object]] = {
    **{m: (lambda model, x, y, m=m: run(model, x, y, m, samples=2, steps=4)) for m in METHODS},
    "fgsm": lambda model, x, y: fgsm(model, x, y, 0.1),
    "fgsm_clamped": lambda model, x, y: fgsm(model, x, y, 0.1, clamp=(-1.0, 1.0)),
    "predict": lambda model, x, y: predict(model, x),
}


@pytest.mark.parametrize("x_requires_grad", [False, True])
@pytest.mark.parametrize("name", CALLS)
def test_no_side_effects(name: str, x_requires_grad: bool) -> None:
    model = fresh_model()
    model.train()
    model.features[2].eval()  # mixed flags: each submodule must get its own back
    flags = [m.training for m in model.modules()]
    preset = model.head[3].weight
    preset.grad = torch.full_like(preset, 0.25)
    model.features[1].bias.requires_grad_(False)
    requires = [p.requires_grad for p in model.parameters()]
    grads = [None if p.grad is None else p.grad.clone() for p in model.parameters()]
    state = {k: v.clone() for k, v in model.state_dict().items()}  # params and BN's running statistics
    x, y = make_data(4, seed=7)
    x.requires_grad_(x_requires_grad)
    x_before = x.detach().clone()
    rng = torch.get_rng_state()

    out = CALLS[name](model, x, y)

    for t in out if isinstance(out, tuple) else (out,):
        assert isinstance(t, torch.Tensor) and not t.requires_grad and t.grad_fn is None
    assert [m.training for m in model.modules()] == flags
    assert [p.requires_grad for p in model.parameters()] == requires
    for p, g in zip(model.parameters(), grads, strict=True):
        assert (p.grad is None) if g is None else torch.equal(p.grad, g)
    assert preset.grad is not None
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    assert hooks(model) == 0
    assert torch.equal(x.detach(), x_before) and x.requires_grad == x_requires_grad and x.grad is None
    assert torch.equal(torch.get_rng_state(), rng)


class Exploding(TinyCNN):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        super().forward(x)
        raise RuntimeError("boom")


@pytest.mark.parametrize("name", CALLS)
def test_flags_restored_on_error(name: str) -> None:
    with torch.random.fork_rng(devices=[]):
        model = Exploding()
    model.train()
    model.head[2].eval()
    flags = [m.training for m in model.modules()]
    x, y = make_data(2, seed=8)
    with pytest.raises(RuntimeError, match="boom"):
        CALLS[name](model, x, y)
    assert [m.training for m in model.modules()] == flags
    assert hooks(model) == 0


def test_predict(trained: TinyCNN, test_data: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, _ = test_data
    trained.train()  # dropout would make two calls differ if predict did not switch to eval
    try:
        cls, probs = predict(trained, x)
        cls2, probs2 = predict(trained, x)
    finally:
        trained.eval()
    assert cls.dtype == torch.int64 and cls.shape == (len(x),) and probs.shape == (len(x), 2)
    assert torch.equal(probs, probs2) and torch.equal(cls, cls2) and torch.equal(cls, probs.argmax(dim=1))
    assert torch.allclose(probs.sum(dim=1), torch.ones(len(x))) and not probs.requires_grad


def test_fgsm_eps_zero_is_identity(trained: TinyCNN, test_data: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = test_data
    x = x.clone()
    x[:, :, ::3, ::3] = -0.0  # x + 0·sign(g) would turn some of these into +0.0
    adv = fgsm(trained, x, y, 0.0)
    assert torch.equal(adv.view(torch.int32), x.view(torch.int32)) and adv.data_ptr() != x.data_ptr()
    assert accuracy(trained, adv, y) == accuracy(trained, x, y)


def test_fgsm_hurts_and_moves_by_eps(trained: TinyCNN, test_data: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = test_data
    eps = 0.5  # the patch mean is at least 0.3 from the class boundary, so a small step cannot flip many samples
    adv = fgsm(trained, x, y, eps)
    assert (adv - x).abs().max().item() == pytest.approx(eps, abs=1e-6)
    with torch.no_grad():
        assert F.cross_entropy(trained(adv), y) > F.cross_entropy(trained(x), y) + 0.5
    assert accuracy(trained, adv, y) < accuracy(trained, x, y) - 0.2
    # The reference step: x + eps·sign(∂ CE / ∂x), computed here by hand.
    xr = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(trained(xr), y, reduction="sum"), xr)
    assert torch.allclose(adv, x + eps * grad.sign(), atol=1e-6, rtol=0)
    assert adv.max() > 1 and adv.min() < -1  # no clamp unless asked
    clamped = fgsm(trained, x, y, eps, clamp=(-1.0, 1.0))
    assert clamped.min() >= -1 and clamped.max() <= 1
    assert torch.equal(clamped, adv.clamp(-1, 1))


def test_fgsm_custom_loss(trained: TinyCNN, test_data: tuple[torch.Tensor, torch.Tensor]) -> None:
    """A scalar loss works, and minus the loss steps the other way (a targeted-style step)."""
    x, y = test_data
    up = fgsm(trained, x, y, 0.05) - x
    down = fgsm(trained, x, y, 0.05, loss=lambda logits, t: -F.cross_entropy(logits, t)) - x
    assert torch.allclose(down, -up, atol=1e-6, rtol=0)
    assert accuracy(trained, x + down, y) >= accuracy(trained, x, y)


def test_bad_arguments(trained: TinyCNN) -> None:
    x, y = make_data(4, seed=9)
    with pytest.raises(ValueError, match="'saliency'.*gradient, smoothgrad, integrated_gradients, gradcam"):
        attribute(trained, x, y, "saliency")
    with pytest.raises(ValueError, match="layer"):
        attribute(trained, x, y, "gradcam")
    with pytest.raises(ValueError, match="submodule"):
        attribute(trained, x, y, "gradcam", layer=nn.Conv2d(1, 1, 3))
    with pytest.raises(ValueError, match="conv"):
        attribute(trained, x, y, "gradcam", layer=trained.head[3])  # dense: no spatial map
    for bad in (y[:3], y[:, None], torch.tensor(1)):
        with pytest.raises(ValueError, match="target"):
            attribute(trained, x, bad, "gradient")
    with pytest.raises(ValueError, match="eps"):
        fgsm(trained, x, y, -0.1)
    with pytest.raises(ValueError, match="clamp"):
        fgsm(trained, x, y, 0.1, clamp=(1.0, 0.0))
