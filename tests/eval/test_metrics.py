"""Benchmark metrics against exact answers on small constructed meshes (icosphere heads)."""

from __future__ import annotations

import doctest
import math

import pytest
import roma
import torch
import trimesh

from handface.data.sample import HandSample, InteractionSample
from handface.errors import InputError
from handface.eval import (
    SUMMARY_KEYS,
    ContactCounts,
    collides,
    collision_distance,
    contact_scores,
    deformation_error,
    evaluate_frame,
    f_score,
    mpjpe,
    pa_mpjpe,
    penetration_depths,
    pve,
    summarize,
    touches,
)
from handface.eval import metrics as metrics_module
from handface.geometry import apply_similarity

RADIUS = 0.1
HAND_RADIUS = 0.02


def test_doctests_of_metrics_module():
    result = doctest.testmod(metrics_module)
    assert result.attempted >= 10 and result.failed == 0


@pytest.fixture(scope="module")
def head():
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=RADIUS)
    return torch.tensor(sphere.vertices), torch.tensor(sphere.faces)


def point_inside_face(vertices, faces, face_id: int, depth: float) -> torch.Tensor:
    """A point ``depth`` inside the (convex) icosphere below the centroid of one triangle.

    Its exact distance to the mesh is ``depth`` (the triangle's plane is the nearest one for
    depths of a few millimetres).
    """
    a, b, c = vertices[faces[face_id]]
    normal = torch.linalg.cross(b - a, c - a)
    normal = normal / normal.norm()
    centroid = (a + b + c) / 3
    if torch.dot(normal, centroid) < 0:
        normal = -normal
    return centroid - depth * normal


# --------------------------------------------------------------------------------------------
# Penetration, collision, touch
# --------------------------------------------------------------------------------------------


def test_penetration_of_a_vertex_3mm_inside(head):
    v, f = head
    inside = point_inside_face(v, f, 17, 0.003)
    outside = torch.tensor([0.0, 0.0, 0.2], dtype=v.dtype)
    hand = torch.stack([inside, outside, outside + 0.01, outside - 0.01])
    depths = penetration_depths(hand, v, f)
    assert depths[0].item() == pytest.approx(0.003, abs=5e-5)
    assert torch.equal(depths[1:], torch.zeros(3, dtype=v.dtype))
    assert collision_distance(depths).item() == pytest.approx(0.003 / 4, abs=2e-5)
    assert not bool(collides(depths))  # 3 mm < 5 mm


def test_penetration_of_7mm_collides(head):
    v, f = head
    hand = torch.stack([point_inside_face(v, f, 3, 0.007), torch.zeros(3, dtype=v.dtype) + 0.3])
    depths = penetration_depths(hand, v, f)
    assert depths[0].item() == pytest.approx(0.007, abs=5e-5)
    assert bool(collides(depths))


def test_penetration_of_5cm_or_more_is_spurious(head):
    v, f = head
    # About 6.5 cm and 3.5 cm inside the 10 cm sphere (less the faceting, < 1.3 mm).
    points = torch.tensor([[0.0, 0.0, 0.035], [0.0, 0.0, 0.065]], dtype=v.dtype)
    depths = penetration_depths(points, v, f)
    assert depths[0].item() == 0.0
    assert 0.025 < depths[1].item() < 0.035
    # A custom spurious limit keeps the deep one.
    assert penetration_depths(points, v, f, spurious=0.1)[0].item() > 0.05


def test_penetration_batched_matches_unbatched(head):
    v, f = head
    pts = torch.stack([point_inside_face(v, f, i, 0.002 * (i + 1)) for i in range(3)])
    batched = penetration_depths(pts[None].repeat(2, 1, 1), v[None].repeat(2, 1, 1), f)
    assert batched.shape == (2, 3)
    torch.testing.assert_close(batched[1], penetration_depths(pts, v, f))
    assert collision_distance(batched).shape == (2,)


