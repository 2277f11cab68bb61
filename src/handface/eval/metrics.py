"""The benchmark metrics of hand-face interaction capture (Decaf / DICE protocol).

Two layers, in the style of kornia:

* **Pure tensor functions** (differentiable where that makes sense, batched over leading
  dimensions): :func:`pve`, :func:`mpjpe`, :func:`pa_mpjpe`, :func:`penetration_depths`,
  :func:`collision_distance`, :func:`touches`, :func:`collides`, :func:`contact_scores`
  (with :class:`ContactCounts`, poolable with ``+``), :func:`deformation_error`,
  :func:`f_score`. Inputs in metres, outputs in metres.
* **Frame evaluation**: :func:`evaluate_frame` compares a predicted
  :class:`~handface.data.sample.InteractionSample` with the ground truth and returns a
  :class:`FrameMetrics`; :func:`summarize` turns a list of them into the benchmark figures
  (millimetres and percentages).

Definitions used by :func:`evaluate_frame` / :func:`summarize`
-------------------------------------------------------------

Hands are matched by side (``"left"`` / ``"right"``). The *head centre* of a mesh is the mean
of its *undeformed* face vertices (``face_vertices``); pred and GT are each translated by
their own head centre (DICE Table 1, ‡). Pred and GT must share the face topology and, for
each matched hand, the hand topology (otherwise :class:`~handface.errors.InputError`).

* **PVE** (``pve_mm``): per frame, the mean Euclidean error over the deformed face vertices
  (``face_vertices_deformed``) and the vertices of every matched hand together, all vertices
  weighted equally, after head-centring; averaged over frames. ``pve_face_mm`` /
  ``pve_hand_mm`` are the same over face vertices only / matched hand vertices only (the
  latter over frames with at least one matched hand).
* **MPJPE** (``mpjpe_mm``): the same over the 68 face keypoints (``face_keypoints68_3d``)
  and the 21 keypoints (``keypoints3d``) of each matched hand.
* **PA-MPJPE** (``pa_mpjpe_mm``): a similarity Procrustes alignment (scale, rotation,
  translation) of the predicted face's 68 points to the GT's, and separately of each matched
  hand's 21 points; the mean aligned error over all those points.
* **Penetration depth** of a predicted hand vertex: its signed distance to the predicted
  *deformed* face mesh (``face_vertices_deformed``, ``face_faces``), positive inside; values
  of 5 cm or more are zeroed as spurious (the head mesh is open at the neck), values outside
  are 0. All predicted hands of the frame are pooled (with two hands, all their vertices
  together).
* **Collision distance** (``col_dist_mm``): per frame, the sum of the penetration depths
  divided by the number of predicted hand vertices (0 for a frame without a predicted hand);
  averaged over frames.
* **Non-collision** (``non_collision``, %): the share of frames in which no predicted hand
  vertex is more than 5 mm inside (frames without a predicted hand do not collide).
* **Touch**: a set of hands touches a head when the minimum signed distance of the hand
  vertices to the deformed head mesh is at most 5 mm (a hand inside counts as touching).
  **Touchness** (``touchness``, %): among the frames whose GT hands touch the GT head
  (``num_touch_frames``), the share in which the predicted hands touch the predicted head;
  nan if no GT frame touches. A GT hand without a predicted counterpart cannot be matched:
  only the predicted hands that exist are tested, so a frame with no predicted hand counts
  as not touching.
* **F-score** (``f_score``, %): the harmonic mean of non-collision and touchness (0 when both
  are 0, nan when touchness is nan).
* **Contact** (``contact_{f1,precision,recall,accuracy}_{face,hand}``): a vertex is predicted
  in contact when its probability is ``> 0.5``; GT labels are binarised with ``> 0.5``. The
  true/false positive/negative counts are pooled over all vertices of all frames, then
  precision = TP/(TP+FP), recall = TP/(TP+FN), F1 = 2TP/(2TP+FP+FN),
  accuracy = (TP+TN)/total. A ratio whose denominator is 0 is nan (e.g. precision when
  nothing is predicted in contact); in particular F1 is nan only when neither prediction nor
  GT has any positive. Face: ``face_contact``. Hand: ``hands[side].contact`` over the
  vertices of the GT hands; a GT hand missing in the prediction counts as predicted with no
  contact (its GT contacts become false negatives); predicted hands absent from GT are not
  scored.
* **Relative translation** (``rel_trans_mm``): per matched hand, the error of the vector
  from the head centre to the hand's vertex centroid, ``|(h_pred - c_pred) - (h_gt - c_gt)|``;
  the mean over matched hands per frame, then over frames with a matched hand. It measures
  where the hand is put relative to the face, which head-centred PVE mixes with shape error.
* **False touch rate** (``false_touch_rate``, %): among the frames whose GT hands do *not*
  touch the GT head, the share in which the predicted hands touch the predicted head (nan if
  every GT frame touches). The plausibility F-score alone rewards putting every hand on the
  face; this is its counterweight.
* **Deformation error** (``deform_err_mm``): per frame, the mean of ``|D_pred - D_gt|``
  (``deformation``, canonical frame) over the face vertices where the GT face is in contact
  or ``|D_gt| > 1 mm``; averaged over the frames that have such vertices
  (``num_deform_frames``); nan if none.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from handface.data.sample import InteractionSample
from handface.errors import InputError
from handface.geometry import procrustes, signed_distance
from handface.geometry.contact import (
    COLLISION_DEPTH,
    CONTACT_DISTANCE,
    CONTACT_PROBABILITY_THRESHOLD,
    SPURIOUS_PENETRATION,
    collides,
    penetration_from_sdf,
    touching,
)
from handface.geometry.contact import penetration_depth as penetration_depths

__all__ = [
    "COLLISION_THRESHOLD",
    "CONTACT_THRESHOLD",
    "DEFORMATION_THRESHOLD",
    "SPURIOUS_PENETRATION",
    "SUMMARY_KEYS",
    "TOUCH_THRESHOLD",
    "ContactCounts",
    "ContactScores",
    "FrameMetrics",
    "collides",
    "collision_distance",
    "contact_scores",
    "deformation_error",
    "evaluate_frame",
    "f_score",
    "mpjpe",
    "pa_mpjpe",
    "penetration_depths",
    "pve",
    "summarize",
    "touches",
]

TOUCH_THRESHOLD = CONTACT_DISTANCE
"""A hand touches the head when it is within this distance (metres) of it (geometry.contact)."""
COLLISION_THRESHOLD = COLLISION_DEPTH
"""A frame collides when a hand vertex is deeper than this (metres) inside the head."""
CONTACT_THRESHOLD = CONTACT_PROBABILITY_THRESHOLD
"""A vertex is predicted in contact when its probability is strictly above this."""
DEFORMATION_THRESHOLD = 0.001
"""Face vertices whose GT deformation exceeds this (metres) enter the deformation error."""

SUMMARY_KEYS: tuple[str, ...] = (
    "pve_mm",
    "mpjpe_mm",
    "pa_mpjpe_mm",
    "col_dist_mm",
    "non_collision",
    "touchness",
    "f_score",
    "contact_f1_face",
    "contact_f1_hand",
    "deform_err_mm",
)
"""The headline keys of :func:`summarize` (it returns more detail keys besides these)."""


# --------------------------------------------------------------------------------------------
# Pure tensor metrics
# --------------------------------------------------------------------------------------------


def _check_same_shape(name: str, pred: Tensor, gt: Tensor) -> None:
    if pred.shape != gt.shape:
        raise InputError(
            f"{name}: prediction and ground truth must have the same shape (same topology), "
            f"got {tuple(pred.shape)} and {tuple(gt.shape)}"
        )


def _check_points(name: str, pred: Tensor) -> None:
    """A mean over zero points would be a silent 0/0 = nan: say what is wrong instead."""
    if pred.dim() < 2 or pred.shape[-1] != 3 or pred.shape[-2] == 0:
        raise InputError(f"{name} needs (..., N, 3) points with N >= 1, got {tuple(pred.shape)}")


def pve(
    pred_vertices: Float[Tensor, "*batch V 3"],
    gt_vertices: Float[Tensor, "*batch V 3"],
    pred_centre: Float[Tensor, "*batch 3"],
    gt_centre: Float[Tensor, "*batch 3"],
) -> Float[Tensor, "*batch"]:
    """Per-vertex error: ``mean_i |(p_i - c_pred) - (g_i - c_gt)|`` (metres).

    Each mesh set is first translated so that its head centre (the mean of the head's
    vertices) is at the origin (DICE Table 1, ‡). Differentiable. Finite for finite input;
    zero vertices raise :class:`~handface.errors.InputError`; NaN propagates. A batch of 0
    gives an empty result.

    Example:
        >>> gt = torch.tensor([[0.0, 0, 0], [1, 0, 0]])
        >>> pred = gt + torch.tensor([[5.0, 5, 5], [5, 5, 6]])  # shifted, 2nd vertex off by 1
        >>> pve(pred, gt, torch.tensor([5.0, 5, 5]), torch.zeros(3))
        tensor(0.5000)
    """
    _check_same_shape("pve", pred_vertices, gt_vertices)
    _check_points("pve", pred_vertices)
    diff = (pred_vertices - pred_centre[..., None, :]) - (gt_vertices - gt_centre[..., None, :])
    return torch.linalg.vector_norm(diff, dim=-1).mean(dim=-1)


def mpjpe(
    pred: Float[Tensor, "*batch J 3"],
    gt: Float[Tensor, "*batch J 3"],
    pred_centre: Float[Tensor, "*batch 3"] | None = None,
    gt_centre: Float[Tensor, "*batch 3"] | None = None,
) -> Float[Tensor, "*batch"]:
    """Mean per-joint position error ``mean_j |(p_j - c_pred) - (g_j - c_gt)|`` (metres).

    A centre that is ``None`` is taken as the origin (no translation of that side). Zero
    joints raise :class:`~handface.errors.InputError`; NaN propagates.

    Example:
        >>> mpjpe(torch.tensor([[0.0, 0, 1], [0, 0, 0]]), torch.zeros(2, 3))
        tensor(0.5000)
    """
    _check_same_shape("mpjpe", pred, gt)
    _check_points("mpjpe", pred)
    if pred_centre is not None:
        pred = pred - pred_centre[..., None, :]
    if gt_centre is not None:
        gt = gt - gt_centre[..., None, :]
    return torch.linalg.vector_norm(pred - gt, dim=-1).mean(dim=-1)


def pa_mpjpe(
    pred: Float[Tensor, "*batch J 3"], gt: Float[Tensor, "*batch J 3"]
) -> Float[Tensor, "*batch"]:
    """MPJPE after aligning ``pred`` to ``gt`` by the best similarity transform (Procrustes).

    Uses :func:`handface.geometry.procrustes` (scale, proper rotation, translation), so the
    value is invariant to any similarity transform of ``pred``; needs at least three
    non-collinear points for a unique alignment. Degenerate sets still give a finite value
    (collinear points: one of the optimal rotations; a single point or coincident ``pred``
    points: scale 0, i.e. the error of ``gt`` about its centroid). Zero joints and NaN/inf
    coordinates raise :class:`~handface.errors.InputError`.

    Example:
        >>> gt = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
        >>> float(pa_mpjpe(3.0 * gt + 2.0, gt)) < 1e-6
        True
    """
    _check_same_shape("pa_mpjpe", pred, gt)
    _check_points("pa_mpjpe", pred)
    aligned = procrustes(pred, gt).aligned
    return torch.linalg.vector_norm(aligned - gt, dim=-1).mean(dim=-1)


def _hand_head_sdf(hand_vertices: Tensor, head_vertices: Tensor, head_faces: Tensor) -> Tensor:
    if hand_vertices.shape[-2] == 0:
        return hand_vertices.new_zeros(hand_vertices.shape[:-1])
    return signed_distance(hand_vertices.to(head_vertices.dtype), head_vertices, head_faces).sdf


def collision_distance(depths: Float[Tensor, "*batch N"]) -> Float[Tensor, "*batch"]:
    """Sum of the penetration depths divided by the number of hand vertices (0 if none).

    Example:
        >>> collision_distance(torch.tensor([0.003, 0.0, 0.0]))
        tensor(0.0010)
    """
    num = depths.shape[-1]
    return depths.sum(dim=-1) / max(num, 1)


def touches(
    hand_vertices: Float[Tensor, "*batch N 3"],
    head_vertices: Float[Tensor, "*batch V 3"],
    head_faces: Int[Tensor, "F 3"],
    threshold: float = TOUCH_THRESHOLD,
) -> Bool[Tensor, "*batch"]:
    """Whether the hand is within ``threshold`` (5 mm) of the head: ``min_i sdf_i <= thr``.

    A hand vertex inside the head (negative signed distance) therefore counts as touching.
    ``False`` when there are no hand vertices.

    Example:
        >>> import trimesh
        >>> s = trimesh.creation.icosphere(subdivisions=3, radius=0.1)
        >>> v, f = torch.tensor(s.vertices), torch.tensor(s.faces)
        >>> near = torch.tensor([[0.0, 0, 0.104]], dtype=v.dtype)
        >>> bool(touches(near, v, f)), bool(touches(near + 0.01, v, f))
        (True, False)
    """
    return touching(_hand_head_sdf(hand_vertices, head_vertices, head_faces), threshold)


def _ratio(num: int, den: int) -> float:
    return num / den if den > 0 else math.nan


@dataclass(frozen=True)
class ContactScores:
    """Precision, recall, F1 and accuracy of binary contact, with the counts they come from.

    A ratio whose denominator is zero is ``nan`` (see :class:`ContactCounts`).
    """

    precision: float
    recall: float
    f1: float
    accuracy: float
    counts: ContactCounts


@dataclass(frozen=True)
class ContactCounts:
    """True/false positive/negative counts of per-vertex contact, poolable with ``+``.

    ``sum(list_of_counts)`` works too (``0 + counts`` is ``counts``).

    Example:
        >>> a = ContactCounts.from_predictions(torch.tensor([0.9, 0.2]), torch.tensor([1, 1]))
        >>> b = ContactCounts.from_predictions(torch.tensor([0.7]), torch.tensor([0]))
        >>> a + b
        ContactCounts(tp=1, fp=1, fn=1, tn=0)
        >>> round((a + b).scores().f1, 4)
        0.5
    """

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    @classmethod
    def from_predictions(
        cls,
        pred_prob: Float[Tensor, "*shape"],
        gt_label: Float[Tensor, "*shape"],
        threshold: float = CONTACT_THRESHOLD,
    ) -> ContactCounts:
        """Count over all elements: predicted positive is ``pred_prob > threshold``, GT
        positive is ``gt_label > 0.5``. A NaN probability or label counts as negative (no
        contact); empty tensors give all-zero counts."""
        if pred_prob.shape != gt_label.shape:
            raise InputError(
                "contact: predicted probabilities and labels must have the same shape, got "
                f"{tuple(pred_prob.shape)} and {tuple(gt_label.shape)}"
            )
        pred = pred_prob.detach() > threshold
        gt = gt_label.detach() > 0.5
        return cls(
            tp=int((pred & gt).sum()),
            fp=int((pred & ~gt).sum()),
            fn=int((~pred & gt).sum()),
            tn=int((~pred & ~gt).sum()),
        )

    @property
    def total(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    def __add__(self, other: ContactCounts) -> ContactCounts:
        if not isinstance(other, ContactCounts):
            return NotImplemented
        return ContactCounts(
            self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn
        )

    def __radd__(self, other: Any) -> ContactCounts:
        if isinstance(other, int) and other == 0:
            return self
        return NotImplemented

    def scores(self) -> ContactScores:
        """Precision TP/(TP+FP), recall TP/(TP+FN), F1 2TP/(2TP+FP+FN) and accuracy
        (TP+TN)/total; nan where the denominator is 0."""
        return ContactScores(
            precision=_ratio(self.tp, self.tp + self.fp),
            recall=_ratio(self.tp, self.tp + self.fn),
            f1=_ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn),
            accuracy=_ratio(self.tp + self.tn, self.total),
            counts=self,
        )


def contact_scores(
    pred_prob: Float[Tensor, "*shape"],
    gt_label: Float[Tensor, "*shape"],
    threshold: float = CONTACT_THRESHOLD,
) -> ContactScores:
    """Per-vertex contact precision, recall, F1 and accuracy, pooled over all elements.

    Predicted contact is ``pred_prob > threshold`` (0.5), GT contact ``gt_label > 0.5``. With
    no predicted positives precision is nan; with no GT positives recall is nan; F1
    ``= 2TP/(2TP+FP+FN)`` is nan only when there is no positive on either side. To pool over
    frames, add the ``.counts`` (:class:`ContactCounts`) and call ``.scores()`` on the sum.

    Example:
        >>> s = contact_scores(torch.tensor([0.9, 0.6, 0.1, 0.2]), torch.tensor([1, 0, 1, 0]))
        >>> s.precision, s.recall, s.f1, s.accuracy
        (0.5, 0.5, 0.5, 0.5)
    """
    return ContactCounts.from_predictions(pred_prob, gt_label, threshold).scores()


def deformation_error(
    pred_D: Float[Tensor, "*batch V 3"],
    gt_D: Float[Tensor, "*batch V 3"],
    region_mask: Bool[Tensor, "*batch V"],
) -> Float[Tensor, "*batch"]:
    """Mean ``|pred_D - gt_D|`` over the vertices where ``region_mask`` is true (nan if none).

    Example:
        >>> d = torch.tensor([[0.0, 0, 0.002], [0, 0, 0]])
        >>> deformation_error(torch.zeros(2, 3), d, torch.tensor([True, False]))
        tensor(0.0020)
    """
    _check_same_shape("deformation_error", pred_D, gt_D)
    if region_mask.shape != pred_D.shape[:-1]:
        raise InputError(
            f"deformation_error: region_mask must have shape {tuple(pred_D.shape[:-1])}, got "
            f"{tuple(region_mask.shape)}"
        )
    err = torch.linalg.vector_norm(pred_D - gt_D, dim=-1)
    mask = region_mask.to(err.dtype)
    return (err * mask).sum(dim=-1) / mask.sum(dim=-1)  # 0/0 = nan for an empty region


def f_score(non_collision: float | Tensor, touchness: float | Tensor) -> float | Tensor:
    """Harmonic mean ``2 a b / (a + b)`` of non-collision and touchness (0 when both are 0).

    Works on Python numbers (returns a float) or tensors; nan inputs give nan.

    Example:
        >>> round(f_score(80.0, 90.0), 4)
        84.7059
    """
    if isinstance(non_collision, Tensor) or isinstance(touchness, Tensor):
        a = torch.as_tensor(non_collision)
        b = torch.as_tensor(touchness)
        total = a + b
        safe = torch.where(total == 0, torch.ones_like(total), total)
        return torch.where(total == 0, torch.zeros_like(total), 2 * a * b / safe)
    a, b = float(non_collision), float(touchness)
    if a + b == 0:
        return 0.0
    return 2.0 * a * b / (a + b)


# --------------------------------------------------------------------------------------------
# Frame evaluation
# --------------------------------------------------------------------------------------------


@dataclass
class FrameMetrics:
    """The metrics of one predicted frame against its ground truth (metres, booleans, counts).

    Distances are nan where the frame has nothing to measure (``pve_hand`` without a matched
    hand, ``deform_err`` without GT deformation/contact region).
    """

    key: str
    pve: float
    """Mean error over deformed face + matched hand vertices, head-centred."""
    pve_face: float
    pve_hand: float
    mpjpe: float
    """Over 68 face keypoints + 21 keypoints per matched hand, head-centred."""
    pa_mpjpe: float
    """Procrustes per part (face 68, each hand 21); mean over all points."""
    col_dist: float
    """Sum of predicted hand penetration depths / number of predicted hand vertices."""
    max_penetration: float
    """Deepest (non-spurious) predicted hand vertex."""
    collides: bool
    """Some predicted hand vertex is more than 5 mm inside the predicted deformed head."""
    gt_touch: bool
    """The GT hands are within 5 mm of the GT deformed head."""
    pred_touch: bool
    """The predicted hands are within 5 mm of the predicted deformed head."""
    face_contact: ContactCounts
    hand_contact: ContactCounts
    deform_err: float
    num_deform_vertices: int
    rel_trans: float = math.nan
    """Mean over matched hands of the head-to-hand translation error (nan without one)."""
    hands_matched: tuple[str, ...] = ()
    hands_missing: tuple[str, ...] = ()
    """GT hands with no predicted hand of the same side."""
    hands_extra: tuple[str, ...] = field(default_factory=tuple)
    """Predicted hands with no GT hand of the same side (used only for penetration/touch)."""

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (contact counts as nested dicts)."""
        out = asdict(self)
        out["hands_matched"] = list(self.hands_matched)
        out["hands_missing"] = list(self.hands_missing)
        out["hands_extra"] = list(self.hands_extra)
        return out


