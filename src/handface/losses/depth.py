"""Depth terms: depth order between hand and head, and DICE's scale-invariant log depth."""

from __future__ import annotations

import torch
import torch.nn.functional as nnf
from jaxtyping import Float
from torch import Tensor


def depth_order_ranking(
    hand_depth: Float[Tensor, " P"],
    head_depth: Float[Tensor, " P"],
    order: Float[Tensor, " P"],
    margin: float = 0.0,
) -> Float[Tensor, ""]:
    """The avatar paper's ranking loss ``mean(max(0, margin - o * (d_hand - d_head)))``.

    For pixel pairs (p1 on the rendered hand, p2 on the head), ``d_*`` are rendered depths and
    ``o = sign(D(p1) - D(p2))`` is the order in the observed (sensor or monocular) depth map
    ``D``: the rendered pair must keep the observed order by at least ``margin`` (metres).
    Zero for no pairs.

    Example:
        >>> depth_order_ranking(torch.tensor([0.50]), torch.tensor([0.52]), torch.tensor([-1.0]))
        tensor(0.)
        >>> depth_order_ranking(torch.tensor([0.53]), torch.tensor([0.52]), torch.tensor([-1.0]))
        tensor(0.0100)
    """
    if hand_depth.numel() == 0:
        return hand_depth.sum()
    return torch.relu(margin - order * (hand_depth - head_depth)).mean()


def occlusion_cross_entropy(
    hand_depth: Float[Tensor, " P"],
    head_depth: Float[Tensor, " P"],
    hand_in_front: Float[Tensor, " P"],
    temperature: float = 0.005,
) -> Float[Tensor, ""]:
    """Cross-entropy on which of hand and head is in front where they overlap in the image.

    ``p(hand in front) = sigmoid((d_head - d_hand) / temperature)`` (rendered depths, metres)
    against the observed label (1: the image shows the hand over the face, 0: the face over the
    hand). The avatar paper's second depth-order term. Zero for no pixels.

    Example:
        >>> head, front = torch.tensor([0.52]), torch.ones(1)
        >>> near = occlusion_cross_entropy(torch.tensor([0.50]), head, front)
        >>> far = occlusion_cross_entropy(torch.tensor([0.54]), head, front)
        >>> bool(near < 0.02 < far)
        True
    """
    if hand_depth.numel() == 0:
        return hand_depth.sum()
    logits = (head_depth - hand_depth) / temperature
    return nnf.binary_cross_entropy_with_logits(logits, hand_in_front.to(logits))


def depth_behind_hinge(
    hand_depth: Float[Tensor, " P"], head_depth: Float[Tensor, " P"], scale: float = 0.01
) -> Float[Tensor, ""]:
    """Fitting's depth order: ``mean((relu(d_hand - d_head) / scale)^2)``.

    Where the image shows the hand over the face (no observed depth map), each hand point must
    be in front of the head surface behind it; ``scale`` (1 cm) sets the unit. Zero for no
    points.

    Example:
        >>> depth_behind_hinge(torch.tensor([0.51, 0.40]), torch.tensor([0.50, 0.50]))
        tensor(0.5000)
    """
    if hand_depth.numel() == 0:
        return hand_depth.sum()
    return (torch.relu(hand_depth - head_depth) / scale).pow(2).mean()


def scale_invariant_log_depth(
    pred: Float[Tensor, "B N"],
    target: Float[Tensor, "B N"],
    valid: Float[Tensor, "B N"] | None = None,
    eps: float = 1e-7,
) -> Float[Tensor, ""]:
    """DICE's L_depth: ``sqrt(Var(log(pred + eps) - log(target + eps)))`` per item, averaged.

    ``pred`` are predicted keypoint depths, ``target`` the depths read from a (relative)
    monocular depth map at the keypoints; any global scale of either cancels. ``valid`` masks
    points without a depth reading; items with fewer than two valid points contribute 0.

    Example:
        >>> d = torch.tensor([[0.5, 0.6, 0.7]])
        >>> float(scale_invariant_log_depth(d, 3.0 * d)) < 1e-3
        True
    """
    log_diff = torch.log(pred.clamp_min(0) + eps) - torch.log(target.clamp_min(0) + eps)
    if valid is None:
        valid = torch.ones_like(log_diff)
    valid = valid.to(log_diff)
    count = valid.sum(dim=1)
    mean = (log_diff * valid).sum(dim=1) / count.clamp_min(1.0)
    variance = ((log_diff - mean[:, None]).pow(2) * valid).sum(dim=1) / count.clamp_min(1.0)
    # the small floor keeps the gradient of sqrt finite at a perfect prediction
    per_item = torch.sqrt(variance + 1e-12) * (count >= 2).to(log_diff)
    return per_item.mean()
