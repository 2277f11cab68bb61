"""Regenerate ``models/assets/face_areas.npz`` (and, on request, a picture of the areas).

``python -m handface.models.build_face_areas [--picture docs/face_areas.png]``

Everything is measured on the neutral Anny head in its canonical frame (metres, z up, the face
looking towards -y, the person's left at +x — where Anny's ``eye.L`` bone is; the build checks
it). Starting from the face regions of :mod:`handface.models.regions`:

* nose, neck and scalp keep their region; the lips and the inside of the mouth are the
  "mouth"; ears and eyeballs are split by side.
* The face skin, the scalp's front and its sides in front of the ears (the Anny head has no
  hairline) and the neck just under the mandible are cut at anatomical levels read from the
  embedded MediaPipe landmarks: above the lower edge of the brows, the forehead (out to the
  outer brow ends; on the scalp's front up to 3 cm above the top of the face oval) or a
  temple (beyond them); lateral to the outer eye corner and above it, a temple; an ellipse
  around each eye's contour (up to the brows, 1 cm below the lower lid, deep enough for the
  skin lining the orbit) is that eye; an ellipse around the lips reaching up to the nose (the
  philtrum) is the mouth; below the lower lip and no wider than the mouth corners (plus
  6 mm), the chin; seen from the side, between the mandible's edge (chin -> 2.5 cm below the
  ear lobe, with 8 mm of its underside) and the line from the mouth corners to the ear lobe,
  the jaw; the rest (below the eyes, beside nose and mouth, in front of the ears), the
  cheeks.
* Pieces of an area smaller than 20 connected vertices join the area around them.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from handface.models.face_areas import FACE_AREA_NAMES, FaceAreas
from handface.models.regions import REGION_NAMES, load_face_regions

if TYPE_CHECKING:
    from handface.models.anny_backend import AnnyHeadModel

# MediaPipe face-mesh indices ("right" = the person's right, at -x on the canonical head).
RIGHT_EYE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
LEFT_EYE = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
RIGHT_BROW_LOWER = (46, 53, 52, 65, 55)
LEFT_BROW_LOWER = (276, 283, 282, 295, 285)
OUTER_BROW = (70, 300)
MOUTH_CORNERS = (61, 291)
NOSE_BASE = 2
LOWER_LIP = 17
CHIN_BOTTOM = 152
FOREHEAD_TOP = 10

EYE_MARGIN_X = 0.005
"""How far the eye area reaches beyond the eye corners (metres)."""
EYE_MARGIN_BELOW = 0.010
"""How far the eye area reaches below the lower lid (the lower lid and the eye bag)."""
UNDERSIDE = 0.008
"""Neck skin up to this far below the mandible's edge is the underside of chin and jaw."""
MIN_ISLAND = 20
"""Connected pieces of an area with fewer vertices join the area around them."""


def _index(name: str) -> int:
    return FACE_AREA_NAMES.index(name)


def _sided(x: np.ndarray, area: str) -> np.ndarray:
    """Label of ``"left <area>"`` where x > 0 (the person's left), else ``"right <area>"``."""
    return np.where(x > 0, _index(f"left {area}"), _index(f"right {area}"))


def _in_eye(points: np.ndarray, contour: np.ndarray, brow_z: float) -> np.ndarray:
    """Points inside an ellipse (x, z) around an eye contour, reaching up to the brow."""
    centre = contour.mean(0)
    half_width = 0.5 * np.ptp(contour[:, 0]) + EYE_MARGIN_X
    up = brow_z - centre[2]
    down = centre[2] - contour[:, 2].min() + EYE_MARGIN_BELOW
    dz = points[:, 2] - centre[2]
    extent = np.where(dz > 0, up, down)
    inside = ((points[:, 0] - centre[0]) / half_width) ** 2 + (dz / extent) ** 2 < 1.0
    # A cylinder along y, deep enough for the skin lining the orbit behind the lids, not so
    # deep that it reaches the back of the head.
    return inside & (points[:, 1] < centre[1] + 0.04)


