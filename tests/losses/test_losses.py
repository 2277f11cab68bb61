"""Loss terms against hand-computed values, gradient checks and batch consistency."""

from __future__ import annotations

import doctest
import importlib
import math

import pytest
import torch
import torch.nn.functional as nnf

import handface.losses as losses_package
from handface.losses import (
    avatar_contact_loss,
    cauchy,
    collision_hinge,
    contact_bce,
    contact_pull,
    deformation_loss,
    depth_behind_hinge,
    depth_order_ranking,
    discriminator_loss,
    displacement_regularizer,
    generator_loss,
    masked_l1,
    occlusion_cross_entropy,
    penetration_chamfer,
    pseudo_huber,
    reprojection_l1,
    robust_reprojection,
    scale_invariant_log_depth,
    stiffness_weights,
    touch_chamfer,
)

F64 = torch.float64
MODULES = ["robust", "reprojection", "mesh", "depth", "contact", "deformation", "adversarial"]


def t(values, requires_grad: bool = False) -> torch.Tensor:
    return torch.tensor(values, dtype=F64, requires_grad=requires_grad)


def randn(*shape, seed: int = 0, requires_grad: bool = False) -> torch.Tensor:
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64)
    return x.requires_grad_(requires_grad)


def assert_zero_with_gradient(value: torch.Tensor, *inputs: torch.Tensor) -> None:
    """``value`` is exactly 0, still attached to the graph, with finite zero gradients."""
    assert float(value.detach()) == 0.0
    assert value.requires_grad
    value.backward()
    for x in inputs:
        assert x.grad is not None and bool(torch.isfinite(x.grad).all())
        assert bool((x.grad == 0).all())


# --- doctests and exports -----------------------------------------------------------------------


@pytest.mark.parametrize("name", MODULES)
def test_doctests_of_loss_modules(name):
    module = importlib.import_module(f"handface.losses.{name}")
    result = doctest.testmod(module)
    assert result.attempted >= 2 and result.failed == 0


def test_package_exports_every_term():
    for name in losses_package.__all__:
        assert callable(getattr(losses_package, name)), name
    assert len(losses_package.__all__) == 23


# --- robust kernels -----------------------------------------------------------------------------


def test_cauchy_values():
    torch.testing.assert_close(cauchy(t([0.0, 1.0, math.e - 1.0])), t([0.0, math.log(2.0), 1.0]))


def test_pseudo_huber_values():
    torch.testing.assert_close(pseudo_huber(t([0.0, 8.0, 3.0, 24.0])), t([0.0, 2.0, 1.0, 4.0]))


def test_kernels_are_quadratic_near_zero():
    r2 = t([1e-6, 1e-8])
    torch.testing.assert_close(cauchy(r2) / r2, t([1.0, 1.0]), rtol=0, atol=1e-5)
    torch.testing.assert_close(pseudo_huber(r2) / r2, t([0.5, 0.5]), rtol=0, atol=1e-5)


def test_pseudo_huber_grows_linearly_and_cauchy_saturates():
    r = t([1e3, 1e4, 1e5])
    # pseudo-Huber: sqrt(1 + r^2) - 1 -> |r| - 1, one more unit of residual costs one more
    torch.testing.assert_close(pseudo_huber(r**2), r - 1.0, rtol=0, atol=1e-3)
    step = pseudo_huber((r + 1.0) ** 2) - pseudo_huber(r**2)
    torch.testing.assert_close(step, torch.ones_like(r), rtol=0, atol=1e-3)
    # Cauchy: doubling an outlier's residual costs only log 4 more, whatever its size
    step = cauchy((2 * r) ** 2) - cauchy(r**2)
    torch.testing.assert_close(step, torch.full_like(r, math.log(4.0)), rtol=0, atol=1e-5)


@pytest.mark.parametrize("kernel", [cauchy, pseudo_huber])
def test_kernels_gradcheck(kernel):
    r2 = t([0.0, 0.3, 2.0, 50.0], requires_grad=True)
    assert torch.autograd.gradcheck(kernel, (r2,))


# --- reprojection -------------------------------------------------------------------------------

# one item, three points with L1 errors (mean over x, y) of 2, 0.5 and 5
PRED = [[[1.0, 3.0], [0.5, -0.5], [10.0, 0.0]]]


def test_reprojection_l1_values_and_visibility():
    pred, target = t(PRED), torch.zeros(1, 3, 2, dtype=F64)
    assert float(reprojection_l1(pred, target)) == pytest.approx(2.5)
    assert float(reprojection_l1(pred, target, t([[1.0, 1.0, 0.0]]))) == pytest.approx(1.25)
    # a confidence weights the points
    assert float(reprojection_l1(pred, target, t([[1.0, 0.5, 0.0]]))) == pytest.approx(1.5)
    # boolean visibility reads as 0/1
    visible = torch.tensor([[False, True, True]])
    assert float(reprojection_l1(pred, target, visible)) == pytest.approx(2.75)


