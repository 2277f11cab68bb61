"""Property tests of the benchmark metrics on degenerate input (issue 14).

Every metric gives a clear error (:class:`~handface.errors.InputError` / ``ValueError`` with a
message that says what is wrong) or a defined result: finite for finite input, NaN only where
the definition says so (a ratio with a zero denominator, an empty region, too few frames).
Inputs are repeated, collinear and coincident points, single points, empty sets, batches of 0,
NaN/inf values, and scales from 1e-6 to 1e6.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from handface.data.sample import HandSample, InteractionSample
from handface.errors import InputError
from handface.eval import (
    ContactCounts,
    FrameMetrics,
    collides,
    collision_distance,
    contact_scores,
    deformation_error,
    evaluate_frame,
    f_score,
    mpjpe,
    pa_mpjpe,
    pve,
    summarize,
    touches,
)
from handface.eval.temporal import (
    acceleration_error,
    contact_flips,
    contact_flips_per_100,
)
from handface.geometry import signed_distance

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from property_strategies import BAD, SCALES, UNIT, derandomized  # noqa: E402

FAST = derandomized(40)
QUICK = derandomized(20)


@st.composite
def point_sets(draw, min_points: int = 1, max_points: int = 8, n: int | None = None):
    """Unit-scale ``(N, 3)`` point sets, often degenerate (collinear, coincident, repeated)."""
    n = draw(st.integers(min_points, max_points)) if n is None else n
    layout = draw(st.sampled_from(["general", "collinear", "coincident", "repeated"]))
    if layout == "general" or n == 0:
        return draw(hnp.arrays(np.float64, (n, 3), elements=UNIT))
    if layout == "collinear":
        t = draw(hnp.arrays(np.float64, (n,), elements=UNIT))
        origin, direction = draw(hnp.arrays(np.float64, (2, 3), elements=UNIT))
        return origin + t[:, None] * direction
    if layout == "coincident":
        return np.repeat(draw(hnp.arrays(np.float64, (1, 3), elements=UNIT)), n, axis=0)
    distinct = draw(hnp.arrays(np.float64, (draw(st.integers(1, n)), 3), elements=UNIT))
    pick = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, len(distinct) - 1)))
    return distinct[pick]


@st.composite
def pred_gt(draw, min_points: int = 1, max_points: int = 8, batch: bool = True):
    """``(pred, gt, scale)``: same-shape point sets, optionally batched (batch 0 included)."""
    b = draw(st.integers(0, 3)) if batch and draw(st.booleans()) else None
    n = draw(st.integers(min_points, max_points))
    if b is None:
        pred, gt = draw(point_sets(n=n)), draw(point_sets(n=n))
    else:
        pred = np.array([draw(point_sets(n=n)) for _ in range(b)]).reshape(b, n, 3)
        gt = np.array([draw(point_sets(n=n)) for _ in range(b)]).reshape(b, n, 3)
    scale = draw(SCALES)
    return torch.tensor(pred * scale), torch.tensor(gt * draw(SCALES)), scale


def all_finite(*tensors) -> bool:
    return all(bool(torch.isfinite(torch.as_tensor(t)).all()) for t in tensors)


# --------------------------------------------------------------------------------------------
# PVE, MPJPE, PA-MPJPE
# --------------------------------------------------------------------------------------------


@FAST
@given(case=pred_gt())
def test_pve_and_mpjpe_are_finite_non_negative_and_zero_on_themselves(case):
    pred, gt, _ = case
    centre = pred.mean(dim=-2) if pred.shape[-2] else pred.new_zeros(pred.shape[:-2] + (3,))
    for value in (pve(pred, gt, centre, centre), mpjpe(pred, gt), mpjpe(pred, gt, centre, centre)):
        assert value.shape == pred.shape[:-2]
        assert all_finite(value) and bool((value >= 0).all())
    assert bool((pve(gt, gt, centre, centre) == 0).all())
    assert bool((mpjpe(pred, pred) == 0).all())


@FAST
@given(case=pred_gt(min_points=1, max_points=8))
def test_pa_mpjpe_is_finite_and_zero_on_itself_for_degenerate_sets(case):
    pred, gt, scale = case
    value = pa_mpjpe(pred, gt)
    assert value.shape == pred.shape[:-2]
    assert all_finite(value) and bool((value >= 0).all())
    # Identical sets align perfectly, collinear and coincident ones included.
    same = pa_mpjpe(gt, gt)
    extent = gt.abs().amax(dim=(-2, -1)) if gt.numel() else gt.new_zeros(gt.shape[:-2])
    assert bool((same <= 1e-7 * extent + 1e-300).all())


@QUICK
@given(case=pred_gt(batch=False), bad=BAD, which=st.booleans())
def test_pa_mpjpe_of_nan_or_inf_raises_and_plain_errors_propagate(case, bad, which):
    pred, gt, _ = case
    (pred if which else gt)[0, 0] = bad
    with pytest.raises(InputError, match="finite"):
        pa_mpjpe(pred, gt)
    assert not math.isfinite(float(mpjpe(pred, gt)))
    zero = torch.zeros(3, dtype=pred.dtype)
    assert not math.isfinite(float(pve(pred, gt, zero, zero)))


def test_zero_points_raise_and_batches_of_zero_are_empty():
    empty = torch.zeros(0, 3)
    zero = torch.zeros(3)
    for call in (
        lambda: pve(empty, empty, zero, zero),
        lambda: mpjpe(empty, empty),
        lambda: pa_mpjpe(empty, empty),
        lambda: pa_mpjpe(torch.zeros(2, 0, 3), torch.zeros(2, 0, 3)),
    ):
        with pytest.raises(InputError, match="N >= 1"):
            call()
    batch0 = torch.zeros(0, 5, 3)
    assert pve(batch0, batch0, torch.zeros(0, 3), torch.zeros(0, 3)).shape == (0,)
    assert mpjpe(batch0, batch0).shape == (0,)
    assert pa_mpjpe(batch0, batch0).shape == (0,)


def test_pa_mpjpe_pins():
    gt = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=torch.float64)
    assert float(pa_mpjpe(gt, gt)) < 1e-12  # identical sets: 0
    assert float(pa_mpjpe(5.0 * gt + 3.0, gt)) < 1e-12  # a similarity away: 0
    # A single point (and coincident points): scale 0 maps everything onto the GT centroid.
    one = torch.tensor([[1.0, 2, 3]])
    assert float(pa_mpjpe(one, torch.tensor([[7.0, 8, 9]]))) == 0.0
    coincident = torch.ones(4, 3, dtype=torch.float64)
    spread = gt - gt.mean(0)
    expected = torch.linalg.vector_norm(spread, dim=-1).mean()
    torch.testing.assert_close(pa_mpjpe(coincident, gt), expected)
    # Collinear sets: the line maps onto the line exactly.
    line = torch.tensor([[0.0, 0, 0], [1, 1, 1], [3, 3, 3]], dtype=torch.float64)
    assert float(pa_mpjpe(line, 2 * line.flip(1) - 1)) < 1e-12


# --------------------------------------------------------------------------------------------
# Collision, touch, F-score
# --------------------------------------------------------------------------------------------


@FAST
@given(
    depths=hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=1, max_dims=2, min_side=0, max_side=5),
        elements=st.floats(0.0, 0.05, exclude_max=True),
    )
)
def test_collision_distance_is_the_mean_depth_and_zero_when_empty(depths):
    value = collision_distance(torch.tensor(depths))
    assert value.shape == depths.shape[:-1] and all_finite(value)
    expected = depths.mean(axis=-1) if depths.shape[-1] else np.zeros(depths.shape[:-1])
    np.testing.assert_allclose(value.numpy(), expected, rtol=1e-12, atol=1e-300)
    assert np.array_equal(collides(torch.tensor(depths)).numpy(), (depths > 0.005).any(axis=-1))


_SPHERE = trimesh.creation.icosphere(subdivisions=2, radius=0.1)
HEAD_V = torch.tensor(_SPHERE.vertices)
HEAD_F = torch.tensor(_SPHERE.faces)


@FAST
@given(hand=point_sets(0, 5), scale=st.sampled_from([0.05, 0.1, 0.2, 1e3]))
def test_touches_is_the_minimum_signed_distance_test(hand, scale):
    hand = torch.tensor(hand * scale)
    got = touches(hand, HEAD_V, HEAD_F)
    assert got.dtype == torch.bool and got.shape == ()
    if len(hand) == 0:
        assert not bool(got)  # no hand vertices: no touch
    else:
        sdf = signed_distance(hand, HEAD_V, HEAD_F).sdf
        assert bool(got) == bool(sdf.min() <= 0.005)


def test_touch_of_a_single_vertex_hand_and_a_nan_vertex():
    on = torch.tensor([[0.0, 0.0, 0.1]], dtype=torch.float64)  # a head vertex (icosphere pole)
    assert bool(touches(on, HEAD_V, HEAD_F))
    nan = torch.tensor([[math.nan, 0.0, 0.0]], dtype=torch.float64)
    assert bool(touches(torch.cat([nan, on]), HEAD_V, HEAD_F))  # NaN does not hide the touch
    assert not bool(touches(nan, HEAD_V, HEAD_F))
    bad_head = HEAD_V.clone()
    bad_head[3, 1] = math.inf
    with pytest.raises(InputError, match="finite"):
        touches(on, bad_head, HEAD_F)


PERCENT = st.floats(0.0, 100.0)


@FAST
@given(a=PERCENT, b=PERCENT)
def test_f_score_is_a_symmetric_mean_between_its_inputs(a, b):
    value = f_score(a, b)
    assert isinstance(value, float) and math.isfinite(value)
    assert value == f_score(b, a)
    assert min(a, b) - 1e-9 <= value <= max(a, b) + 1e-9
    tensor = f_score(torch.tensor([a], dtype=torch.float64), torch.tensor([b], dtype=torch.float64))
    assert float(tensor[0]) == pytest.approx(value, rel=1e-12, abs=1e-300)


def test_f_score_pins():
    assert f_score(0.0, 0.0) == 0.0  # both zero: 0, not 0/0
    assert float(f_score(torch.zeros(2), torch.zeros(2)).sum()) == 0.0
    assert math.isnan(f_score(100.0, math.nan))  # no GT touch frame: touchness and F are nan
    assert math.isnan(float(f_score(torch.tensor(100.0), torch.tensor(math.nan))))
    assert f_score(100.0, 100.0) == 100.0


def _frame(key: str, *, gt_touch: bool, pred_touch: bool, collides: bool) -> FrameMetrics:
    return FrameMetrics(
        key=key,
        pve=0.001,
        pve_face=0.001,
        pve_hand=math.nan,
        mpjpe=0.001,
        pa_mpjpe=0.001,
        col_dist=0.0,
        max_penetration=0.0,
        collides=collides,
        gt_touch=gt_touch,
        pred_touch=pred_touch,
        face_contact=ContactCounts(),
        hand_contact=ContactCounts(),
        deform_err=math.nan,
        num_deform_vertices=0,
    )


def test_summary_of_frames_without_touch_or_contact_is_defined():
    frames = [_frame(str(i), gt_touch=False, pred_touch=False, collides=False) for i in range(3)]
    out = summarize(frames)
    assert out["non_collision"] == 100.0
    assert math.isnan(out["touchness"]) and math.isnan(out["f_score"])  # documented nan
    assert out["false_touch_rate"] == 0.0
    assert math.isnan(out["contact_f1_face"]) and math.isnan(out["contact_f1_hand"])
    assert math.isnan(out["deform_err_mm"]) and math.isnan(out["pve_hand_mm"])
    assert out["pve_mm"] == pytest.approx(1.0)
    # Every frame colliding and none touching: both rates 0, F = 0 (not nan).
    frames = [_frame(str(i), gt_touch=True, pred_touch=False, collides=True) for i in range(2)]
    out = summarize(frames)
    assert out["non_collision"] == 0.0 and out["touchness"] == 0.0 and out["f_score"] == 0.0
    with pytest.raises(InputError, match="no frames"):
        summarize([])


# --------------------------------------------------------------------------------------------
# Contact scores and deformation error
# --------------------------------------------------------------------------------------------


@FAST
@given(
    data=st.data(),
    shape=hnp.array_shapes(min_dims=1, max_dims=2, min_side=0, max_side=6),
)
def test_contact_scores_are_ratios_or_nan_exactly_when_undefined(data, shape):
    values = st.floats(0.0, 1.0) | st.just(math.nan)
    prob = data.draw(hnp.arrays(np.float64, shape, elements=values))
    label = data.draw(hnp.arrays(np.float64, shape, elements=values))
    s = contact_scores(torch.tensor(prob), torch.tensor(label))
    c = s.counts
    assert c.total == prob.size
    with np.errstate(invalid="ignore"):
        pred, gt = prob > 0.5, label > 0.5  # NaN counts as no contact
    assert (c.tp, c.fp, c.fn, c.tn) == (
        int((pred & gt).sum()),
        int((pred & ~gt).sum()),
        int((~pred & gt).sum()),
        int((~pred & ~gt).sum()),
    )
    for value, den in (
        (s.precision, c.tp + c.fp),
        (s.recall, c.tp + c.fn),
        (s.f1, 2 * c.tp + c.fp + c.fn),
        (s.accuracy, c.total),
    ):
        assert math.isnan(value) == (den == 0)
        assert math.isnan(value) or 0.0 <= value <= 1.0
    # Pooling: the counts of two halves add up to the counts of the whole.
    flat_p, flat_l = torch.tensor(prob).reshape(-1), torch.tensor(label).reshape(-1)
    half = flat_p.numel() // 2
    pooled = ContactCounts.from_predictions(
        flat_p[:half], flat_l[:half]
    ) + ContactCounts.from_predictions(flat_p[half:], flat_l[half:])
    assert pooled == c


def test_contact_scores_of_empty_sets_are_nan():
    s = contact_scores(torch.zeros(0), torch.zeros(0))
    assert s.counts == ContactCounts()
    assert all(math.isnan(x) for x in (s.precision, s.recall, s.f1, s.accuracy))
    # No positive anywhere: F1 undefined, accuracy 1.
    s = contact_scores(torch.zeros(4), torch.zeros(4))
    assert math.isnan(s.f1) and s.accuracy == 1.0
    with pytest.raises(InputError, match="same shape"):
        contact_scores(torch.zeros(3), torch.zeros(4))


@FAST
@given(
    case=pred_gt(min_points=0, max_points=6),
    data=st.data(),
)
def test_deformation_error_is_finite_on_a_region_and_nan_without_one(case, data):
    pred, gt, _ = case
    mask = torch.tensor(
        data.draw(hnp.arrays(np.bool_, pred.shape[:-1], elements=st.booleans())),
        dtype=torch.bool,
    )
    value = deformation_error(pred, gt, mask)
    assert value.shape == pred.shape[:-2]
    has_region = mask.any(dim=-1)
    assert torch.equal(torch.isnan(value), ~has_region)  # nan exactly when the region is empty
    assert bool((value[has_region] >= 0).all()) and all_finite(value[has_region])


def test_deformation_error_pins():
    d = torch.tensor([[0.0, 0, 0.002], [0, 0, 0]])
    assert math.isnan(float(deformation_error(torch.zeros(0, 3), torch.zeros(0, 3), d[:0, 0] > 0)))
    mean = deformation_error(torch.zeros(2, 3), d, torch.tensor([True, True]))
    assert float(mean) == pytest.approx(0.001)
    with pytest.raises(InputError, match="region_mask"):
        deformation_error(torch.zeros(2, 3), d, torch.tensor([True]))


# --------------------------------------------------------------------------------------------
# A whole frame with degenerate geometry
# --------------------------------------------------------------------------------------------


def _sample(face_kp: torch.Tensor, hand_vertices: torch.Tensor) -> InteractionSample:
    v = HEAD_V + torch.tensor([0.0, 0.0, 0.5], dtype=torch.float64)
    hand = HandSample(
        side="right",
        vertices=hand_vertices,
        faces=torch.zeros(0, 3, dtype=torch.int64),
        keypoints3d=face_kp[:21].clone(),
        keypoints2d=torch.zeros(21, 2, dtype=torch.float64),
        contact=torch.ones(hand_vertices.shape[0], dtype=torch.float64),
    )
    return InteractionSample(
        key="degenerate",
        image_size=(8, 8),
        K=torch.eye(3, dtype=torch.float64),
        R=torch.eye(3, dtype=torch.float64),
        t=torch.zeros(3, dtype=torch.float64),
        face_vertices=v,
        face_vertices_deformed=v.clone(),
        face_faces=HEAD_F,
        deformation=torch.zeros_like(v),
        head_rotation=torch.eye(3, dtype=torch.float64),
        face_contact=torch.zeros(v.shape[0], dtype=torch.float64),
        face_keypoints3d=face_kp.clone(),
        face_keypoints2d=torch.zeros(68, 2, dtype=torch.float64),
        face_keypoints68_3d=face_kp.clone(),
        face_keypoints68_2d=torch.zeros(68, 2, dtype=torch.float64),
        hands={"right": hand},
    )


@QUICK
@given(
    kp=point_sets(n=68),
    pred_kp=point_sets(n=68),
    hand=point_sets(1, 3),
    scale=st.sampled_from([1e-3, 0.1, 1.0]),
)
def test_evaluate_frame_is_finite_for_degenerate_keypoints_and_single_vertex_hands(
    kp, pred_kp, hand, scale
):
    gt = _sample(torch.tensor(kp * scale), torch.tensor(hand * 0.1))
    pred = _sample(torch.tensor(pred_kp * scale), torch.tensor(hand[::-1] * 0.1))
    frame = evaluate_frame(pred, gt)
    for name in ("pve", "pve_face", "pve_hand", "mpjpe", "pa_mpjpe", "col_dist", "rel_trans"):
        assert math.isfinite(getattr(frame, name)), name
    assert math.isnan(frame.deform_err) and frame.num_deform_vertices == 0
    assert evaluate_frame(gt, gt).pa_mpjpe < 1e-6 * scale + 1e-12


# --------------------------------------------------------------------------------------------
# Temporal metrics
# --------------------------------------------------------------------------------------------


@FAST
@given(
    shape=st.tuples(st.integers(0, 6), st.integers(0, 4)),
    data=st.data(),
    scale=SCALES,
)
def test_acceleration_error_is_finite_or_nan_for_too_few_frames(shape, data, scale):
    t, n = shape
    pred = data.draw(hnp.arrays(np.float64, (t, n, 3), elements=UNIT)) * scale
    gt = data.draw(hnp.arrays(np.float64, (t, n, 3), elements=UNIT)) * scale
    valid = data.draw(hnp.arrays(np.bool_, (t,), elements=st.booleans()))
    pred, gt, valid = torch.tensor(pred), torch.tensor(gt), torch.tensor(valid)
    value = acceleration_error(pred, gt)
    if t < 3 or n == 0:
        assert math.isnan(value)
    else:
        assert math.isfinite(value) and value >= 0
        assert acceleration_error(gt, gt) == 0.0
    masked = acceleration_error(pred, gt, valid)
    scored = t >= 3 and n > 0 and bool((valid[:-2] & valid[1:-1] & valid[2:]).any())
    assert math.isfinite(masked) == scored
    # Frames outside ``valid`` may hold NaN without affecting the result.
    if t >= 1 and not bool(valid[0]):
        dirty = pred.clone()
        dirty[0] = math.nan
        again = acceleration_error(dirty, gt, valid)
        assert again == masked or (math.isnan(again) and math.isnan(masked))


def test_acceleration_error_pins_and_errors():
    frames = torch.arange(6.0, dtype=torch.float64)[:, None, None].expand(6, 2, 3)
    assert acceleration_error(frames, 3.0 * frames + 1.0) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="valid must be a boolean mask"):
        acceleration_error(frames, frames, torch.ones(4, dtype=torch.bool))
    with pytest.raises(ValueError, match="valid must be a boolean mask"):
        acceleration_error(frames, frames, torch.ones(6))
    with pytest.raises(ValueError, match=r"\(T, N, 3\)"):
        acceleration_error(frames, frames[:, :1])


@FAST
@given(verdicts=hnp.arrays(np.bool_, st.integers(0, 30), elements=st.booleans()))
def test_contact_flips_are_bounded(verdicts):
    flips = contact_flips(verdicts)
    assert 0 <= flips <= max(len(verdicts) - 1, 0)
    rate = contact_flips_per_100(verdicts)
    if len(verdicts) < 2:
        assert math.isnan(rate) and flips == 0
    else:
        assert 0.0 <= rate <= 100.0