def test_touches_within_5mm_and_inside(head):
    v, f = head
    direction = torch.tensor([0.0, 0.0, 1.0], dtype=v.dtype)
    assert bool(touches((RADIUS + 0.004) * direction[None], v, f))
    assert not bool(touches((RADIUS + 0.007) * direction[None], v, f))
    deep_inside = point_inside_face(v, f, 5, 0.02)[None]
    assert bool(touches(deep_inside, v, f))
    assert not bool(touches(torch.zeros(0, 3, dtype=v.dtype), v, f))


def test_gradients_of_pve_and_penetration_reach_predicted_vertices(head):
    v, f = head
    hand = torch.stack([point_inside_face(v, f, i, 0.003) for i in (0, 7, 40)])
    hand.requires_grad_(True)
    penetration_depths(hand, v, f).sum().backward()
    assert hand.grad is not None and torch.isfinite(hand.grad).all()
    # Moving a point outward (along its face normal) reduces its depth: gradient norm 1.
    torch.testing.assert_close(hand.grad.norm(dim=-1), torch.ones(3, dtype=v.dtype))

    pred = (v + 0.001 * torch.randn_like(v)).requires_grad_(True)
    value = pve(pred, v, pred.mean(dim=0), v.mean(dim=0))
    value.backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all()
    assert pred.grad.abs().sum() > 0


# --------------------------------------------------------------------------------------------
# PVE / MPJPE / PA-MPJPE
# --------------------------------------------------------------------------------------------


def test_pve_centres_each_side():
    gt = torch.randn(10, 3, dtype=torch.float64)
    shift = torch.tensor([0.3, -0.2, 1.0], dtype=torch.float64)
    assert pve(gt + shift, gt, shift, torch.zeros(3, dtype=torch.float64)).item() < 1e-12
    # Without the matching centre the shift is the error.
    zero = torch.zeros(3, dtype=torch.float64)
    assert pve(gt + shift, gt, zero, zero).item() == pytest.approx(shift.norm().item())
    with pytest.raises(InputError):
        pve(gt[:5], gt, zero, zero)


def test_pa_mpjpe_is_invariant_to_similarity_but_mpjpe_is_not():
    gen = torch.Generator().manual_seed(0)
    gt = 0.05 * torch.randn(21, 3, generator=gen, dtype=torch.float64)
    rotation = roma.rotvec_to_rotmat(torch.tensor([0.3, -1.1, 0.7], dtype=torch.float64))
    pred = apply_similarity(
        gt, torch.tensor(1.7, dtype=torch.float64), rotation, torch.tensor([0.1, 0.2, -0.3])
    )
    assert pa_mpjpe(pred, gt).item() < 1e-10
    assert mpjpe(pred, gt).item() > 0.1
    # Noise does not vanish under alignment.
    noisy = pred + 0.01 * torch.randn(21, 3, generator=gen, dtype=torch.float64)
    assert pa_mpjpe(noisy, gt).item() > 1e-3
    # Batched.
    assert pa_mpjpe(torch.stack([pred, noisy]), torch.stack([gt, gt])).shape == (2,)


def test_mpjpe_with_centres():
    gt = torch.tensor([[0.0, 0, 0], [0, 0, 1]])
    pred = gt + torch.tensor([1.0, 0, 0])
    assert mpjpe(pred, gt).item() == pytest.approx(1.0)
    assert mpjpe(pred, gt, torch.tensor([1.0, 0, 0]), torch.zeros(3)).item() == 0.0


# --------------------------------------------------------------------------------------------
# Contact, deformation, F-score
# --------------------------------------------------------------------------------------------


def test_contact_scores_on_a_tiny_exact_example():
    pred = torch.tensor([0.9, 0.6, 0.2, 0.4, 0.7, 0.1, 0.3, 0.5])
    gt = torch.tensor([1.0, 0, 1, 1, 1, 0, 0, 1])
    # predicted positive: 0, 1, 4 (0.5 is not > 0.5); tp = {0, 4}, fp = {1},
    # fn = {2, 3, 7}, tn = {5, 6}.
    s = contact_scores(pred, gt)
    assert s.counts == ContactCounts(tp=2, fp=1, fn=3, tn=2)
    assert s.precision == pytest.approx(2 / 3)
    assert s.recall == pytest.approx(2 / 5)
    assert s.f1 == pytest.approx(2 * (2 / 3) * (2 / 5) / (2 / 3 + 2 / 5))
    assert s.f1 == pytest.approx(4 / 8)
    assert s.accuracy == pytest.approx(4 / 8)


