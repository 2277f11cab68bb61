"""The capture sheet (overlay.png): its panels, and that it tells contact from no contact."""

from dataclasses import replace

import numpy as np
import pytest
import roma
import torch
from test_capture_overlay import HEIGHT, WIDTH, make_capture

from handface.capture import Capture, CapturedFace
from handface.models import HeadParams
from handface.models.face_areas import load_face_areas
from handface.viz.capture_sheet import MIN_PANEL, capture_sheet, sheet_lines
from handface.viz.face_map import FRONT_ROTATION, deformation_scale_mm, face_map_panels
from handface.viz.legend import legend_strip
from handface.viz.scene_views import PANEL_BACKGROUND, fitted_window, view_camera

S = MIN_PANEL  # the test photo is small: panels take their least size, the photo is enlarged


def red_pixels(image: np.ndarray) -> int:
    p = image.astype(int)
    return int(
        ((p[..., 0] > 150) & (p[..., 0] > p[..., 1] + 80) & (p[..., 0] > p[..., 2] + 80)).sum()
    )


def facing(capture: Capture) -> Capture:
    """The flat test face turned the way a head faces the camera (canonical -y towards it)."""
    if capture.face is not None:
        capture.face.rotation = FRONT_ROTATION.astype(np.float32)
    return capture


def panels(sheet: np.ndarray) -> dict[str, np.ndarray]:
    """The four panels, by the documented layout (the photo enlarged to 2 S rows)."""
    photo_width = round(WIDTH * 2 * S / HEIGHT)
    x = photo_width
    return {
        "photo": sheet[: 2 * S, :photo_width],
        "side": sheet[:S, x : x + S],
        "top": sheet[:S, x + S : x + 2 * S],
        "contact": sheet[S : 2 * S, x : x + S],
        "pressed": sheet[S : 2 * S, x + S : x + 2 * S],
        "legend": sheet[2 * S :],
    }


def test_sheet_layout_and_panels():
    sheet = capture_sheet(facing(make_capture()))
    photo_width = round(WIDTH * 2 * S / HEIGHT)
    assert sheet.dtype == np.uint8 and sheet.shape[1] == photo_width + 2 * S
    assert 2 * S + 20 <= sheet.shape[0] <= 2 * S + 120  # the legend below
    parts = panels(sheet)
    background = np.array(PANEL_BACKGROUND, np.uint8)
    for name in ("side", "top", "contact", "pressed"):
        panel = parts[name]
        plain = (panel == background).all(-1).mean()
        assert 0.05 < plain < 0.99, name  # a dark panel with something drawn on it
    # the photo panel is the photo (enlarged) where nothing is drawn: not the panel colour
    assert (parts["photo"] == background).all(-1).mean() < 0.05
    assert red_pixels(parts["legend"]) > 20  # the contact colour bar


def test_contact_and_no_contact_sheets_differ_where_it_matters():
    touching = capture_sheet(facing(make_capture(touching=True)))
    capture = facing(make_capture(touching=False))
    capture.face.contact[:] = 0.0
    capture.hands["right"].contact[:] = 0.0
    apart = capture_sheet(capture)
    assert touching.shape == apart.shape
    on, off = panels(touching), panels(apart)
    # red contact on the face map only where it touches, and more red over the photo
    assert red_pixels(on["contact"]) > 200 and red_pixels(off["contact"]) == 0
    assert red_pixels(on["photo"]) > red_pixels(off["photo"]) + 500
    # the verdict line on the photo differs
    assert (on["photo"][:30] != off["photo"][:30]).any()
    assert [t for t, _ in sheet_lines(make_capture(touching=True))] == [
        "right hand touching: left cheek, chin"
    ]
    assert [t for t, _ in sheet_lines(capture)] == ["right hand not touching"]


def test_a_capture_with_nothing_found_still_draws_every_panel():
    empty = make_capture(face=False, hand=False)
    sheet = capture_sheet(empty)
    assert sheet.shape[1] == round(WIDTH * 2 * S / HEIGHT) + 2 * S
    assert [t for t, _ in sheet_lines(empty)] == ["no face or hand found"]
    hand_only = capture_sheet(make_capture(face=False))
    assert hand_only.shape == sheet.shape


def test_views_frame_every_mesh():
    layers = [(torch.tensor([[-0.1, -0.1, 1.0], [0.1, 0.1, 1.2]]), None, None, 1.0),
              (torch.tensor([[0.3, 0.0, 0.7]]), None, None, 1.0)]  # fmt: skip
    points = np.concatenate([layer[0].numpy() for layer in layers])
    for view in ("side", "top"):
        centre, window = fitted_window(layers, view)
        assert window >= 0.3
        uv = view_camera(view, centre, 200, 200, window).project(points)
        assert (uv > 0).all() and (uv < 199).all()
    # side: depth grows to the right; top: depth grows upwards, x stays x
    side = view_camera("side", np.zeros(3), 100, 100, 0.5)
    near, far = side.project(np.array([[0.0, 0.0, -0.1], [0.0, 0.0, 0.1]]))
    assert far[0] > near[0] + 30 and abs(far[1] - near[1]) < 1e-6
    top = view_camera("top", np.zeros(3), 100, 100, 0.5)
    near, far, right = top.project(np.array([[0, 0, -0.1], [0, 0, 0.1], [0.1, 0, -0.1]]))
    assert far[1] < near[1] - 30 and right[0] > near[0] + 15