def test_reprojection_l1_ignores_invisible_points():
    pred, target = t(PRED, requires_grad=True), torch.zeros(1, 3, 2, dtype=F64)
    visibility = t([[1.0, 0.0, 1.0]])
    base = reprojection_l1(pred, target, visibility)
    moved = pred.detach().clone()
    moved[0, 1] = 1e6
    assert float(reprojection_l1(moved, target, visibility)) == pytest.approx(float(base.detach()))
    base.backward()
    assert float(pred.grad[0, 1].abs().max()) == 0.0
    # d/dp of mean |p - t| / 2 over two visible points: sign / 4
    torch.testing.assert_close(pred.grad[0, 0], t([0.25, 0.25]))


def test_reprojection_l1_is_zero_with_a_gradient_when_nothing_is_visible():
    pred = t(PRED, requires_grad=True)
    value = reprojection_l1(pred, torch.zeros(1, 3, 2, dtype=F64), torch.zeros(1, 3))
    assert_zero_with_gradient(value, pred)


def test_reprojection_l1_pools_visible_points_over_the_batch():
    pred, target = randn(2, 4, 2, seed=1), randn(2, 4, 2, seed=2)
    visibility = t([[1.0, 1.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
    batched = reprojection_l1(pred, target, visibility)
    a = reprojection_l1(pred[:1], target[:1], visibility[:1])
    b = reprojection_l1(pred[1:], target[1:], visibility[1:])
    torch.testing.assert_close(batched, (3 * a + b) / 4)


def test_reprojection_l1_gradcheck():
    pred, target = randn(2, 3, 2, seed=3, requires_grad=True), randn(2, 3, 2, seed=4)
    visibility = t([[1.0, 0.5, 0.0], [1.0, 1.0, 1.0]])
    assert torch.autograd.gradcheck(lambda p: reprojection_l1(p, target, visibility), (pred,))


def test_robust_reprojection_kernels():
    pred, target = t([[3.0, 4.0]]), torch.zeros(1, 2, dtype=F64)  # |residual * 0.2| = 1
    assert float(robust_reprojection(pred, target, 0.2, kernel="squared")) == pytest.approx(1.0)
    assert float(robust_reprojection(pred, target, 0.2)) == pytest.approx(math.log(2.0))
    value = robust_reprojection(pred, target, 0.2, kernel="pseudo_huber")
    assert float(value) == pytest.approx(math.sqrt(2.0) - 1.0)
    # scale 0.4: squared residual 4
    assert float(robust_reprojection(pred, target, 0.4, kernel="squared")) == pytest.approx(4.0)
    assert float(robust_reprojection(pred, target, 0.4)) == pytest.approx(math.log(5.0))
    value = robust_reprojection(pred, target, 0.4, kernel="pseudo_huber")
    assert float(value) == pytest.approx(math.sqrt(5.0) - 1.0)


def test_robust_reprojection_weights():
    pred = t([[3.0, 4.0], [6.0, 8.0], [0.0, 0.0]])  # squared residuals at scale 0.2: 1, 4, 0
    target = torch.zeros(3, 2, dtype=F64)
    value = robust_reprojection(pred, target, 0.2, t([1.0, 0.0, 1.0]), kernel="squared")
    assert float(value) == pytest.approx(0.5)
    value = robust_reprojection(pred, target, 0.2, t([1.0, 3.0, 0.0]), kernel="squared")
    assert float(value) == pytest.approx((1.0 + 12.0) / 4.0)
    value = robust_reprojection(pred, target, 0.2, t([2.0, 2.0, 0.0]))
    assert float(value) == pytest.approx((math.log(2.0) + math.log(5.0)) / 2)


@pytest.mark.parametrize("batch", [2, 3])
@pytest.mark.parametrize("kernel", ["cauchy", "pseudo_huber", "squared"])
def test_robust_reprojection_per_item_scale_is_batch_consistent(batch, kernel):
    pred, target = randn(batch, 5, 2, seed=5), randn(batch, 5, 2, seed=6)
    scale = t([0.5, 2.0, 1.5][:batch])
    batched = robust_reprojection(pred, target, scale, kernel=kernel)
    single = [
        robust_reprojection(pred[i], target[i], float(scale[i]), kernel=kernel)
        for i in range(batch)
    ]
    torch.testing.assert_close(batched, torch.stack(single).mean())
    # a 0-d tensor scale acts as the float
    torch.testing.assert_close(
        robust_reprojection(pred, target, t(0.7), kernel=kernel),
        robust_reprojection(pred, target, 0.7, kernel=kernel),
    )


@pytest.mark.parametrize("kernel", ["cauchy", "pseudo_huber", "squared"])
def test_robust_reprojection_gradcheck(kernel):
    pred, target = randn(2, 4, 2, seed=7, requires_grad=True), randn(2, 4, 2, seed=8)
    scale = t([0.5, 1.5], requires_grad=True)
    weights = t([[1.0, 0.5, 0.0, 2.0], [1.0, 1.0, 1.0, 0.2]])
    assert torch.autograd.gradcheck(
        lambda p, s: robust_reprojection(p, target, s, weights, kernel=kernel), (pred, scale)
    )


# --- masked L1 ----------------------------------------------------------------------------------


def test_masked_l1_values():
    pred = t([[[1.0, -1.0, 2.0]], [[0.0, 3.0, 0.0]]])  # (2, 1, 3): item errors 4/3 and 1
    target = torch.zeros(2, 1, 3, dtype=F64)
    assert float(masked_l1(pred, target)) == pytest.approx((4 / 3 + 1) / 2)
    assert float(masked_l1(pred, target, t([1.0, 0.0]))) == pytest.approx(4 / 3)
    assert float(masked_l1(pred, target, torch.tensor([False, True]))) == pytest.approx(1.0)


def test_masked_l1_ignores_masked_items():
    pred = randn(3, 4, 3, seed=9, requires_grad=True)
    target = randn(3, 4, 3, seed=10)
    mask = t([1.0, 0.0, 1.0])
    value = masked_l1(pred, target, mask)
    moved = pred.detach().clone()
    moved[1] += 100.0
    torch.testing.assert_close(masked_l1(moved, target, mask), value.detach())
    expected = masked_l1(pred.detach()[[0, 2]], target[[0, 2]])
    torch.testing.assert_close(value.detach(), expected)
    value.backward()
    assert float(pred.grad[1].abs().max()) == 0.0
    assert float(pred.grad[0].abs().min()) > 0.0


def test_masked_l1_is_zero_with_a_gradient_when_nothing_counts():
    pred = randn(2, 5, seed=11, requires_grad=True)
    value = masked_l1(pred, torch.zeros(2, 5, dtype=F64), torch.zeros(2))
    assert_zero_with_gradient(value, pred)


def test_masked_l1_gradcheck():
    pred, target = randn(3, 2, 3, seed=12, requires_grad=True), randn(3, 2, 3, seed=13)
    mask = t([1.0, 0.0, 1.0])
    assert torch.autograd.gradcheck(lambda p: masked_l1(p, target, mask), (pred,))


# --- depth order --------------------------------------------------------------------------------


def test_depth_order_ranking_respected_by_the_margin_is_zero():
    # observed: the hand in front (o = -1); rendered 2 cm in front
    value = depth_order_ranking(t([0.50]), t([0.52]), t([-1.0]), margin=0.01)
    assert float(value) == 0.0
    # observed: the hand behind (o = +1); rendered 3 cm behind
    value = depth_order_ranking(t([0.55]), t([0.52]), t([1.0]), margin=0.02)
    assert float(value) == 0.0


def test_depth_order_ranking_is_linear_when_violated():
    head, order = t([0.52, 0.52, 0.52]), t([-1.0, -1.0, -1.0])
    per_pair = [float(depth_order_ranking(t([h]), head[:1], order[:1])) for h in (0.53, 0.54, 0.55)]
    assert per_pair == pytest.approx([0.01, 0.02, 0.03])
    # within the margin it is still penalised: margin - 1 cm
    value = depth_order_ranking(t([0.51]), t([0.52]), t([-1.0]), margin=0.015)
    assert float(value) == pytest.approx(0.005)
    # the sign convention: the same rendered pair is right for o = -1, wrong for o = +1
    assert float(depth_order_ranking(t([0.50]), t([0.52]), t([1.0]))) == pytest.approx(0.02)
    # mean over pairs
    value = depth_order_ranking(t([0.50, 0.56]), t([0.52, 0.52]), t([-1.0, -1.0]))
    assert float(value) == pytest.approx(0.02)


def test_depth_order_ranking_gradient_and_empty():
    hand = t([0.53, 0.50], requires_grad=True)
    depth_order_ranking(hand, t([0.52, 0.52]), t([-1.0, -1.0])).backward()
    assert hand.grad.tolist() == [0.5, 0.0]
    empty = torch.zeros(0, dtype=F64, requires_grad=True)
    assert_zero_with_gradient(depth_order_ranking(empty, empty.detach(), empty.detach()), empty)


def test_occlusion_cross_entropy_values():
    head = t([0.52])
    for label in (0.0, 1.0):
        value = occlusion_cross_entropy(t([0.52]), head, t([label]))
        assert float(value) == pytest.approx(math.log(2.0))
    # 1 cm in front at 5 mm temperature: -log sigmoid(2)
    value = occlusion_cross_entropy(t([0.51]), head, t([1.0]))
    assert float(value) == pytest.approx(math.log1p(math.exp(-2.0)))
    value = occlusion_cross_entropy(t([0.51]), head, t([0.0]))
    assert float(value) == pytest.approx(math.log1p(math.exp(2.0)))
    value = occlusion_cross_entropy(t([0.51]), head, t([1.0]), temperature=0.01)
    assert float(value) == pytest.approx(math.log1p(math.exp(-1.0)))


def test_occlusion_cross_entropy_decreases_as_the_hand_moves_in_front():
    head, hand = t([0.52]), torch.linspace(0.56, 0.48, 41, dtype=F64)
    front = torch.stack([occlusion_cross_entropy(h[None], head, t([1.0])) for h in hand])
    behind = torch.stack([occlusion_cross_entropy(h[None], head, t([0.0])) for h in hand])
    assert bool((front.diff() < 0).all())
    assert bool((behind.diff() > 0).all())


def test_occlusion_cross_entropy_gradcheck_and_empty():
    hand, head = t([0.50, 0.53, 0.52], requires_grad=True), t([0.52, 0.52, 0.515])
    label = t([1.0, 1.0, 0.0])
    assert torch.autograd.gradcheck(lambda h: occlusion_cross_entropy(h, head, label), (hand,))
    empty = torch.zeros(0, dtype=F64, requires_grad=True)
    assert_zero_with_gradient(occlusion_cross_entropy(empty, empty.detach(), empty.detach()), empty)


def test_depth_behind_hinge_values():
    assert float(depth_behind_hinge(t([0.51, 0.40]), t([0.50, 0.50]))) == pytest.approx(0.5)
    assert float(depth_behind_hinge(t([0.40, 0.45]), t([0.50, 0.50]))) == 0.0
    value = depth_behind_hinge(t([0.52]), t([0.50]), scale=0.02)
    assert float(value) == pytest.approx(1.0)
    assert float(depth_behind_hinge(t([0.53]), t([0.50]))) == pytest.approx(9.0)


def test_depth_behind_hinge_gradcheck_and_empty():
    hand, head = t([0.51, 0.40, 0.505], requires_grad=True), t([0.50, 0.50, 0.50])
    assert torch.autograd.gradcheck(lambda h: depth_behind_hinge(h, head), (hand,))
    empty = torch.zeros(0, dtype=F64, requires_grad=True)
    assert_zero_with_gradient(depth_behind_hinge(empty, empty.detach()), empty)


# --- scale-invariant log depth ------------------------------------------------------------------


def test_scale_invariant_log_depth_value():
    # log differences 0 and 1: population variance 1/4, standard deviation 1/2
    value = scale_invariant_log_depth(t([[1.0, math.e]]), t([[1.0, 1.0]]), eps=0.0)
    assert float(value) == pytest.approx(0.5, abs=1e-9)
    # log differences log 1, log 2, log 4: variance (2/3) log(2)^2
    value = scale_invariant_log_depth(t([[1.0, 2.0, 4.0]]), t([[1.0, 1.0, 1.0]]), eps=0.0)
    assert float(value) == pytest.approx(math.sqrt(2.0 / 3.0) * math.log(2.0), abs=1e-9)


def test_scale_invariant_log_depth_is_invariant_to_global_scales():
    pred = 0.4 + torch.rand(3, 6, generator=torch.Generator().manual_seed(14), dtype=F64)
    target = 0.4 + torch.rand(3, 6, generator=torch.Generator().manual_seed(15), dtype=F64)
    base = scale_invariant_log_depth(pred, target)
    assert float(base) > 0.05  # unrelated depths
    for a, b in ((3.0, 1.0), (1.0, 0.2), (7.0, 5.0)):
        torch.testing.assert_close(
            scale_invariant_log_depth(a * pred, b * target), base, rtol=0, atol=1e-5
        )
    # a proportional prediction is perfect, a non-proportional one is not
    assert float(scale_invariant_log_depth(2.5 * target, target)) < 1e-5
    assert float(scale_invariant_log_depth(target + 0.1, target)) > 1e-3


def test_scale_invariant_log_depth_valid_mask():
    pred = t([[0.5, 0.6, 0.7, 9.0], [0.5, 0.6, 0.9, 0.4]])
    target = t([[0.5, 0.7, 0.6, 0.1], [0.4, 0.5, 0.6, 0.7]])
    valid = t([[1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    value = scale_invariant_log_depth(pred, target, valid)
    # item 0: its first three points; item 1: one valid point contributes 0 (still averaged)
    expected = scale_invariant_log_depth(pred[:1, :3], target[:1, :3]) / 2
    torch.testing.assert_close(value, expected)
    # invalid readings do not matter, however wrong
    moved = pred.clone()
    moved[0, 3], moved[1, 1:] = 100.0, 1e-3
    torch.testing.assert_close(scale_invariant_log_depth(moved, target, valid), value)
    assert float(scale_invariant_log_depth(pred, target, torch.zeros(2, 4))) == 0.0


def test_scale_invariant_log_depth_batch_consistency():
    pred = 0.3 + torch.rand(4, 5, generator=torch.Generator().manual_seed(16), dtype=F64)
    target = 0.3 + torch.rand(4, 5, generator=torch.Generator().manual_seed(17), dtype=F64)
    batched = scale_invariant_log_depth(pred, target)
    single = torch.stack(
        [scale_invariant_log_depth(pred[i : i + 1], target[i : i + 1]) for i in range(4)]
    )
    torch.testing.assert_close(batched, single.mean())


def test_scale_invariant_log_depth_finite_gradient_at_a_perfect_prediction():
    target = t([[0.5, 0.6, 0.7], [0.4, 0.45, 0.8]])
    # identical depths: zero variance, where a bare sqrt would give a NaN gradient
    pred = target.clone().requires_grad_(True)
    value = scale_invariant_log_depth(pred, target)
    assert value.item() < 1e-5
    value.backward()
    assert bool((pred.grad == 0).all())
    # proportional depths (without eps, so the log differences agree to rounding)
    pred = (2.0 * target).requires_grad_(True)
    value = scale_invariant_log_depth(pred, target, eps=0.0)
    assert value.item() < 1e-5
    value.backward()
    assert bool(torch.isfinite(pred.grad).all()) and float(pred.grad.abs().max()) < 1e-6
    # with the default eps the gradient stays finite and small
    pred = (2.0 * target).requires_grad_(True)
    scale_invariant_log_depth(pred, target).backward()
    assert bool(torch.isfinite(pred.grad).all()) and float(pred.grad.abs().max()) < 0.1


def test_scale_invariant_log_depth_gradcheck():
    pred = 0.5 + 0.5 * torch.rand(2, 4, generator=torch.Generator().manual_seed(18), dtype=F64)
    target = 0.5 + 0.5 * torch.rand(2, 4, generator=torch.Generator().manual_seed(19), dtype=F64)
    valid = t([[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    pred.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: scale_invariant_log_depth(p, target, valid), (pred,))


# --- contact pull and collision -----------------------------------------------------------------


def test_contact_pull_picks_the_k_nearest():
    signed = t([0.01, -0.001, 0.002, 0.05], requires_grad=True)
    value = contact_pull(signed, k=2, press=0.001)
    # the two nearest: -1 mm (already at -press: 0) and 2 mm ((3 mm / 5 mm)^2 = 0.36)
    assert value.item() == pytest.approx(0.18)
    value.backward()
    # only the chosen points are pulled, each towards -press: 2 (s + press) / scale^2 / k
    torch.testing.assert_close(signed.grad, t([0.0, 0.0, 2 * 0.003 / 0.005**2 / 2, 0.0]))
    # the others may be anything
    assert float(contact_pull(t([0.3, -0.001, 0.002, 9.0]), k=2, press=0.001)) == pytest.approx(
        0.18
    )


def test_contact_pull_reaches_zero_at_the_press_depth():
    assert float(contact_pull(t([-0.002, -0.002, 0.04]), k=2, press=0.002)) == 0.0
    # a point pressed too deep is pulled back out
    signed = t([-0.004, 0.02], requires_grad=True)
    contact_pull(signed, k=1, press=0.002).backward()
    assert float(signed.grad[0]) < 0.0 and float(signed.grad[1]) == 0.0


def test_contact_pull_k_beyond_the_points_uses_all():
    signed = t([0.001, 0.003])
    expected = ((0.002 / 0.005) ** 2 + (0.004 / 0.005) ** 2) / 2
    assert float(contact_pull(signed, k=10, press=0.001)) == pytest.approx(expected)
    assert float(contact_pull(signed, k=2, press=0.001, scale=0.01)) == pytest.approx(expected / 4)


def test_contact_pull_gradcheck():
    signed = t([0.004, 0.03, -0.002, 0.011], requires_grad=True)
    assert torch.autograd.gradcheck(lambda s: contact_pull(s, k=3, press=0.002), (signed,))


def test_collision_hinge_zero_within_the_allowance():
    signed = t([0.01, 0.0, -0.002, -0.003], requires_grad=True)
    assert_zero_with_gradient(collision_hinge(signed, allowance=0.003), signed)


def test_collision_hinge_values_and_gradcheck():
    # only -8 mm is past the 3 mm allowance: (5 mm / 5 mm)^2 over three points
    value = collision_hinge(t([0.01, -0.008, -0.001]), allowance=0.003)
    assert float(value) == pytest.approx(1.0 / 3.0)
    value = collision_hinge(t([-0.013, -0.008]), allowance=0.003, scale=0.01)
    assert float(value) == pytest.approx((1.0 + 0.25) / 2)
    signed = t([0.01, -0.008, -0.001, -0.02], requires_grad=True)
    assert torch.autograd.gradcheck(lambda s: collision_hinge(s, allowance=0.003), (signed,))


# --- DICE touch, contact and collision ----------------------------------------------------------


def touch_case():
    """Face points: two in contact; hand points: one in contact; far points not in contact."""
    face = t([[[0.0, 0.0, 0.0], [0.02, 0.0, 0.0], [0.0, 3.0, 0.0]]])
    hand = t([[[0.0, 0.0, 0.01], [5.0, 0.0, 0.0]]])
    face_p, hand_p = t([[0.9, 0.6, 0.2]]), t([[0.7, 0.5]])
    return face, hand, face_p, hand_p


def test_touch_chamfer_hand_computed():
    face, hand, face_p, hand_p = touch_case()
    # face -> hand: 1 cm and sqrt(2^2 + 1^2) cm; hand -> face: 1 cm
    expected = 0.5 * ((0.01 + math.hypot(0.02, 0.01)) / 2 + 0.01)
    assert float(touch_chamfer(face, hand, face_p, hand_p)) == pytest.approx(expected)


def test_touch_chamfer_needs_contact_on_both_sides():
    face, hand, face_p, hand_p = touch_case()
    # exactly 0.5 is not contact
    assert float(touch_chamfer(face, hand, face_p, t([[0.5, 0.5]]))) == 0.0
    assert float(touch_chamfer(face, hand, t([[0.1, 0.5, 0.0]]), hand_p)) == 0.0


def test_touch_chamfer_batch_mean_and_gradient():
    face, hand, face_p, hand_p = touch_case()
    single = touch_chamfer(face, hand, face_p, hand_p)
    shift = t([0.1, 0.2, 0.3])
    face2 = torch.cat([face, face + shift]).requires_grad_(True)
    hand2 = torch.cat([hand, hand.flip(1) + shift])
    face_p2 = torch.cat([face_p, face_p]).requires_grad_(True)
    hand_p2 = torch.cat([hand_p, hand_p.flip(1)])
    batched = touch_chamfer(face2, hand2, face_p2, hand_p2)
    torch.testing.assert_close(batched, single)  # the same item twice (shifted, reordered)
    # an item without contact counts as 0 in the mean
    half = touch_chamfer(face2, hand2, face_p2, torch.cat([hand_p, torch.zeros(1, 2, dtype=F64)]))
    torch.testing.assert_close(half, single / 2)
    batched.backward()
    assert face_p2.grad is None  # the probabilities only select
    assert float(face2.grad[:, 2].abs().max()) == 0.0  # points not in contact get no pull
    assert float(face2.grad[0, 0].norm()) > 0.0


def test_touch_chamfer_gradcheck():
    face, hand, face_p, hand_p = touch_case()
    face = face.clone().requires_grad_(True)
    hand = hand.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda f, h: touch_chamfer(f, h, face_p, hand_p), (face, hand))


def test_contact_bce_equals_torch_bce():
    logits, labels = randn(3, 5, seed=20), (randn(3, 5, seed=21) > 0).to(F64)
    expected = nnf.binary_cross_entropy(torch.sigmoid(logits), labels)
    torch.testing.assert_close(contact_bce(logits, labels), expected)
    assert float(contact_bce(t([[0.0]]), t([[1.0]]))) == pytest.approx(math.log(2.0))
    assert float(contact_bce(t([[2.0]]), t([[0.0]]))) == pytest.approx(math.log1p(math.exp(2.0)))


def test_contact_bce_respects_the_mask():
    logits, labels = randn(3, 5, seed=22, requires_grad=True), (randn(3, 5, seed=23) > 0).to(F64)
    mask = t([1.0, 0.0, 1.0])
    value = contact_bce(logits, labels, mask)
    expected = nnf.binary_cross_entropy_with_logits(logits.detach()[[0, 2]], labels[[0, 2]])
    torch.testing.assert_close(value.detach(), expected)
    value.backward()
    assert float(logits.grad[1].abs().max()) == 0.0
    logits.grad = None
    assert_zero_with_gradient(contact_bce(logits, labels, torch.zeros(3)), logits)


def test_contact_bce_gradcheck():
    logits, labels = randn(2, 4, seed=24, requires_grad=True), t([[1, 0, 1, 0], [0, 0, 1, 1]])
    mask = t([1.0, 1.0])
    assert torch.autograd.gradcheck(lambda x: contact_bce(x, labels, mask), (logits,))


def chamfer_face():
    face = t([[[0.0, 0.0, 0.0], [0.01, 0.0, 0.0]]])
    normals = t([[[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]])
    return face, normals


def test_penetration_chamfer_counts_only_points_behind_the_normal():
    face, normals = chamfer_face()
    # behind: 3 mm below the first, 1 mm below the second; in front: 2 cm above the first
    hand = t([[[0.0, 0.0, -0.003], [0.011, 0.0, -0.001], [0.0, 0.0, 0.02]]])
    expected = (0.003 + math.hypot(0.001, 0.001)) / 2
    assert float(penetration_chamfer(hand, face, normals)) == pytest.approx(expected)
    # flipped normals: only the point above counts
    assert float(penetration_chamfer(hand, face, -normals)) == pytest.approx(0.02)


def test_penetration_chamfer_batch_mean():
    face, normals = chamfer_face()
    inside = t([[[0.0, 0.0, -0.003], [0.01, 0.0, 0.004]]])
    outside = t([[[0.0, 0.0, 0.003], [0.01, 0.0, 0.004]]])
    assert float(penetration_chamfer(outside, face, normals)) == 0.0
    value = penetration_chamfer(
        torch.cat([inside, outside]), face.expand(2, -1, -1), normals.expand(2, -1, -1)
    )
    assert float(value) == pytest.approx(0.003 / 2)


def test_penetration_chamfer_gradcheck():
    face, normals = chamfer_face()
    hand = t([[[0.001, 0.0005, -0.003], [0.011, 0.0, -0.001], [0.0, 0.0, 0.02]]])
    hand.requires_grad_(True)
    face = face.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda h, f: penetration_chamfer(h, f, normals), (hand, face))


# --- avatar contact loss ------------------------------------------------------------------------

HEAD_SDF = [-0.002, -0.004, -0.02, -0.03, 0.01, -0.001, -0.006]
HAND_SDF = [0.001, 0.004, -0.01, 0.002, 0.0, 0.006, -0.001]


def test_avatar_contact_loss_selections():
    terms = avatar_contact_loss(t(HEAD_SDF), t(HAND_SDF))
    # surface: points 0 and 1 (just inside the head, within 5 mm of the hand); point 5 has the
    # hand 6 mm away, point 2 is too deep
    assert float(terms.surface) == pytest.approx((0.002**2 + 0.004**2) / 2)
    # penetration: points 2 and 6 (deep in the head, inside the hand); point 3 is outside it
    assert float(terms.penetration) == pytest.approx(((0.02 - 0.005) + (0.006 - 0.005)) / 2)
    assert terms._fields == ("surface", "penetration")


def test_avatar_contact_loss_margin():
    terms = avatar_contact_loss(t(HEAD_SDF), t(HAND_SDF), margin=0.01)
    # surface: points 0, 1, 5 (hand < 1 cm) and 6 (-6 mm > -1 cm)
    expected = (0.002**2 + 0.004**2 + 0.001**2 + 0.006**2) / 4
    assert float(terms.surface) == pytest.approx(expected)
    assert float(terms.penetration) == pytest.approx(0.02 - 0.01)


def test_avatar_contact_loss_empty_selections_are_zero_with_a_gradient():
    head = t([0.01, 0.02, -0.003], requires_grad=True)
    terms = avatar_contact_loss(head, t([0.0, 0.0, 0.01]))  # the hand is too far from point 2
    assert terms.surface.item() == 0.0 and terms.penetration.item() == 0.0
    assert terms.surface.requires_grad and terms.penetration.requires_grad
    (terms.surface + terms.penetration).backward()
    assert float(head.grad.abs().max()) == 0.0


def test_avatar_contact_loss_gradcheck():
    head, hand = t(HEAD_SDF, requires_grad=True), t(HAND_SDF)
    assert torch.autograd.gradcheck(lambda h: avatar_contact_loss(h, hand).surface, (head,))
    assert torch.autograd.gradcheck(lambda h: avatar_contact_loss(h, hand).penetration, (head,))


# --- deformation --------------------------------------------------------------------------------


def test_stiffness_weights_values():
    weights = stiffness_weights(t([0.0, 0.5, 1.0]))
    expected = t([1.1**-1.5, 0.6**-1.5, 0.1**-1.5])
    torch.testing.assert_close(weights, expected)
    assert float(weights[0]) == pytest.approx(0.8668, abs=1e-4)
    assert float(weights[1]) == pytest.approx(2.1517, abs=1e-4)
    assert float(weights[2]) == pytest.approx(31.6228, abs=1e-4)
    ratio = float(weights[2] / weights[0])
    assert 36.0 < ratio < 37.0  # "up to 36x"
    assert bool((stiffness_weights(torch.linspace(0, 1, 11, dtype=F64)).diff() > 0).all())


def two_vertex_case():
    """Vertex 0 moves 1 mm, predicted 3 mm; vertex 1 stays, predicted 4 cm (over the limit)."""
    target = torch.zeros(1, 2, 3, dtype=F64)
    target[0, 0, 0] = 0.001
    pred = torch.zeros(1, 2, 3, dtype=F64)
    pred[0, 0, 0] = 0.003
    pred[0, 1, 1] = 0.04
    return pred, target


# per vertex: (1 + 5000 * 0.001) * 0.002^2 and 1 * 0.04^2 + 100 * 0.04
ERRORS = (6 * 0.002**2, 0.04**2 + 100 * 0.04)


def test_deformation_loss_two_vertices():
    pred, target = two_vertex_case()
    assert float(deformation_loss(pred, target)) == pytest.approx(sum(ERRORS) / 2)
    value = deformation_loss(pred, target, weights=t([2.0, 0.5]))
    assert float(value) == pytest.approx((2 * ERRORS[0] + 0.5 * ERRORS[1]) / 2)
    value = deformation_loss(pred, target, magnitude_gain=0.0, limit_weight=10.0)
    assert float(value) == pytest.approx((0.002**2 + 0.04**2 + 10 * 0.04) / 2)
    value = deformation_loss(pred, target, limit=0.05)  # 4 cm is within a 5 cm limit
    assert float(value) == pytest.approx((ERRORS[0] + 0.04**2) / 2)


def test_deformation_loss_penalty_starts_past_three_centimetres():
    target = torch.zeros(1, 1, 3, dtype=F64)
    below, above = target.clone(), target.clone()
    below[0, 0, 2], above[0, 0, 2] = 0.0299, 0.0301
    assert float(deformation_loss(below, target)) == pytest.approx(0.0299**2)
    assert float(deformation_loss(above, target)) == pytest.approx(0.0301**2 + 100 * 0.0301)


def test_deformation_loss_mask_and_batch():
    pred, target = two_vertex_case()
    other = randn(1, 2, 3, seed=25) * 0.01
    pred2, target2 = torch.cat([pred, other]), torch.cat([target, torch.zeros_like(other)])
    single = deformation_loss(pred, target)
    torch.testing.assert_close(deformation_loss(pred2, target2, mask=t([1.0, 0.0])), single)
    both = deformation_loss(pred2, target2)
    torch.testing.assert_close(
        both, (single + deformation_loss(other, torch.zeros_like(other))) / 2
    )
    pred2.requires_grad_(True)
    assert_zero_with_gradient(deformation_loss(pred2, target2, mask=torch.zeros(2)), pred2)


def test_deformation_loss_gradcheck_away_from_the_kink():
    pred = t([[[0.003, 0.001, 0.0], [0.0, 0.04, 0.002]], [[0.01, -0.01, 0.0], [0.0, 0.0, 0.02]]])
    target = t([[[0.001, 0.0, 0.0], [0.0, 0.0, 0.001]], [[0.008, -0.009, 0.0], [0.0, 0.0, 0.0]]])
    pred.requires_grad_(True)
    weights = stiffness_weights(t([0.2, 0.9]))
    assert torch.autograd.gradcheck(
        lambda p: deformation_loss(p, target, weights, t([1.0, 0.5])), (pred,)
    )


def test_displacement_regularizer():
    d = t([[0.01, 0.0, 0.0], [0.0, 0.03, 0.04]])
    assert float(displacement_regularizer(d)) == pytest.approx((1e-4 + 25e-4) / 2)
    batched = torch.stack([d, 2 * d])
    assert float(displacement_regularizer(batched)) == pytest.approx(5 * (1e-4 + 25e-4) / 4)
    d = d.clone().requires_grad_(True)
    displacement_regularizer(d).backward()
    torch.testing.assert_close(d.grad, d.detach())  # 2 d / V with V = 2
    assert torch.autograd.gradcheck(
        displacement_regularizer, (randn(2, 3, 3, seed=26, requires_grad=True),)
    )


# --- adversarial --------------------------------------------------------------------------------


def test_gan_losses_at_logit_zero():
    zero = torch.zeros(4, dtype=F64)
    assert float(discriminator_loss(zero, zero)) == pytest.approx(2 * math.log(2.0))
    assert float(generator_loss(zero)) == pytest.approx(math.log(2.0))


def test_gan_losses_values_and_monotonicity():
    logits = torch.linspace(-5, 5, 21, dtype=F64)
    zero = torch.zeros(1, dtype=F64)
    d_real = torch.stack([discriminator_loss(x[None], zero) for x in logits])
    d_fake = torch.stack([discriminator_loss(zero, x[None]) for x in logits])
    g = torch.stack([generator_loss(x[None]) for x in logits])
    assert bool((d_real.diff() < 0).all())  # more confident on real: lower
    assert bool((d_fake.diff() > 0).all())  # fooled by fakes: higher
    assert bool((g.diff() < 0).all())  # fakes passing as real: lower
    # softplus forms: -log sigmoid(r) - log(1 - sigmoid(f)); mean over the batch
    real, fake = t([2.0, -1.0]), t([0.5, 3.0])
    expected = nnf.softplus(-real).mean() + nnf.softplus(fake).mean()
    torch.testing.assert_close(discriminator_loss(real, fake), expected)
    torch.testing.assert_close(generator_loss(fake), nnf.softplus(-fake).mean())


def test_gan_losses_gradcheck():
    real, fake = t([2.0, -1.0], requires_grad=True), t([0.5, 3.0], requires_grad=True)
    assert torch.autograd.gradcheck(discriminator_loss, (real, fake))
    assert torch.autograd.gradcheck(generator_loss, (fake,))


def test_clearance_hinge_counts_only_the_nearest_points():
    from handface.losses import clearance_hinge, collision_hinge

    signed = torch.tensor([0.002, 0.05, 0.08, 0.09])
    # the one point 2 mm from the skin is 5 mm short of a 7 mm clearance: ((5 mm) / 5 mm)^2
    assert float(clearance_hinge(signed, clearance=0.007, k=1)) == pytest.approx(1.0)
    assert float(clearance_hinge(signed, clearance=0.007, k=2)) == pytest.approx(0.5)
    # the same rule over the whole hand dilutes it by the points far away
    assert float(collision_hinge(signed, -0.007)) == pytest.approx(0.25)
    assert float(clearance_hinge(signed + 0.01, clearance=0.007, k=2)) == 0.0
