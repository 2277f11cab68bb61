"""The synthetic contact sheet and the ground truth as a capture."""

import cv2
import numpy as np
import pytest

from handface.capture_parts import ground_truth_capture, touched_regions_by_hand
from handface.data.synth import SynthDataset
from handface.viz.deformation_maps import contact_sheet, sample_row
from handface.viz.scene_views import PANEL_BACKGROUND
from handface.viz.verdict import frame_caption


@pytest.fixture(scope="module")
def dataset(synth_dataset):
    return SynthDataset(synth_dataset)


def test_ground_truth_capture_states_the_labels(dataset):
    for index in range(len(dataset)):
        sample = dataset[index]
        truth = ground_truth_capture(sample)
        assert truth.mode == "ground truth" and truth.image.shape == (160, 160, 3)
        np.testing.assert_allclose(
            truth.face.vertices_deformed, sample.face_vertices_deformed.double().numpy(), atol=1e-6
        )
        assert set(truth.hands) == set(sample.hands)
        for side, hand in truth.hands.items():
            labelled = bool(sample.hands[side].contact.max() > 0.5)
            assert hand.touching == labelled
            # a labelled touch is within the contact distance (5 mm) of the deformed face
            assert (hand.min_distance_mm <= 5.0) == labelled or not labelled
            assert np.isnan(hand.detected_keypoints2d).all()
        assert truth.touching == sample.in_contact
        if truth.touching:
            assert truth.touched_regions and set(touched_regions_by_hand(truth)) == {
                side for side, hand in truth.hands.items() if hand.touching
            }
            assert any("touching" in line for line in frame_caption(truth))
        else:
            assert not any(" touching:" in line for line in frame_caption(truth))


def test_contact_sheet_rows_and_legend(dataset):
    size = 96
    row = sample_row(dataset[0], size)
    assert row.shape[1] == 6 * size and size < row.shape[0] < 2 * size
    # the first cell is the render itself, the second has the truth drawn over it
    render = cv2.resize(ground_truth_capture(dataset[0]).image, (size, size),
                        interpolation=cv2.INTER_AREA)  # fmt: skip
    np.testing.assert_array_equal(row[:size, :size], render)
    assert (row[size // 2 :, size : 2 * size] != row[size // 2 :, :size]).any()
    sheet = np.asarray(contact_sheet(dataset, [0, 1], size))
    assert sheet.shape[1] == 6 * size and sheet.shape[0] > 2 * row.shape[0]
    # the view and face-map cells are drawn on the panel colour
    background = np.array(PANEL_BACKGROUND, np.uint8)
    side = sheet[:size, 2 * size : 3 * size]
    assert 0.2 < (side == background).all(-1).mean() < 0.99
