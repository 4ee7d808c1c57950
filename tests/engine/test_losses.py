"""Focal, OHEM and box losses against torch/torchvision references; numpy curves against torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss as tv_focal

from engine.losses import curves
from engine.losses.box import l1_loss, l2_loss, smooth_l1
from engine.losses.focal import sigmoid_focal_loss, softmax_focal_loss
from engine.losses.ohem import ohem_loss, ohem_select


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize(("alpha", "gamma"), [(0.25, 2.0), (0.5, 0.0), (-1.0, 1.5), (1.0, 3.0)])
def test_sigmoid_focal_matches_torchvision(gen, reduction, alpha, gamma):
    x = torch.randn(6, 5, generator=gen) * 3
    t = (torch.rand(6, 5, generator=gen) > 0.7).float()
    ours = sigmoid_focal_loss(x, t, alpha=alpha, gamma=gamma, reduction=reduction)
    ref = tv_focal(x, t, alpha=alpha, gamma=gamma, reduction=reduction)
    torch.testing.assert_close(ours, ref)


def test_sigmoid_focal_gradients_match_torchvision(gen):
    x1 = (torch.randn(20, generator=gen) * 2).requires_grad_()
    x2 = x1.detach().clone().requires_grad_()
    t = (torch.rand(20, generator=gen) > 0.5).float()
    sigmoid_focal_loss(x1, t, reduction="sum").backward()
    tv_focal(x2, t, reduction="sum").backward()
    torch.testing.assert_close(x1.grad, x2.grad)


def test_sigmoid_focal_gamma0_no_alpha_is_bce(gen):
    x = torch.randn(4, 7, generator=gen) * 2
    t = torch.rand(4, 7, generator=gen).round()
    ours = sigmoid_focal_loss(x, t, alpha=-1, gamma=0.0, reduction="mean")
    torch.testing.assert_close(ours, F.binary_cross_entropy_with_logits(x, t))


def test_sigmoid_focal_rejects_bad_arguments():
    x = torch.zeros(3)
    with pytest.raises(ValueError, match="reduction"):
        sigmoid_focal_loss(x, x, reduction="avg")
    with pytest.raises(ValueError, match="alpha"):
        sigmoid_focal_loss(x, x, alpha=1.5)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_softmax_focal_gamma0_is_cross_entropy(gen, reduction):
    logits = torch.randn(12, 4, generator=gen) * 2
    target = torch.randint(0, 4, (12,), generator=gen)
    ours = softmax_focal_loss(logits, target, gamma=0.0, reduction=reduction)
    torch.testing.assert_close(ours, F.cross_entropy(logits, target, reduction=reduction))


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_softmax_focal_gamma0_ignore_index_and_class_weights(gen, reduction):
    logits = torch.randn(2, 3, 5, 4, generator=gen)
    target = torch.randint(0, 3, (2, 5, 4), generator=gen)
    target[0, :2] = 255
    w = torch.tensor([0.2, 1.0, 3.0])
    ours = softmax_focal_loss(logits, target, alpha=w, gamma=0.0, reduction=reduction, ignore_index=255)
    ref = F.cross_entropy(logits, target, weight=w, reduction=reduction, ignore_index=255)
    torch.testing.assert_close(ours, ref)
    plain = softmax_focal_loss(logits, target, gamma=0.0, reduction=reduction, ignore_index=255)
    torch.testing.assert_close(plain, F.cross_entropy(logits, target, reduction=reduction, ignore_index=255))


def test_softmax_focal_formula_and_down_weighting(gen):
    logits = torch.randn(10, 3, generator=gen) * 3
    target = torch.randint(0, 3, (10,), generator=gen)
    p_t = logits.softmax(1)[torch.arange(10), target]
    expected = -0.5 * (1 - p_t) ** 2 * p_t.log()
    torch.testing.assert_close(softmax_focal_loss(logits, target, alpha=0.5, reduction="none"), expected)
    ce = F.cross_entropy(logits, target, reduction="none")
    assert torch.all(softmax_focal_loss(logits, target, reduction="none") <= ce + 1e-7)


def test_softmax_focal_all_ignored_is_zero_with_grad():
    logits = torch.randn(3, 2, requires_grad=True)
    loss = softmax_focal_loss(logits, torch.full((3,), -100))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.all(logits.grad == 0)


def test_softmax_focal_rejects_bad_arguments():
    logits, target = torch.zeros(4, 3), torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match="reduction"):
        softmax_focal_loss(logits, target, reduction="batchmean")
    with pytest.raises(ValueError, match="target shape"):
        softmax_focal_loss(logits, torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="alpha"):
        softmax_focal_loss(logits, target, alpha=torch.ones(2))
    with pytest.raises(ValueError, match="integer"):
        softmax_focal_loss(logits, target.float())


def test_ohem_selects_top_k_and_grads_only_there(gen):
    x = torch.randn(10, generator=gen).requires_grad_()
    per_sample = x**2
    idx = ohem_select(per_sample, 3)
    assert not idx.requires_grad
    expected = torch.argsort(per_sample.detach(), descending=True)[:3]
    assert set(idx.tolist()) == set(expected.tolist())
    loss = ohem_loss(per_sample, 3)
    torch.testing.assert_close(loss, per_sample.detach()[expected].mean())
    loss.backward()
    nonzero = set(torch.nonzero(x.grad).flatten().tolist())
    assert nonzero == set(expected.tolist())


def test_ohem_k_at_least_n_and_reductions():
    losses = torch.tensor([0.5, 2.0, 1.0])
    assert sorted(ohem_select(losses, 10).tolist()) == [0, 1, 2]
    assert ohem_select(losses, 0).numel() == 0
    assert ohem_loss(losses, 0).item() == 0.0
    assert ohem_loss(losses, 2, reduction="sum").item() == pytest.approx(3.0)
    assert ohem_loss(losses, 2, reduction="none").tolist() == [2.0, 1.0]
    with pytest.raises(ValueError, match="reduction"):
        ohem_loss(losses, 2, reduction="max")
    with pytest.raises(ValueError, match="1-D"):
        ohem_select(torch.zeros(2, 2), 1)


@pytest.mark.parametrize("beta", [0.0, 1 / 9, 0.5, 1.0, 2.0])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_smooth_l1_matches_torch(gen, beta, reduction):
    a = torch.randn(8, 4, generator=gen) * 2
    b = torch.randn(8, 4, generator=gen)
    ref = F.smooth_l1_loss(a, b, beta=beta, reduction=reduction)
    torch.testing.assert_close(smooth_l1(a, b, beta=beta, reduction=reduction), ref)


def test_smooth_l1_beta0_is_l1_and_helpers(gen):
    a, b = torch.randn(5, 4, generator=gen), torch.randn(5, 4, generator=gen)
    torch.testing.assert_close(smooth_l1(a, b, beta=0.0), l1_loss(a, b))
    torch.testing.assert_close(l1_loss(a, b, reduction="mean"), F.l1_loss(a, b))
    torch.testing.assert_close(l2_loss(a, b, reduction="mean"), 0.5 * F.mse_loss(a, b))
    with pytest.raises(ValueError, match="beta"):
        smooth_l1(a, b, beta=-1.0)


P_GRID = np.linspace(1e-4, 1 - 1e-4, 101)
X_GRID = np.linspace(-3.0, 3.0, 121)


def test_ce_and_focal_curves_match_torch():
    # p_t = sigmoid(x) with target 1, so the curves must equal the torch losses at those logits
    logits = torch.logit(torch.as_tensor(P_GRID, dtype=torch.float64))
    ones = torch.ones_like(logits)
    ce = F.binary_cross_entropy_with_logits(logits, ones, reduction="none").numpy()
    np.testing.assert_allclose(curves.ce_curve(P_GRID), ce, rtol=1e-9, atol=1e-12)
    for gamma, alpha in [(0.0, None), (2.0, None), (2.0, 0.25), (5.0, 0.75)]:
        ref = tv_focal(logits, ones, alpha=-1 if alpha is None else alpha, gamma=gamma).numpy()
        np.testing.assert_allclose(curves.focal_curve(P_GRID, gamma, alpha), ref, rtol=1e-9, atol=1e-12)
    assert curves.focal_curve(np.array([0.0]), 2.0)[0] == np.inf
    assert curves.focal_curve(np.array([1.0]), 2.0)[0] == 0.0


@pytest.mark.parametrize("beta", [0.0, 1 / 9, 0.5, 1.0, 2.0])
def test_smooth_l1_curve_and_grad_match_torch(beta):
    x = torch.as_tensor(X_GRID, dtype=torch.float64).requires_grad_()
    loss = F.smooth_l1_loss(x, torch.zeros_like(x), beta=beta, reduction="none")
    loss.sum().backward()
    np.testing.assert_allclose(curves.smooth_l1_curve(X_GRID, beta), loss.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(curves.smooth_l1_grad(X_GRID, beta), x.grad.numpy(), atol=1e-12)


def test_l1_l2_curves():
    np.testing.assert_allclose(curves.l1_curve(X_GRID), np.abs(X_GRID))
    t = torch.as_tensor(X_GRID)
    np.testing.assert_allclose(curves.l2_curve(X_GRID), l2_loss(t, torch.zeros_like(t), reduction="none").numpy())


def test_l1_l2_grads_match_torch():
    x = torch.as_tensor(X_GRID, dtype=torch.float64).requires_grad_()
    l1_loss(x, torch.zeros_like(x), reduction="sum").backward()
    np.testing.assert_allclose(curves.l1_grad(X_GRID), x.grad.numpy(), atol=1e-12)
    x.grad = None
    l2_loss(x, torch.zeros_like(x), reduction="sum").backward()
    np.testing.assert_allclose(curves.l2_grad(X_GRID), x.grad.numpy(), atol=1e-12)


@pytest.mark.parametrize("z", [[2.0, -1.0, 0.5], [-30.0, 0.0, 40.0], [0.0, 0.0, 0.0]])
def test_multilabel_and_single_label_curves_match_torch(z):
    zt = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    y = [1.0, 0.0, 1.0]
    bce = F.binary_cross_entropy_with_logits(zt, torch.tensor(y, dtype=torch.float64), reduction="none")
    np.testing.assert_allclose(curves.sigmoid(z), torch.sigmoid(zt).detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(curves.sigmoid_bce(z, y), bce.detach().numpy(), rtol=1e-9, atol=1e-12)
    bce.sum().backward()
    np.testing.assert_allclose(curves.sigmoid_bce_grad(z, y), zt.grad.numpy(), atol=1e-12)
    for target in range(3):
        zt.grad = None
        ce = F.cross_entropy(zt[None], torch.tensor([target]))
        assert curves.softmax_ce(z, target) == pytest.approx(ce.item(), rel=1e-9, abs=1e-12)
        ce.backward()
        np.testing.assert_allclose(curves.softmax_ce_grad(z, target), zt.grad.numpy(), atol=1e-12)
    p = curves.softmax(z)
    np.testing.assert_allclose(p, torch.softmax(zt, 0).detach().numpy(), rtol=1e-12)
    assert p.sum() == pytest.approx(1.0)
