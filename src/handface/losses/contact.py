"""Contact terms: pulling a touching hand onto the skin, collision, DICE's touch / contact /
collision losses, and the avatar paper's physics-inspired contact loss.

Signed distances are negative inside (:mod:`handface.geometry.contact`), metres.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as nnf
from jaxtyping import Float
from torch import Tensor

from handface.geometry.contact import CONTACT_DISTANCE, CONTACT_PROBABILITY_THRESHOLD


def contact_pull(
    signed: Float[Tensor, " N"], k: int, press: float, scale: float = 0.005
) -> Float[Tensor, ""]:
    """Contact regularization: the ``k`` hand points nearest the skin are pulled to ``-press``.

    ``signed`` are the candidates' signed distances to the head; the ``k`` smallest are moved
    to ``press`` metres inside (a small press the soft-tissue solver turns into deformation):
    ``mean(((s + press) / scale)^2)``. Which points touch is chosen geometrically by the
    caller (never from a gesture name); the avatar paper pulls designated fingertip/palm
    vertices with weight 500.

    Example:
        >>> contact_pull(torch.tensor([0.004, 0.03, -0.002]), k=2, press=0.002)
        tensor(0.7200)
    """
    k = min(k, signed.numel())
    nearest = torch.topk(signed, k, largest=False).values
    return ((nearest + press) / scale).pow(2).mean()


def collision_hinge(
    signed: Float[Tensor, " N"], allowance: float, scale: float = 0.005
) -> Float[Tensor, ""]:
    """Collision: ``mean((relu(-s - allowance) / scale)^2)`` over the hand points.

    Points deeper than ``allowance`` inside the head are pushed out (fitting allows the press
    depth plus a millimetre).

    Example:
        >>> collision_hinge(torch.tensor([0.01, -0.008, -0.001]), allowance=0.003)
        tensor(0.3333)
    """
    return (torch.relu(-signed - allowance) / scale).pow(2).mean()


def clearance_hinge(
    signed: Float[Tensor, " N"], clearance: float, k: int, scale: float = 0.005
) -> Float[Tensor, ""]:
    """Keep a hand judged not touching ``clearance`` metres off the skin: the hinge of
    :func:`collision_hinge` on the ``k`` hand points nearest the skin (their mean, so a few
    points on the skin are not diluted by the rest of the hand).

    Example:
        >>> clearance_hinge(torch.tensor([0.002, 0.05, 0.08]), clearance=0.007, k=1)
        tensor(1.)
    """
    nearest = torch.topk(signed, min(k, signed.numel()), largest=False).values
    return collision_hinge(nearest, -clearance, scale)


def touch_chamfer(
    face_points: Float[Tensor, "B Nf 3"],
    hand_points: Float[Tensor, "B Nh 3"],
    face_probability: Float[Tensor, "B Nf"],
    hand_probability: Float[Tensor, "B Nh"],
) -> Float[Tensor, ""]:
    """DICE's L_touch: symmetric mean Chamfer between the face and hand points predicted in
    contact (probability > 0.5), metres.

    Pulls the surfaces together where the network says they touch. Items where either side has
    no point in contact contribute 0; the result is the mean over the batch. Probabilities act
    as a (non-differentiable) selection.

    Example:
        >>> face = torch.tensor([[[0.0, 0, 0], [1, 0, 0]]])
        >>> hand = torch.tensor([[[0.0, 0, 0.01], [5, 0, 0]]])
        >>> touch_chamfer(face, hand, torch.tensor([[0.9, 0.1]]), torch.tensor([[0.8, 0.2]]))
        tensor(0.0100)
    """
    total = face_points.new_zeros(())
    face_on = face_probability.detach() > CONTACT_PROBABILITY_THRESHOLD
    hand_on = hand_probability.detach() > CONTACT_PROBABILITY_THRESHOLD
    for i in range(face_points.shape[0]):
        if not face_on[i].any() or not hand_on[i].any():
            continue
        f, h = face_points[i][face_on[i]], hand_points[i][hand_on[i]]
        distance = torch.cdist(f, h)
        total = total + 0.5 * (distance.amin(dim=1).mean() + distance.amin(dim=0).mean())
    return total / face_points.shape[0]


def contact_bce(
    logits: Float[Tensor, "B N"],
    labels: Float[Tensor, "B N"],
    mask: Float[Tensor, " B"] | None = None,
    positive_weight: float = 1.0,
) -> Float[Tensor, ""]:
    """DICE's L_contact: binary cross-entropy of per-vertex contact logits against 0/1 labels.

    ``mask`` drops items without contact labels (in-the-wild images). Zero when none count.
    ``positive_weight`` multiplies the terms of the contact (label 1) vertices, which are a few
    percent of a face: with weight w the loss is minimal where ``sigmoid(logit) = w p / (w p +
    1 - p)`` for a true contact rate p, so a vertex passes 0.5 from p = 1 / (1 + w) on
    (the paper: 1, plain BCE).

    Example:
        >>> round(float(contact_bce(torch.tensor([[0.0]]), torch.tensor([[1.0]]))), 4)  # log 2
        0.6931
        >>> round(float(contact_bce(torch.tensor([[0.0]]), torch.tensor([[1.0]]), None, 3.0)), 4)
        2.0794
    """
    pos_weight = None if positive_weight == 1.0 else logits.new_tensor(positive_weight)
    per_item = nnf.binary_cross_entropy_with_logits(
        logits, labels.to(logits), reduction="none", pos_weight=pos_weight
    )
    per_item = per_item.mean(dim=1)
    if mask is None:
        return per_item.mean()
    mask = mask.to(per_item)
    return (per_item * mask).sum() / mask.sum().clamp_min(1.0)


def penetration_chamfer(
    hand_points: Float[Tensor, "B Nh 3"],
    face_points: Float[Tensor, "B Nf 3"],
    face_normals: Float[Tensor, "B Nf 3"],
    mask: Float[Tensor, " B"] | None = None,
) -> Float[Tensor, ""]:
    """DICE's L_collision: Chamfer from the hand points inside the face to the (undeformed) face.

    A hand point is inside when it lies behind its nearest face point's outward normal; each
    such point is pulled to that face point (distance in metres, mean over the penetrating
    points of an item, items without any contribute 0, mean over the batch items where
    ``mask > 0``, e.g. the items that have a hand). The nearest-point
    test is cheap enough for training batches; use it on coarse or subsampled meshes.

    Example:
        >>> face = torch.tensor([[[0.0, 0, 0]]]); normal = torch.tensor([[[0.0, 0, 1]]])
        >>> hand = torch.tensor([[[0.0, 0, -0.003], [0.0, 0, 0.01]]])
        >>> penetration_chamfer(hand, face, normal)
        tensor(0.0030)
    """
    distance = torch.cdist(hand_points, face_points)
    nearest_distance, nearest = distance.min(dim=2)
    index = nearest[..., None].expand(-1, -1, 3)
    closest = torch.gather(face_points, 1, index)
    normals = torch.gather(face_normals, 1, index)
    inside = (((hand_points - closest) * normals).sum(-1) < 0).detach().to(nearest_distance)
    per_item = (nearest_distance * inside).sum(dim=1) / inside.sum(dim=1).clamp_min(1.0)
    if mask is None:
        return per_item.mean()
    mask = mask.to(per_item)
    return (per_item * mask).sum() / mask.sum().clamp_min(1.0)


class AvatarContactTerms(NamedTuple):
    """The two terms of the avatar paper's contact loss."""

    surface: Tensor
    """``mean(s_head^2)`` where the skin is just inside and the hand is there: pull onto it."""
    penetration: Tensor
    """``mean(relu(-s_head - m))`` where a point is deep inside the head and inside the hand."""