def build_face_areas(head: AnnyHeadModel | None = None) -> FaceAreas:
    """Derive the area labels (see the module docstring); ``head`` with landmarks, or a new one."""
    from handface.geometry.normals import vertex_normals
    from handface.models.anny_backend import AnnyHeadModel
    from handface.models.base import HeadParams

    head = AnnyHeadModel() if head is None else head
    with torch.no_grad():
        out = head(HeadParams())
    vertices = out.vertices[0].double().numpy()
    landmarks = out.landmarks[0].double().numpy()
    normals = vertex_normals(out.vertices[0].double(), head.faces).numpy()
    eye_left_bone = out.joints[0, head.joint_labels.index("eye.L")].numpy()
    if eye_left_bone[0] <= 0:
        raise RuntimeError("the head's eye.L bone is not at +x; the left/right rule is wrong")
    region = load_face_regions().labels.numpy()
    x, y, z = vertices.T

    def is_region(*names: str) -> np.ndarray:
        return np.isin(region, [REGION_NAMES.index(n) for n in names])

    label = np.full(len(vertices), _index("scalp"))
    label[is_region("nose")] = _index("nose")
    label[is_region("lips", "mouth_interior")] = _index("mouth")
    label[is_region("neck")] = _index("neck")
    ears = is_region("ears")
    label[ears] = _sided(x[ears], "ear")
    eyeballs = is_region("eyes")
    label[eyeballs] = _sided(x[eyeballs], "eye")

    # Anatomical levels (canonical frame: z up, person's left at +x).
    brow_z = landmarks[list(RIGHT_BROW_LOWER + LEFT_BROW_LOWER), 2].mean()
    outer_brow_x = np.abs(landmarks[list(OUTER_BROW), 0]).mean()
    eye_outer_x = np.abs(landmarks[[33, 263], 0]).mean()
    eye_outer_z = landmarks[[33, 263], 2].mean()
    mouth_x = np.abs(landmarks[list(MOUTH_CORNERS), 0]).mean()
    mouth_z = landmarks[list(MOUTH_CORNERS), 2].mean()
    nose_base_z = landmarks[NOSE_BASE, 2]
    lower_lip_z = landmarks[LOWER_LIP, 2]
    forehead_top_z = landmarks[FOREHEAD_TOP, 2]

    ear_front_y = y[ears].min()
    ear_bottom_z = z[ears].min()
    chin_y, chin_z = landmarks[CHIN_BOTTOM, 1], landmarks[CHIN_BOTTOM, 2]
    mouth_y = landmarks[list(MOUTH_CORNERS), 1].mean()
    sx = np.abs(x)
    # Seen from the side, two lines run from the front of the face back to the ear: the lower
    # edge of the mandible (chin -> the jaw's angle, 2.5 cm below the ear lobe) and the
    # cheek/jaw border (mouth corners -> ear lobe). The jaw lies between them.
    mandible_z = np.interp(y, [chin_y, ear_front_y], [chin_z, ear_bottom_z - 0.025])
    cheek_bottom_z = np.interp(y, [mouth_y, ear_front_y], [mouth_z - 0.004, ear_bottom_z])

    # Skin that gets a face area: the face, the front of the neck up to UNDERSIDE below the
    # mandible (the underside of chin and jaw), and the scalp at the sides in front of the ears
    # (sideburns and temples; the Anny head has no hairline).
    scalp = is_region("scalp")
    scalp_front = scalp & (normals[:, 1] < -0.5) & (z < forehead_top_z + 0.03)
    scalp_front &= (sx <= outer_brow_x) & (z > brow_z)
    scalp_side = scalp & (y < ear_front_y) & (z > ear_bottom_z) & (z < forehead_top_z + 0.01)
    scalp_side &= sx > outer_brow_x - 0.005
    scalp_low = scalp & (y < ear_front_y) & (z < ear_bottom_z)  # leftovers beside the chin
    under_jaw = is_region("neck") & (y < ear_front_y) & (z > mandible_z - UNDERSIDE)
    skin = is_region("face_skin") | scalp_front | scalp_side | scalp_low | under_jaw

    area = _sided(x, "cheek")
    area = np.where(z < cheek_bottom_z, _sided(x, "jaw"), area)
    area = np.where((z < lower_lip_z - 0.003) & (sx < mouth_x + 0.006), _index("chin"), area)
    lips_centre = landmarks[[0, LOWER_LIP, *MOUTH_CORNERS]].mean(0)
    dz = z - lips_centre[2]
    reach = np.where(dz > 0, nose_base_z - 0.002 - lips_centre[2], lips_centre[2] - lower_lip_z)
    around_mouth = (x / (mouth_x + 0.008)) ** 2 + (dz / reach) ** 2 < 1.0
    around_mouth &= y < lips_centre[1] + 0.02
    area = np.where(around_mouth, _index("mouth"), area)
    temple = (sx > eye_outer_x + 0.006) & (z > eye_outer_z - 0.006)
    area = np.where(temple, _sided(x, "temple"), area)
    above_brows = z > brow_z
    area = np.where(above_brows & (sx <= outer_brow_x), _index("forehead"), area)
    area = np.where(above_brows & (sx > outer_brow_x), _sided(x, "temple"), area)
    # The forehead continues onto the front of the scalp (see the module docstring).
    area = np.where(scalp_front, _index("forehead"), area)
    for contour, side in ((LEFT_EYE, "left"), (RIGHT_EYE, "right")):
        area = np.where(
            _in_eye(vertices, landmarks[list(contour)], brow_z), _index(f"{side} eye"), area
        )
    label[skin] = area[skin]
    return FaceAreas(torch.from_numpy(_absorb_islands(label, head.faces.numpy())))