def test_contact_counts_pool_by_addition():
    gen = torch.Generator().manual_seed(3)
    pred = torch.rand(50, generator=gen)
    gt = (torch.rand(50, generator=gen) > 0.7).float()
    a = ContactCounts.from_predictions(pred[:20], gt[:20])
    b = ContactCounts.from_predictions(pred[20:], gt[20:])
    pooled = ContactCounts.from_predictions(pred, gt)
    assert a + b == pooled
    assert sum([a, b]) == pooled
    assert pooled.total == 50
    assert (a + b).scores() == contact_scores(pred, gt)
    with pytest.raises(InputError):
        ContactCounts.from_predictions(pred, gt[:10])


def test_contact_scores_without_positives_are_nan():
    s = contact_scores(torch.zeros(5), torch.zeros(5))
    assert math.isnan(s.precision) and math.isnan(s.recall) and math.isnan(s.f1)
    assert s.accuracy == 1.0
    # GT positives but nothing predicted: precision undefined, recall and F1 are 0.
    s = contact_scores(torch.zeros(4), torch.tensor([1.0, 0, 0, 0]))
    assert math.isnan(s.precision) and s.recall == 0.0 and s.f1 == 0.0


def test_deformation_error_over_region():
    gt = torch.zeros(4, 3)
    gt[0, 2] = 0.004
    pred = torch.zeros(4, 3)
    pred[3, 0] = 1.0  # outside the region: ignored
    mask = torch.tensor([True, True, False, False])
    assert deformation_error(pred, gt, mask).item() == pytest.approx(0.002)
    assert math.isnan(deformation_error(pred, gt, torch.zeros(4, dtype=torch.bool)).item())


def test_f_score_harmonic_mean():
    assert f_score(80.0, 90.0) == pytest.approx(2 * 80 * 90 / 170)
    assert f_score(80.0, 90.0) == pytest.approx(84.70588235, abs=1e-6)
    assert f_score(0.0, 0.0) == 0.0
    assert math.isnan(f_score(50.0, math.nan))
    t = f_score(torch.tensor([80.0, 0.0]), torch.tensor([90.0, 0.0]))
    torch.testing.assert_close(t, torch.tensor([84.705882, 0.0]))


# --------------------------------------------------------------------------------------------
# Frame evaluation on constructed samples
# --------------------------------------------------------------------------------------------


def make_hand(side: str, centre: torch.Tensor, contact_count: int = 0) -> HandSample:
    """A small icosphere "hand" whose vertex 0 points exactly along -x from ``centre``."""
    sphere = trimesh.creation.icosphere(subdivisions=1, radius=HAND_RADIUS)
    vertices = torch.tensor(sphere.vertices)
    first = vertices[0] / vertices[0].norm()
    target = torch.tensor([-1.0, 0.0, 0.0], dtype=torch.float64)
    axis = torch.linalg.cross(first, target)
    angle = torch.atan2(axis.norm(), torch.dot(first, target))
    rotation = roma.rotvec_to_rotmat(axis / axis.norm() * angle)
    vertices = vertices @ rotation.T + centre
    contact = torch.zeros(vertices.shape[0], dtype=torch.float64)
    contact[:contact_count] = 1.0
    return HandSample(
        side=side,
        vertices=vertices,
        faces=torch.tensor(sphere.faces),
        keypoints3d=vertices[:21].clone(),
        keypoints2d=torch.zeros(21, 2, dtype=torch.float64),
        contact=contact,
    )