def _as64(x: Tensor) -> Tensor:
    return x.detach().to("cpu", torch.float64)


def _errors(pred: Tensor, gt: Tensor, pred_centre: Tensor, gt_centre: Tensor) -> Tensor:
    return torch.linalg.vector_norm((pred - pred_centre) - (gt - gt_centre), dim=-1)


def _pa_errors(pred: Tensor, gt: Tensor) -> Tensor:
    return torch.linalg.vector_norm(procrustes(pred, gt).aligned - gt, dim=-1)


def _mean(x: Tensor) -> float:
    return float(x.mean()) if x.numel() else math.nan


def evaluate_frame(
    pred: InteractionSample,
    gt: InteractionSample,
    *,
    contact_threshold: float = CONTACT_THRESHOLD,
    touch_threshold: float = TOUCH_THRESHOLD,
    collision_threshold: float = COLLISION_THRESHOLD,
    spurious: float = SPURIOUS_PENETRATION,
    deformation_threshold: float = DEFORMATION_THRESHOLD,
) -> FrameMetrics:
    """Compare one predicted frame with its ground truth (definitions: module docstring).

    Computed in float64 without gradients. Raises :class:`~handface.errors.InputError` when
    the face (or a matched hand) has a different vertex count in pred and GT.
    """
    with torch.no_grad():
        return _evaluate_frame(
            pred,
            gt,
            contact_threshold=contact_threshold,
            touch_threshold=touch_threshold,
            collision_threshold=collision_threshold,
            spurious=spurious,
            deformation_threshold=deformation_threshold,
        )