def _absorb_islands(label: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Give connected pieces of an area smaller than ``MIN_ISLAND`` vertices the most common
    label around them, so that every area is one patch (pieces with no neighbour, such as the
    eyeballs, keep theirs)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    label = label.copy()
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    edges = np.concatenate([edges, edges[:, ::-1]])
    same = label[edges[:, 0]] == label[edges[:, 1]]
    n = len(label)
    graph = coo_matrix((np.ones(int(same.sum())), tuple(edges[same].T)), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    size = np.bincount(component)
    for piece in np.flatnonzero(size < MIN_ISLAND):
        border = edges[(component[edges[:, 0]] == piece) & (component[edges[:, 1]] != piece)]
        if len(border):
            label[component == piece] = np.bincount(label[border[:, 1]]).argmax()
    return label


AREA_COLOURS = np.array([
    [0.95, 0.85, 0.35], [0.95, 0.55, 0.15], [0.70, 0.40, 0.10], [0.20, 0.45, 0.95],
    [0.10, 0.25, 0.60], [0.95, 0.95, 0.95], [0.90, 0.35, 0.45], [0.55, 0.15, 0.25],
    [0.85, 0.10, 0.10], [0.35, 0.80, 0.35], [0.55, 0.35, 0.85], [0.30, 0.15, 0.55],
    [0.30, 0.85, 0.85], [0.10, 0.50, 0.50], [0.60, 0.60, 0.60], [0.35, 0.35, 0.35],
])  # fmt: skip
"""One colour per area, for the picture."""


def render_picture(areas: FaceAreas, path: Path, size: int = 384) -> Path:
    """The areas seen from the person's right, the front and the person's left, with a key."""
    from PIL import Image, ImageDraw

    from handface.geometry.camera import intrinsics_from_fov
    from handface.models.anny_backend import AnnyHeadModel
    from handface.models.base import HeadParams
    from handface.models.build_landmarks import head_view_pose
    from handface.render import render
    from handface.render.overlay import save_png, to_uint8

    head = AnnyHeadModel(with_landmarks=False)
    K = intrinsics_from_fov(size, size, 30.0)
    colours = torch.from_numpy(AREA_COLOURS[areas.labels.numpy()]).float()
    panels = []
    for yaw in (-70.0, 0.0, 70.0):
        global_orient, transl = head_view_pose(yaw, 0.0)
        with torch.no_grad():
            vertices = head(HeadParams(global_orient=global_orient, transl=transl)).vertices[0]
            image = render(
                vertices, head.faces, K, size, size, vertex_colors=colours, background=1.0
            )
        panels.append(to_uint8(image.rgb.clamp(0, 1)))
    picture = Image.fromarray(np.concatenate(panels, axis=1))
    draw = ImageDraw.Draw(picture)
    for k, name in enumerate(FACE_AREA_NAMES):
        top = 4 + 14 * k
        draw.rectangle([4, top, 14, top + 10], fill=tuple(int(255 * c) for c in AREA_COLOURS[k]))
        draw.text((18, top - 1), name, fill=(0, 0, 0))
    return save_png(path, np.asarray(picture))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--picture", type=Path, default=None, help="also write a PNG of the areas")
    args = parser.parse_args(argv)
    areas = build_face_areas()
    areas.save()
    counts = {name: int((areas.labels == k).sum()) for k, name in enumerate(FACE_AREA_NAMES)}
    print("vertices per area:", counts)
    if args.picture is not None:
        print(f"wrote {render_picture(areas, args.picture)}")


if __name__ == "__main__":
    main()