def canonical_face(head_model, rotation: torch.Tensor, contact_area: str | None) -> CapturedFace:
    """The neutral Anny head turned by ``rotation`` (axis-angle) 0.6 m in front of the camera,
    its ``contact_area`` in contact and pressed 2.5 mm there."""
    params = HeadParams(
        global_orient=rotation[None].float(), transl=torch.tensor([[0.0, 0.0, 0.6]])
    )
    with torch.no_grad():
        vertices = head_model(params).vertices[0].double().numpy()
    R = roma.rotvec_to_rotmat(rotation.double()).numpy()
    contact = np.zeros(len(vertices), np.float32)
    deformation = np.zeros_like(vertices)
    if contact_area is not None:
        mask = load_face_areas().mask(contact_area).numpy()
        contact[mask] = 1.0
        deformation[mask, 1] = 0.0025  # into the head: along +y, the face looks along -y
    nan = np.full((478, 2), np.nan, np.float32)
    zeros3 = np.zeros((478, 3), np.float32)
    return CapturedFace(
        params={}, vertices=vertices, vertices_deformed=vertices + deformation @ R.T,
        faces=head_model.faces.numpy(), deformation=deformation, rotation=R, contact=contact,
        landmarks3d=zeros3, landmarks2d=nan, keypoints68_3d=zeros3[:68], keypoints68_2d=nan[:68],
        detected_landmarks2d=nan,
    )  # fmt: skip


def test_face_map_is_frontal_whatever_the_head_pose(head_model):
    # the camera frame looks along +z with y down; the head's canonical frame has z up and the
    # face looking along -y: this turn makes the face look at the camera
    facing = torch.tensor([-np.pi / 2, 0.0, 0.0])
    turned = (roma.rotvec_to_rotmat(torch.tensor([0.0, 0.9, 0.0])) @ roma.rotvec_to_rotmat(
        facing)).double()  # fmt: skip
    size = 160
    maps = [
        face_map_panels(canonical_face(head_model, r, "left cheek"), size)
        for r in (facing.double(), roma.rotmat_to_rotvec(turned))
    ]
    (contact_a, pressed_a, scale_a), (contact_b, _, scale_b) = maps
    assert scale_a == scale_b == 3.0  # 2.5 mm rounds up to the 3 mm scale
    # the same map, however the head was turned in the photo (labels and all)
    assert np.abs(contact_a.astype(int) - contact_b.astype(int)).mean() < 2.0
    # the person's left cheek is on the right of the map; the top of the head at the top
    red = red_pixels(contact_a[:, size // 2 :]), red_pixels(contact_a[:, : size // 2])
    assert red[0] > 30 and red[1] == 0
    drawn_rows = np.flatnonzero(
        (np.abs(contact_a.astype(int) - np.array(PANEL_BACKGROUND)).sum(-1) > 30)[:, size // 2]
    )
    assert drawn_rows.min() < 0.2 * size  # the head reaches the top of the panel
    # the pressed-in map: bright (viridis yellow-green) where pressed, dark elsewhere
    p = pressed_a.astype(int)
    bright = (p[..., 1] > 150) & (p[..., 2] < 150)
    assert bright[:, size // 2 :].sum() > 20 and bright[:, : size // 2].sum() == 0
    no_contact = face_map_panels(canonical_face(head_model, facing.double(), None), size)
    assert red_pixels(no_contact[0]) == 0 and no_contact[2] == 1.0


def test_deformation_scale_steps():
    assert deformation_scale_mm(np.zeros((3, 3))) == 1.0
    assert deformation_scale_mm(np.array([[0.0, 0.0, 0.0049]])) == 5.0
    assert deformation_scale_mm(np.array([[0.0, 0.2, 0.0]])) == 50.0
    assert deformation_scale_mm(np.array([[np.nan, 0.0, 0.0]])) == 1.0


@pytest.mark.parametrize("width", [300, 1200])
def test_legend_wraps_and_shows_both_colour_bars(width):
    strip = legend_strip(width, scale_mm=3.0, text_height=12)
    assert strip.shape[1] == width and strip.dtype == np.uint8
    p = strip.astype(int)
    assert red_pixels(strip) > 10  # contact bar
    yellow = (p[..., 0] > 180) & (p[..., 1] > 180) & (p[..., 2] < 100)
    assert yellow.sum() > 10  # the top of the viridis bar
    without = legend_strip(width, None, text_height=12).astype(int)
    assert ((without[..., 0] > 180) & (without[..., 1] > 180) & (without[..., 2] < 100)).sum() < (
        yellow.sum()
    )


def test_legend_is_taller_when_narrow():
    narrow, wide = (legend_strip(w, 3.0, text_height=12) for w in (300, 1200))
    assert narrow.shape[0] > wide.shape[0]


def test_sheet_keeps_large_photos_at_most_max_side():
    strip = np.zeros((100, 3200, 3), np.uint8)
    capture = replace(make_capture(strip), image_size=(3200, 100))
    sheet = capture_sheet(capture, max_side=800)
    assert sheet.shape[1] <= 2 * round(800 * 2 * S / 25) + 2 * S  # photo enlarged to 2 S rows
    assert isinstance(capture, Capture)