def make_sample(
    key: str = "000000",
    hand_gap: float | None = 0.002,
    side: str = "right",
    deform: bool = True,
) -> InteractionSample:
    """Icosphere head (radius 10 cm) centred at z = 0.5 and a small icosphere hand on +x whose
    nearest vertex is ``hand_gap`` from the head (negative = inside); no hand if ``None``.

    ``deform``: the face cap with x > 9.5 cm is pushed 2 mm along -x and labelled in contact.
    """
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=RADIUS)
    face_vertices = torch.tensor(sphere.vertices) + torch.tensor([0.0, 0.0, 0.5])
    deformation = torch.zeros_like(face_vertices)
    face_contact = torch.zeros(face_vertices.shape[0], dtype=torch.float64)
    if deform:
        near = face_vertices[:, 0] > 0.095
        deformation[near, 0] = -0.002
        face_contact[near] = 1.0
    deformed = face_vertices + deformation
    hands = {}
    if hand_gap is not None:
        # The hand's vertex 0 sits at centre - HAND_RADIUS * x, facing the head's vertex on
        # the +x axis (which the deformation moves 2 mm inward).
        head_x = float(deformed[:, 0].max())
        centre = torch.tensor([head_x + hand_gap + HAND_RADIUS, 0.0, 0.5], dtype=torch.float64)
        hands[side] = make_hand(side, centre, contact_count=5)
    return InteractionSample(
        key=key,
        image_size=(64, 64),
        K=torch.eye(3, dtype=torch.float64),
        R=torch.eye(3, dtype=torch.float64),
        t=torch.zeros(3, dtype=torch.float64),
        face_vertices=face_vertices,
        face_vertices_deformed=deformed,
        face_faces=torch.tensor(sphere.faces),
        deformation=deformation,
        head_rotation=torch.eye(3, dtype=torch.float64),
        face_contact=face_contact,
        face_keypoints3d=face_vertices[:68].clone(),
        face_keypoints2d=torch.zeros(68, 2, dtype=torch.float64),
        face_keypoints68_3d=deformed[:68].clone(),
        face_keypoints68_2d=torch.zeros(68, 2, dtype=torch.float64),
        hands=hands,
    )


def translated(sample: InteractionSample, shift: torch.Tensor, hand_only=False):
    hands = {
        s: HandSample(
            side=h.side,
            vertices=h.vertices + shift,
            faces=h.faces,
            keypoints3d=h.keypoints3d + shift,
            keypoints2d=h.keypoints2d,
            contact=h.contact,
        )
        for s, h in sample.hands.items()
    }
    face_shift = torch.zeros(3, dtype=shift.dtype) if hand_only else shift
    return InteractionSample(
        key=sample.key,
        image_size=sample.image_size,
        K=sample.K,
        R=sample.R,
        t=sample.t,
        face_vertices=sample.face_vertices + face_shift,
        face_vertices_deformed=sample.face_vertices_deformed + face_shift,
        face_faces=sample.face_faces,
        deformation=sample.deformation,
        head_rotation=sample.head_rotation,
        face_contact=sample.face_contact,
        face_keypoints3d=sample.face_keypoints3d + face_shift,
        face_keypoints2d=sample.face_keypoints2d,
        face_keypoints68_3d=sample.face_keypoints68_3d + face_shift,
        face_keypoints68_2d=sample.face_keypoints68_2d,
        hands=hands,
    )


def test_ground_truth_against_itself_is_perfect():
    gt = make_sample(hand_gap=-0.003)  # hand 3 mm inside the deformed head: touch, no collision
    frame = evaluate_frame(gt, gt)
    assert frame.gt_touch and frame.pred_touch and not frame.collides
    assert frame.col_dist > 0  # the 3 mm penetration is measured
    assert frame.max_penetration == pytest.approx(0.003, abs=2e-4)
    summary = summarize(
        [frame, evaluate_frame(make_sample("1", hand_gap=0.03), make_sample("1", hand_gap=0.03))]
    )
    for key in SUMMARY_KEYS:
        assert key in summary
    for key in ("pve_mm", "mpjpe_mm", "pa_mpjpe_mm", "deform_err_mm", "pve_face_mm"):
        assert summary[key] == pytest.approx(0.0, abs=1e-6), key
    assert summary["contact_f1_face"] == 1.0 and summary["contact_f1_hand"] == 1.0
    assert summary["contact_accuracy_face"] == 1.0 and summary["contact_accuracy_hand"] == 1.0
    assert summary["non_collision"] == 100.0
    assert summary["touchness"] == 100.0
    assert summary["f_score"] == 100.0
    assert summary["num_frames"] == 2 and summary["num_touch_frames"] == 1