def avatar_contact_loss(
    head_sdf: Float[Tensor, " P"], hand_sdf: Float[Tensor, " P"], margin: float = CONTACT_DISTANCE
) -> AvatarContactTerms:
    """The avatar paper's physics-inspired contact loss on points sampled on hand and head.

    With ``s_head``, ``s_hand`` the points' signed distances to the (deformed) head and to the
    hand and margin ``m`` (5 mm at metric scale): surface term ``mean(s_head^2)`` over points
    with ``-m < s_head < 0`` and ``s_hand < m`` (the face should meet the hand where they
    touch); penetration term ``mean(relu(-s_head - m))`` over points with ``s_head < -m`` and
    ``s_hand < 0``. An empty selection gives 0.

    Example:
        >>> head = torch.tensor([-0.002, -0.02, 0.01]); hand = torch.tensor([0.001, -0.01, 0.0])
        >>> terms = avatar_contact_loss(head, hand)
        >>> round(float(terms.surface), 6), round(float(terms.penetration), 6)
        (4e-06, 0.015)
    """
    surface_mask = (head_sdf > -margin) & (head_sdf < 0) & (hand_sdf < margin)
    deep_mask = (head_sdf < -margin) & (hand_sdf < 0)
    zero = head_sdf.sum() * 0.0
    surface = head_sdf[surface_mask].pow(2).mean() if surface_mask.any() else zero
    penetration = torch.relu(-head_sdf[deep_mask] - margin).mean() if deep_mask.any() else zero
    return AvatarContactTerms(surface, penetration)
