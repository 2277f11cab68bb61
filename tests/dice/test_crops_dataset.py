"""The crop rule and the training items: exact maps, round trips, frames consistent in 2D/3D."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from handface.dice.crops import Crop, CropConfig, crop_box
from handface.dice.trainer import ScheduleConfig, epoch_batches, learning_rate, rank_share


def test_crop_box_is_the_grown_bounding_square():
    crop = crop_box(np.array([[10.0, 20.0], [50.0, 40.0], [np.nan, np.nan]]), CropConfig(scale=1.5))
    assert crop.centre.tolist() == [30.0, 30.0]
    assert crop.side == pytest.approx(60.0)


def test_crop_box_needs_a_finite_point():
    with pytest.raises(ValueError):
        crop_box(np.full((3, 2), np.nan), CropConfig())


@pytest.mark.parametrize("angle", [0.0, 0.3, -1.2])
@pytest.mark.parametrize("flipped", [False, True])
def test_normalised_coordinates_round_trip_and_match_the_warp(angle, flipped):
    crop = Crop(centre=np.array([40.0, 30.0]), side=50.0, size=64, angle=angle, flipped=flipped)
    points = np.array([[40.0, 30.0], [52.0, 21.0], [20.0, 44.0]])
    normalised = crop.to_normalised(points)
    np.testing.assert_allclose(crop.to_image(normalised), points, atol=1e-9)
    np.testing.assert_allclose(normalised[0], [0.0, 0.0], atol=1e-12)
    # the affine warp sends each point to the output pixel its normalised coordinates name
    affine = crop.affine()
    pixels = points @ affine[:, :2].T + affine[:, 2]
    np.testing.assert_allclose((pixels + 0.5) / 32.0 - 1.0, normalised, atol=1e-9)


def test_flip_negates_x_and_rotation_turns_counter_clockwise_on_screen():
    base = Crop(centre=np.zeros(2), side=2.0, size=8)
    right = np.array([[1.0, 0.0]])
    assert base.mirrored().to_normalised(right).tolist() == [[-1.0, 0.0]]
    turned = Crop(centre=np.zeros(2), side=2.0, size=8, angle=math.pi / 2).to_normalised(right)
    # the content turns counter-clockwise on screen (y down): a point right of centre goes up
    np.testing.assert_allclose(turned, [[0.0, -1.0]], atol=1e-12)


def test_warp_moves_a_marked_pixel_where_the_map_says():
    image = np.zeros((40, 60, 3), np.uint8)
    image[10, 45] = 255
    crop = Crop(centre=np.array([30.0, 20.0]), side=40.0, size=40, angle=0.4, flipped=True)
    out = crop.apply(image)
    row, col = np.unravel_index(out[..., 0].argmax(), out.shape[:2])
    expected = (crop.to_normalised(np.array([[45.0, 10.0]]))[0] + 1.0) * 20.0 - 0.5
    assert abs(col - expected[0]) <= 1 and abs(row - expected[1]) <= 1


def test_epoch_batches_are_a_seeded_partition():
    a = epoch_batches(37, 8, seed=3, epoch=1)
    assert a == epoch_batches(37, 8, seed=3, epoch=1)
    assert a != epoch_batches(37, 8, seed=3, epoch=2)
    flat = sum(a, [])
    assert len(a) == 4 and len(set(flat)) == 32 and all(len(b) == 8 for b in a)
    assert epoch_batches(5, 8, seed=0, epoch=0)[0] != [] and len(epoch_batches(5, 8, 0, 0)) == 1


def test_rank_shares_put_a_global_batch_back_together():
    batch = list(range(16))
    assert rank_share(batch, 0, 2) + rank_share(batch, 1, 2) == batch
    from handface.errors import InputError

    with pytest.raises(InputError):
        rank_share(list(range(15)), 0, 2)


def test_learning_rate_warms_up_then_decays_to_the_floor():
    schedule = ScheduleConfig(lr=1.0, warmup_fraction=0.1, final_lr_fraction=0.1)
    rates = [learning_rate(step, 100, schedule) for step in range(100)]
    assert rates[0] == pytest.approx(0.1) and rates[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(rates[10:], rates[11:], strict=False))
    assert learning_rate(100, 100, schedule) == pytest.approx(0.1)


@pytest.fixture(scope="module")
def mirror():
    from handface.models.mesh_sampling import load_mesh_sampling

    return load_mesh_sampling("anny").mirror


def _toy_sample(side: str):
    """A synthetic-like sample: a head of 4 points and a hand, projected by a pinhole camera."""
    from handface.data.sample import HandSample, InteractionSample

    K = torch.tensor([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])

    def project(points):
        uvw = points @ K.T
        return uvw[:, :2] / uvw[:, 2:]

    torch.manual_seed(0)
    face = torch.randn(4538, 3) * 0.05 + torch.tensor([0.02, -0.01, 0.6])
    hand = torch.randn(1609, 3) * 0.03 + torch.tensor([0.08, 0.05, 0.58])
    keypoints = hand[:21].clone()
    lm68 = face[:68].clone()
    return InteractionSample(
        key="x", image_size=(640, 480), K=K, R=torch.eye(3), t=torch.zeros(3),
        face_vertices=face, face_vertices_deformed=face + 0.001,
        face_faces=torch.zeros(1, 3).long(),
        deformation=torch.full((4538, 3), 0.001), head_rotation=torch.eye(3),
        face_contact=torch.zeros(4538), face_keypoints3d=lm68, face_keypoints2d=project(lm68),
        face_keypoints68_3d=lm68, face_keypoints68_2d=project(lm68),
        head_params={"expression": torch.rand(52), "shape": torch.rand(9)},
        hands={side: HandSample(side, hand, torch.zeros(1, 3).long(), keypoints, project(keypoints),
                                torch.zeros(1609), {"global_orient": torch.tensor([0.1, 0.2, 0.3]),
                                "articulation": torch.randn(20), "shape": torch.rand(6)})},
    )  # fmt: skip


@pytest.mark.parametrize("side", ["right", "left"])
def test_item_targets_are_weak_perspective_consistent(side, mirror):
    from handface.dice.dataset import item_targets, training_crop

    sample = _toy_sample(side)
    crop = training_crop(sample, side, CropConfig(size=128), None, None)
    assert crop.flipped == (side == "left")
    targets = item_targets(sample, side, crop, mirror)
    # the head-centred frame: the undeformed face's mean is the origin (up to the permutation)
    assert targets["face_vertices"].mean(0).abs().max() < 1e-5
    torch.testing.assert_close(
        targets["deformation"].norm(dim=-1), torch.full((4538,), 3**0.5 * 1e-3)
    )
    # 2D targets are the perspective projections; near the face a scaled orthographic view of
    # the 3D targets reproduces them to within the perspective effect of a 10 cm deep scene
    for part in ("face", "hand"):
        xy, uv = targets[f"{part}_keypoints3d"][:, :2], targets[f"{part}_keypoints2d"]
        design = torch.cat([xy[:, :1], torch.ones(len(xy), 1)], 1)
        fit_u = torch.linalg.lstsq(design, uv[:, :1]).solution
        scale = float(fit_u[0])
        assert scale > 0  # mirrored crops mirror the 3D frame too: x keeps its orientation
        assert float((design @ fit_u - uv[:, :1]).abs().mean()) < 0.03


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("angle", [0.0, 0.5])
def test_crop_camera_reprojects_the_targets_exactly(side, angle, mirror):
    """With the head centre's true placement, projecting the 3D targets gives the 2D targets."""
    from dataclasses import replace

    from handface.dice.dataset import item_targets, training_crop
    from handface.dice.projection import CropCamera

    sample = _toy_sample(side)
    crop = training_crop(sample, side, CropConfig(size=128), None, None)
    crop = replace(crop, angle=angle, centre=crop.centre + 7.0)
    targets = item_targets(sample, side, crop, mirror)
    batch = {k: v[None] for k, v in targets.items()}
    camera_model = CropCamera.from_batch(batch)
    centre = sample.face_vertices.mean(0)
    pixel = (sample.K @ centre)[:2] / centre[2]
    tx_ty = torch.from_numpy(crop.to_normalised(pixel[None].numpy())).float()
    scale = camera_model.focal() / centre[2]
    camera = torch.cat([scale, tx_ty[0]])[None]
    torch.testing.assert_close(camera_model.head_centre(camera)[0], centre, atol=1e-5, rtol=0)
    for part in ("face", "hand"):
        projected = camera_model.project(targets[f"{part}_keypoints3d"][None], camera)[0]
        torch.testing.assert_close(projected, targets[f"{part}_keypoints2d"], atol=1e-4, rtol=0)


def test_training_set_over_several_datasets(synth_dataset, mirror):
    from handface.dice.dataset import DiceDataConfig, DiceTrainingSet

    config = DiceDataConfig(crop=CropConfig(size=64), augment=None)
    one = DiceTrainingSet(synth_dataset, mirror, 1609, config)
    two = DiceTrainingSet([synth_dataset, synth_dataset], mirror, 1609, config)
    assert len(one) == 6 and len(two) == 12
    for index in (0, 5):
        a, b = two[index], two[index + 6]
        assert torch.equal(a["image"], b["image"])
        assert torch.equal(a["face_vertices"], one[index]["face_vertices"])