def test_pve_invariant_to_common_translation_not_to_hand_shift():
    gt = make_sample()
    shift = torch.tensor([0.05, -0.02, 0.3], dtype=torch.float64)
    moved = evaluate_frame(translated(gt, shift), gt)
    assert moved.pve == pytest.approx(0.0, abs=1e-12)
    assert moved.mpjpe == pytest.approx(0.0, abs=1e-12)

    hand_shift = torch.tensor([0.01, 0.0, 0.0], dtype=torch.float64)
    frame = evaluate_frame(translated(gt, hand_shift, hand_only=True), gt)
    num_face = gt.face_vertices.shape[0]
    num_hand = gt.hands["right"].vertices.shape[0]
    assert frame.pve == pytest.approx(0.01 * num_hand / (num_face + num_hand), rel=1e-9)
    assert frame.pve_hand == pytest.approx(0.01, rel=1e-9)
    assert frame.pve_face == pytest.approx(0.0, abs=1e-12)
    assert frame.mpjpe == pytest.approx(0.01 * 21 / (68 + 21), rel=1e-9)
    # A rigidly moved hand is perfect after per-part Procrustes.
    assert frame.pa_mpjpe == pytest.approx(0.0, abs=1e-9)


def test_touchness_counts_only_ground_truth_touch_frames():
    touch_gt = make_sample("a", hand_gap=0.002)
    far_pred = make_sample("b", hand_gap=0.02)  # 2 cm away
    no_touch_gt = make_sample("c", hand_gap=0.03)
    frames = [
        evaluate_frame(touch_gt, touch_gt),  # GT touch, pred touch
        evaluate_frame(far_pred, make_sample("b", hand_gap=0.002)),  # GT touch, pred 2 cm off
        evaluate_frame(touch_gt, no_touch_gt),  # no GT touch: not counted, even if pred touches
    ]
    assert [f.gt_touch for f in frames] == [True, True, False]
    assert [f.pred_touch for f in frames] == [True, False, True]
    summary = summarize(frames)
    assert summary["num_touch_frames"] == 2
    assert summary["touchness"] == pytest.approx(50.0)
    assert summary["non_collision"] == 100.0
    assert summary["f_score"] == pytest.approx(2 * 100 * 50 / 150)
    # With a single GT-touching frame whose prediction is 2 cm away, touchness is 0.
    assert summarize(frames[1:])["touchness"] == 0.0
    assert summarize(frames[1:])["f_score"] == 0.0


def test_collision_frame_and_frame_without_predicted_hand():
    gt = make_sample(hand_gap=0.002)
    deep = make_sample(hand_gap=-0.008)  # 8 mm inside: collides
    no_hand = make_sample(hand_gap=None)
    frames = [evaluate_frame(deep, gt), evaluate_frame(no_hand, gt)]
    assert frames[0].collides and frames[0].max_penetration == pytest.approx(0.008, abs=3e-4)
    assert frames[0].col_dist > 0
    # A GT hand missing in the prediction: no PVE/MPJPE hand terms, no touch, no collision.
    missing = frames[1]
    assert missing.hands_missing == ("right",) and missing.hands_matched == ()
    assert missing.col_dist == 0.0 and not missing.collides and not missing.pred_touch
    assert math.isnan(missing.pve_hand)
    assert missing.pve == pytest.approx(missing.pve_face)
    # Its GT hand contacts count as false negatives.
    assert missing.hand_contact == ContactCounts(tp=0, fp=0, fn=5, tn=37)
    summary = summarize(frames)
    assert summary["non_collision"] == 50.0
    assert summary["touchness"] == 50.0
    assert summary["num_collision_frames"] == 1 and summary["num_missing_hands"] == 1