def _evaluate_frame(
    pred: InteractionSample,
    gt: InteractionSample,
    *,
    contact_threshold: float,
    touch_threshold: float,
    collision_threshold: float,
    spurious: float,
    deformation_threshold: float,
) -> FrameMetrics:
    key = gt.key
    for name in ("face_vertices", "face_vertices_deformed", "deformation", "face_contact"):
        p, g = getattr(pred, name), getattr(gt, name)
        if p.shape != g.shape:
            raise InputError(
                f"frame {key!r}: predicted {name} has shape {tuple(p.shape)} but the ground "
                f"truth has {tuple(g.shape)}; the metrics need the same face topology"
            )
    _check_same_shape(
        f"frame {key!r}: face_keypoints68_3d", pred.face_keypoints68_3d, gt.face_keypoints68_3d
    )
    pred_centre = _as64(pred.face_vertices).mean(dim=0)
    gt_centre = _as64(gt.face_vertices).mean(dim=0)

    matched = tuple(side for side in sorted(gt.hands) if side in pred.hands)
    missing = tuple(side for side in sorted(gt.hands) if side not in pred.hands)
    extra = tuple(side for side in sorted(pred.hands) if side not in gt.hands)
    for side in matched:
        for name in ("vertices", "keypoints3d", "contact"):
            p, g = getattr(pred.hands[side], name), getattr(gt.hands[side], name)
            if p.shape != g.shape:
                raise InputError(
                    f"frame {key!r}: predicted {side} hand {name} has shape {tuple(p.shape)} "
                    f"but the ground truth has {tuple(g.shape)}; the metrics need the same "
                    "hand topology"
                )

    # PVE (deformed face + matched hands) and MPJPE / PA-MPJPE (68 face + 21 per hand).
    pred_head = _as64(pred.face_vertices_deformed)
    gt_head = _as64(gt.face_vertices_deformed)
    face_err = _errors(pred_head, gt_head, pred_centre, gt_centre)
    hand_errs = [
        _errors(_as64(pred.hands[s].vertices), _as64(gt.hands[s].vertices), pred_centre, gt_centre)
        for s in matched
    ]
    hand_err = torch.cat(hand_errs) if hand_errs else face_err.new_zeros(0)
    rel_errs = [
        torch.linalg.vector_norm(
            (_as64(pred.hands[s].vertices).mean(0) - pred_centre)
            - (_as64(gt.hands[s].vertices).mean(0) - gt_centre)
        )
        for s in matched
    ]
    pred_kp = [_as64(pred.face_keypoints68_3d)] + [
        _as64(pred.hands[s].keypoints3d) for s in matched
    ]
    gt_kp = [_as64(gt.face_keypoints68_3d)] + [_as64(gt.hands[s].keypoints3d) for s in matched]
    kp_err = torch.cat(
        [_errors(p, g, pred_centre, gt_centre) for p, g in zip(pred_kp, gt_kp, strict=True)]
    )
    pa_err = torch.cat([_pa_errors(p, g) for p, g in zip(pred_kp, gt_kp, strict=True)])

    # Penetration and touch: all predicted hands against the predicted deformed head.
    pred_hands = [_as64(pred.hands[s].vertices) for s in sorted(pred.hands)]
    if pred_hands:
        sdf = _hand_head_sdf(torch.cat(pred_hands), pred_head, pred.face_faces.cpu())
        depths = penetration_from_sdf(sdf, spurious)
        col_dist = float(collision_distance(depths))
        max_pen = float(depths.max()) if depths.numel() else 0.0
        does_collide = bool(collides(depths, collision_threshold))
        pred_touch = bool(touching(sdf, touch_threshold))
    else:
        col_dist, max_pen, does_collide, pred_touch = 0.0, 0.0, False, False
    gt_hands = [_as64(gt.hands[s].vertices) for s in sorted(gt.hands)]
    gt_touch = bool(gt_hands) and bool(
        touches(torch.cat(gt_hands), gt_head, gt.face_faces.cpu(), touch_threshold)
    )

    # Contact: face vertices, and the vertices of each GT hand (missing pred hand = no contact).
    face_counts = ContactCounts.from_predictions(
        pred.face_contact, gt.face_contact, contact_threshold
    )
    hand_counts = ContactCounts()
    for side in sorted(gt.hands):
        gt_contact = gt.hands[side].contact
        pred_contact = (
            pred.hands[side].contact if side in pred.hands else torch.zeros_like(gt_contact)
        )
        hand_counts = hand_counts + ContactCounts.from_predictions(
            pred_contact, gt_contact, contact_threshold
        )

    # Deformation error where the GT face is in contact or deformed by more than 1 mm.
    gt_D = _as64(gt.deformation)
    region = (_as64(gt.face_contact) > 0.5) | (
        torch.linalg.vector_norm(gt_D, dim=-1) > deformation_threshold
    )
    num_region = int(region.sum())
    deform_err = (
        float(deformation_error(_as64(pred.deformation), gt_D, region)) if num_region else math.nan
    )

    return FrameMetrics(
        key=key,
        pve=_mean(torch.cat([face_err, hand_err])),
        pve_face=_mean(face_err),
        pve_hand=_mean(hand_err),
        mpjpe=_mean(kp_err),
        pa_mpjpe=_mean(pa_err),
        col_dist=col_dist,
        max_penetration=max_pen,
        collides=does_collide,
        gt_touch=gt_touch,
        pred_touch=pred_touch,
        face_contact=face_counts,
        hand_contact=hand_counts,
        deform_err=deform_err,
        num_deform_vertices=num_region,
        rel_trans=float(torch.stack(rel_errs).mean()) if rel_errs else math.nan,
        hands_matched=matched,
        hands_missing=missing,
        hands_extra=extra,
    )