def test_deformation_error_and_contact_in_frame():
    gt = make_sample(hand_gap=0.002)
    pred = make_sample(hand_gap=0.002, deform=False)  # no deformation, no face contact
    frame = evaluate_frame(pred, gt)
    assert frame.num_deform_vertices > 0
    assert frame.deform_err == pytest.approx(0.002)
    assert frame.face_contact.tp == 0 and frame.face_contact.fn == frame.num_deform_vertices
    # The undeformed prediction's face differs from GT by 2 mm on those vertices.
    num_face = gt.face_vertices.shape[0]
    assert frame.pve_face == pytest.approx(0.002 * frame.num_deform_vertices / num_face)
    summary = summarize([frame])
    assert summary["deform_err_mm"] == pytest.approx(2.0)
    assert summary["contact_recall_face"] == 0.0 and math.isnan(summary["contact_precision_face"])
    # No GT deformation or contact anywhere: nan.
    plain = make_sample(hand_gap=0.03, deform=False)
    assert math.isnan(summarize([evaluate_frame(plain, plain)])["deform_err_mm"])


def test_different_topology_raises():
    gt = make_sample()
    pred = make_sample()
    pred.face_vertices = pred.face_vertices[:-1]
    with pytest.raises(InputError, match="face_vertices"):
        evaluate_frame(pred, gt)
    with pytest.raises(InputError):
        summarize([])


def test_two_hands_matched_by_side():
    gt = make_sample(hand_gap=0.002, side="right")
    left_centre = torch.tensor([-(RADIUS + 0.03 + HAND_RADIUS), 0.0, 0.5], dtype=torch.float64)
    gt.hands["left"] = make_hand("left", left_centre)
    # Prediction: the right hand is right; the left hand is 1 cm off in y.
    pred = make_sample(hand_gap=0.002, side="right")
    pred.hands["left"] = make_hand(
        "left", left_centre + torch.tensor([0.0, 0.01, 0.0], dtype=torch.float64)
    )
    frame = evaluate_frame(pred, gt)
    assert frame.hands_matched == ("left", "right")
    num_hand = gt.hands["left"].vertices.shape[0]
    assert frame.pve_hand == pytest.approx(0.01 / 2, rel=1e-9)
    num_face = gt.face_vertices.shape[0]
    assert frame.pve == pytest.approx(0.01 * num_hand / (num_face + 2 * num_hand), rel=1e-9)
    assert frame.gt_touch and frame.pred_touch


def test_relative_translation_and_false_touch_rate():
    # GT hands 3 cm and 2 mm from the head; the predictions put both on the surface (0.5 mm).
    far = evaluate_frame(make_sample("0", hand_gap=0.0005), make_sample("0", hand_gap=0.03))
    near = evaluate_frame(make_sample("1", hand_gap=0.0005), make_sample("1", hand_gap=0.002))
    assert far.rel_trans == pytest.approx(0.0295, abs=1e-9)
    assert near.rel_trans == pytest.approx(0.0015, abs=1e-9)
    summary = summarize([far, near])
    assert summary["rel_trans_mm"] == pytest.approx(15.5, abs=1e-6)
    assert summary["num_no_touch_frames"] == 1
    assert summary["false_touch_rate"] == 100.0  # the one non-touching GT frame is touched
    honest = evaluate_frame(make_sample("2", hand_gap=0.03), make_sample("2", hand_gap=0.03))
    assert summarize([honest, near])["false_touch_rate"] == 0.0
    assert math.isnan(summarize([near])["false_touch_rate"])  # no non-touching GT frame
    assert math.isnan(evaluate_frame(make_sample("3", None), make_sample("3", None)).rel_trans)