def _nanmean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return math.fsum(finite) / len(finite) if finite else math.nan


def summarize(frames: Sequence[FrameMetrics]) -> dict[str, float]:
    """The benchmark figures over a list of frames (definitions: module docstring).

    Keys (millimetres, percentages 0-100, contact scores as fractions 0-1): ``pve_mm``,
    ``mpjpe_mm``, ``pa_mpjpe_mm``, ``col_dist_mm``, ``non_collision``, ``touchness``,
    ``f_score``, ``contact_f1_face``, ``contact_f1_hand``, ``deform_err_mm``; details
    ``pve_face_mm``, ``pve_hand_mm``, ``max_penetration_mm`` (mean over frames of the deepest
    predicted hand vertex), ``rel_trans_mm``, ``false_touch_rate``,
    ``contact_{precision,recall,accuracy}_{face,hand}``, and the counts
    ``num_frames``, ``num_touch_frames`` (GT touching), ``num_collision_frames``,
    ``num_deform_frames``, ``num_missing_hands`` (GT hands without a prediction).
    """
    if not frames:
        raise InputError("no frames to summarize: the prediction and ground truth sets are empty")
    n = len(frames)
    touch_frames = [f for f in frames if f.gt_touch]
    no_touch_frames = [f for f in frames if not f.gt_touch]
    non_collision = 100.0 * sum(not f.collides for f in frames) / n
    touchness = (
        100.0 * sum(f.pred_touch for f in touch_frames) / len(touch_frames)
        if touch_frames
        else math.nan
    )
    face = sum((f.face_contact for f in frames), ContactCounts()).scores()
    hand = sum((f.hand_contact for f in frames), ContactCounts()).scores()
    out: dict[str, float] = {
        "pve_mm": 1000.0 * _nanmean([f.pve for f in frames]),
        "mpjpe_mm": 1000.0 * _nanmean([f.mpjpe for f in frames]),
        "pa_mpjpe_mm": 1000.0 * _nanmean([f.pa_mpjpe for f in frames]),
        "col_dist_mm": 1000.0 * _nanmean([f.col_dist for f in frames]),
        "non_collision": non_collision,
        "touchness": touchness,
        "f_score": float(f_score(non_collision, touchness)),
        "contact_f1_face": face.f1,
        "contact_f1_hand": hand.f1,
        "deform_err_mm": 1000.0 * _nanmean([f.deform_err for f in frames]),
        "pve_face_mm": 1000.0 * _nanmean([f.pve_face for f in frames]),
        "pve_hand_mm": 1000.0 * _nanmean([f.pve_hand for f in frames]),
        "max_penetration_mm": 1000.0 * _nanmean([f.max_penetration for f in frames]),
        "rel_trans_mm": 1000.0 * _nanmean([f.rel_trans for f in frames]),
        "false_touch_rate": (
            100.0 * sum(f.pred_touch for f in no_touch_frames) / len(no_touch_frames)
            if no_touch_frames
            else math.nan
        ),
        "num_no_touch_frames": len(no_touch_frames),
        "contact_precision_face": face.precision,
        "contact_recall_face": face.recall,
        "contact_accuracy_face": face.accuracy,
        "contact_precision_hand": hand.precision,
        "contact_recall_hand": hand.recall,
        "contact_accuracy_hand": hand.accuracy,
        "num_frames": n,
        "num_touch_frames": len(touch_frames),
        "num_collision_frames": sum(f.collides for f in frames),
        "num_deform_frames": sum(not math.isnan(f.deform_err) for f in frames),
        "num_missing_hands": sum(len(f.hands_missing) for f in frames),
    }
    return out
