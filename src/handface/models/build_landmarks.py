"""Regenerate the landmark assets: ``python -m handface.models.build_landmarks [--help]``.

1. Hand keypoints (``hand_keypoints.json``): bone heads for the 16 joints and the wrist, and for
   each fingertip the surface vertex furthest along the distal bone (the tip of the finger pad).
2. Face landmarks (``face_landmarks_mediapipe478.npz``): the Anny head is rendered shaded and
   textured from several yaws, pitches, expressions and shapes; MediaPipe's face mesh runs on
   each render; every detected landmark is back-projected through the rasterizer onto the
   surface (triangle + barycentrics), carried to the neutral template, and the per-landmark
   samples are aggregated robustly (geometric median, then the nearest surface point).
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass

import numpy as np
import roma
import torch
from tqdm import tqdm

from handface.geometry.camera import intrinsics_from_fov
from handface.models.landmarks import (
    FACE_EMBEDDING_FILE,
    HAND_KEYPOINT_NAMES,
    HAND_KEYPOINTS_FILE,
    BarycentricEmbedding,
)
from handface.render.overlay import to_uint8

_JOINT_BONES = {
    "wrist": "wrist",
    "thumb_cmc": "finger1-1", "thumb_mcp": "finger1-2", "thumb_ip": "finger1-3",
    "index_mcp": "finger2-1", "index_pip": "finger2-2", "index_dip": "finger2-3",
    "middle_mcp": "finger3-1", "middle_pip": "finger3-2", "middle_dip": "finger3-3",
    "ring_mcp": "finger4-1", "ring_pip": "finger4-2", "ring_dip": "finger4-3",
    "little_mcp": "finger5-1", "little_pip": "finger5-2", "little_dip": "finger5-3",
}  # fmt: skip
_DISTAL_BONE = {
    "thumb": "finger1-3",
    "index": "finger2-3",
    "middle": "finger3-3",
    "ring": "finger4-3",
    "little": "finger5-3",
}


def hand_keypoint_table(side: str) -> list[dict]:
    """Compute the keypoint definition of one Anny hand from its rest mesh and skinning."""
    from handface.models.anny_backend import _load_anny

    suffix = ".R" if side == "right" else ".L"
    anny_model = _load_anny(f"anny-hand{suffix}", f"hand{suffix}", "none", "default", torch.float64)
    labels = list(anny_model.bone_labels)
    rest = anny_model()
    vertices = rest["vertices"][0]
    bone_poses = rest["bone_poses"][0]
    weights = anny_model.vertex_bone_weights
    dominant_bone = anny_model.vertex_bone_indices.gather(1, weights.argmax(1, keepdim=True))[:, 0]
    table = []
    for name in HAND_KEYPOINT_NAMES:
        if name.endswith("_tip"):
            bone = labels.index(_DISTAL_BONE[name[: -len("_tip")]] + suffix)
            head = bone_poses[bone, :3, 3]
            along = bone_poses[bone, :3, 1]  # Blender bones point along their local y axis
            candidates = torch.nonzero(dominant_bone == bone)[:, 0]
            reach = (vertices[candidates] - head) @ along
            vertex = int(candidates[reach.argmax()])
            table.append({"name": name, "kind": "tip", "bone_index": bone, "vertex": vertex})
        else:
            bone = labels.index(_JOINT_BONES[name] + suffix)
            table.append({"name": name, "kind": "joint", "bone_index": bone})
    return table


def build_hand_keypoints() -> None:
    tables = {side: hand_keypoint_table(side) for side in ("right", "left")}
    HAND_KEYPOINTS_FILE.write_text(json.dumps(tables, indent=1) + "\n")
    print(f"wrote {HAND_KEYPOINTS_FILE}")


# --- face landmarks ----------------------------------------------------------------------------

RENDER_SIZE = 512
FOV_DEG = 30.0
CAMERA_DISTANCE = 0.62
BACKGROUND = torch.tensor([0.55, 0.57, 0.6])


@dataclass(frozen=True)
class HeadView:
    """One render of the head: shape, expression (name -> value), yaw and pitch in degrees."""

    shape: tuple[float, ...]
    expression: tuple[tuple[str, float], ...]
    yaw_deg: float
    pitch_deg: float


BUILD_EXPRESSIONS: tuple[tuple[tuple[str, float], ...], ...] = (
    (),
    (("mouthSmileLeft", 0.7), ("mouthSmileRight", 0.7)),
    (("jawOpen", 0.35),),
    (("browInnerUp", 0.6), ("eyeWideLeft", 0.4), ("eyeWideRight", 0.4)),
)
HELD_OUT_EXPRESSIONS: tuple[tuple[tuple[str, float], ...], ...] = (
    (("mouthPucker", 0.6),),
    (("mouthSmileLeft", 0.4), ("mouthSmileRight", 0.4), ("jawOpen", 0.15)),
    (
        ("browDownLeft", 0.5),
        ("browDownRight", 0.5),
        ("eyeSquintLeft", 0.3),
        ("eyeSquintRight", 0.3),
    ),
    (("mouthFunnel", 0.4), ("cheekPuff", 0.5)),
)


def sample_shapes(count: int, seed: int, include_average: bool) -> list[tuple[float, ...]]:
    """Head shapes: phenotypes drawn in [0.15, 0.85] (ethnicity mixes normalised)."""
    generator = torch.Generator().manual_seed(seed)
    shapes = [tuple([0.5] * 9)] if include_average else []
    while len(shapes) < count:
        values = (0.15 + 0.7 * torch.rand(9, generator=generator)).tolist()
        mix = torch.rand(3, generator=generator)
        values[6:9] = (mix / mix.sum()).tolist()
        shapes.append(tuple(values))
    return shapes


def build_views() -> list[HeadView]:
    """The views the embedding is built from."""
    return [
        HeadView(shape, expression, yaw, pitch)
        for shape in sample_shapes(4, seed=0, include_average=True)
        for expression in BUILD_EXPRESSIONS
        for yaw in (-30.0, -15.0, 0.0, 15.0, 30.0)
        for pitch in (-12.0, 0.0, 12.0)
    ]


def held_out_views() -> list[HeadView]:
    """Views with shapes, expressions and poses not used to build the embedding."""
    shapes = sample_shapes(3, seed=1, include_average=False)
    poses = [(-22.0, 6.0), (8.0, -8.0), (24.0, -4.0), (-8.0, 9.0)]
    return [
        HeadView(shape, expression, *poses[(i + j + k) % len(poses)])
        for i, shape in enumerate(shapes)
        for j, expression in enumerate(HELD_OUT_EXPRESSIONS)
        for k in range(2)
    ]


def head_view_pose(yaw_deg: float, pitch_deg: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(global_orient (1, 3), transl (1, 3))`` placing the turned head's face centre on the
    optical axis, ``CAMERA_DISTANCE`` in front of the camera."""
    from handface.models.scene import head_rotation

    rotation = head_rotation(yaw_deg, pitch_deg)
    centre = torch.tensor([0.0, -0.04, 0.12])  # middle of the face in the canonical frame
    transl = torch.tensor([0.0, 0.0, CAMERA_DISTANCE]) - rotation @ centre
    return roma.rotmat_to_rotvec(rotation)[None], transl[None]


@dataclass
class RenderedHead:
    image: np.ndarray
    vertices_cam: torch.Tensor
    face_index: torch.Tensor
    K: torch.Tensor


def render_head_view(head_model, view: HeadView, size: int = RENDER_SIZE) -> RenderedHead:
    """Render the textured head for ``view`` in front of a grey background."""
    from handface.models.appearance import head_albedo
    from handface.models.base import HeadParams
    from handface.render import render

    shape = torch.tensor([view.shape])
    expression = torch.zeros(1, len(head_model.expression_labels))
    for name, value in view.expression:
        expression[0, head_model.expression_labels.index(name)] = value
    global_orient, transl = head_view_pose(view.yaw_deg, view.pitch_deg)
    with torch.no_grad():
        neutral = head_model(HeadParams(shape=shape)).extras["canonical_vertices"][0]
        posed = head_model(
            HeadParams(
                shape=shape, expression=expression, global_orient=global_orient, transl=transl
            )
        )
        K = intrinsics_from_fov(size, size, FOV_DEG)
        vertices = posed.vertices[0]
        out = render(
            vertices, head_model.faces, K, size, size,
            vertex_colors=head_albedo(head_model, neutral), background=BACKGROUND,
        )  # fmt: skip
    return RenderedHead(to_uint8(out.rgb), vertices, out.fragments.face_index, K)


def ray_hits(
    pixels: np.ndarray, rendered: RenderedHead, faces: torch.Tensor
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Back-project pixel positions onto the visible surface: (valid, face index, barycentrics).

    The visible triangle is read at the nearest pixel centre, then the exact barycentrics of the
    camera ray through the sub-pixel position are computed on that triangle's plane.
    """
    height, width = rendered.face_index.shape
    cols = np.clip(np.round(pixels[:, 0]).astype(int), 0, width - 1)
    rows = np.clip(np.round(pixels[:, 1]).astype(int), 0, height - 1)
    face = rendered.face_index[rows, cols].numpy()
    valid = face >= 0
    corners = rendered.vertices_cam[faces[np.maximum(face, 0)]].double().numpy()  # (L, 3, 3)
    K = rendered.K.double().numpy()
    rays = np.stack(
        [
            (pixels[:, 0] - K[0, 2]) / K[0, 0],
            (pixels[:, 1] - K[1, 2]) / K[1, 1],
            np.ones(len(pixels)),
        ],
        1,
    )
    a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]
    normal = np.cross(b - a, c - a)
    t = (normal * a).sum(1) / np.where(
        np.abs((normal * rays).sum(1)) < 1e-12, 1e-12, (normal * rays).sum(1)
    )
    hit = rays * t[:, None]
    area = (normal * normal).sum(1)
    bary_b = (np.cross(hit - a, c - a) * normal).sum(1) / area
    bary_c = (np.cross(b - a, hit - a) * normal).sum(1) / area
    bary = np.stack([1 - bary_b - bary_c, bary_b, bary_c], 1).clip(0, 1)
    bary /= bary.sum(1, keepdims=True)
    return valid, face, bary


def facing_camera(
    rendered: RenderedHead, faces: torch.Tensor, face: np.ndarray, bary: np.ndarray
) -> np.ndarray:
    """Cosine between the surface normal at each point and the direction to the camera."""
    corners = rendered.vertices_cam[faces[face]].double().numpy()
    normal = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-12
    point = (corners * bary[:, :, None]).sum(1)
    to_camera = -point / np.linalg.norm(point, axis=1, keepdims=True)
    return np.abs((normal * to_camera).sum(1))


def medoid(points: np.ndarray) -> int:
    """Index of the sample with the smallest summed distance to the others (robust centre)."""
    distances = np.linalg.norm(points[:, None] - points[None], axis=-1)
    return int(distances.sum(1).argmin())


def build_face_embedding(min_facing: float = 0.3) -> BarycentricEmbedding:
    """Derive the 478-landmark embedding from MediaPipe detections on renders of the head."""
    from handface.detect import MediaPipeDetector
    from handface.models.anny_backend import AnnyHeadModel
    from handface.models.base import HeadParams

    head_model = AnnyHeadModel(with_landmarks=False)
    faces = head_model.faces
    detector = MediaPipeDetector()
    with torch.no_grad():
        template = head_model(HeadParams()).vertices[0].double().numpy()
    samples: list[list[tuple[int, np.ndarray]]] = [[] for _ in range(478)]
    views = build_views()
    detected = 0
    for view in tqdm(views, desc="rendering + MediaPipe", unit="view"):
        rendered = render_head_view(head_model, view)
        detection = detector.detect_face(rendered.image)
        if detection is None:
            continue
        detected += 1
        valid, face, bary = ray_hits(detection.landmarks, rendered, faces)
        # A landmark seen at a grazing angle back-projects poorly (and contour landmarks of the
        # far side slide along the silhouette): keep only surface points facing the camera.
        valid &= facing_camera(rendered, faces, face, bary) > min_facing
        for index in np.nonzero(valid)[0]:
            samples[index].append((int(face[index]), bary[index]))
    print(f"MediaPipe found the face in {detected}/{len(views)} renders")
    face_index = np.zeros(478, dtype=np.int64)
    barycentrics = np.zeros((478, 3))
    counts = np.zeros(478, dtype=np.int64)
    spreads = np.zeros(478)
    for landmark, entries in enumerate(samples):
        if not entries:
            raise RuntimeError(f"landmark {landmark} was never seen on a camera-facing surface")
        on_template = np.stack(
            [(template[faces[f].numpy()] * b[:, None]).sum(0) for f, b in entries]
        )
        best = medoid(on_template)
        face_index[landmark], barycentrics[landmark] = entries[best]
        counts[landmark] = len(entries)
        spreads[landmark] = np.median(np.linalg.norm(on_template - on_template[best], axis=1))
    print(
        f"samples per landmark: min {counts.min()}, median {int(np.median(counts))}; "
        f"median spread {1000 * np.median(spreads):.2f} mm, max {1000 * spreads.max():.2f} mm"
    )
    embedding = BarycentricEmbedding(torch.from_numpy(face_index), torch.from_numpy(barycentrics))
    embedding.save(FACE_EMBEDDING_FILE, sample_count=counts, sample_spread_m=spreads)
    print(f"wrote {FACE_EMBEDDING_FILE}")
    return embedding


def face_landmark_errors(views: list[HeadView] | None = None) -> dict[str, float]:
    """NME of the embedded landmarks against MediaPipe on held-out renders.

    For every render where MediaPipe finds the face, each of the 478 embedded landmarks is
    projected with the render's camera and compared with MediaPipe's landmark; distances are
    divided by the inter-ocular distance (outer eye corners 33-263 of MediaPipe's detection).
    ``face_nme_median`` is the median over all (render, landmark) pairs, ``face_nme_mean`` the
    mean of the per-render mean NMEs.
    """
    from handface.detect import MediaPipeDetector
    from handface.geometry.camera import project_points
    from handface.models.anny_backend import AnnyHeadModel
    from handface.models.landmarks import INTER_OCULAR_478

    head_model = AnnyHeadModel()
    embedding = head_model.landmark_embedding
    detector = MediaPipeDetector()
    views = held_out_views() if views is None else views
    normalised, per_render, found = [], [], 0
    for view in views:
        rendered = render_head_view(head_model, view)
        detection = detector.detect_face(rendered.image)
        if detection is None:
            continue
        found += 1
        projected = project_points(
            embedding.apply(rendered.vertices_cam, head_model.faces), rendered.K
        ).numpy()
        inter_ocular = np.linalg.norm(
            detection.landmarks[INTER_OCULAR_478[0]] - detection.landmarks[INTER_OCULAR_478[1]]
        )
        errors = np.linalg.norm(projected - detection.landmarks, axis=1) / inter_ocular
        normalised.append(errors)
        per_render.append(errors.mean())
    all_errors = np.concatenate(normalised) if normalised else np.array([np.nan])
    return {
        "face_nme_median": float(np.median(all_errors)),
        "face_nme_mean": float(np.mean(per_render)) if per_render else float("nan"),
        "face_renders": float(len(views)),
        "face_detected": float(found),
    }


@dataclass(frozen=True)
class HandView:
    """One render of a hand: side, articulation latent, shape, and the hand's rotation."""

    side: str
    articulation: tuple[float, ...]
    shape: tuple[float, ...]
    rotvec: tuple[float, float, float]


def hand_check_views(seed: int = 3, count: int = 24) -> list[HandView]:
    """Hands in natural poses (relaxed to half-closed), palm or back towards the camera."""
    generator = torch.Generator().manual_seed(seed)
    views = []
    for index in range(count):
        latent = (0.8 * torch.randn(20, generator=generator)).tolist()
        shape = (0.2 + 0.6 * torch.rand(6, generator=generator)).tolist()
        # fingers up in the image (canonical +y -> camera -y), palm (-x) towards the camera or away
        facing = math.pi / 2 if index % 2 == 0 else -math.pi / 2
        wobble = (0.35 * torch.randn(3, generator=generator)).tolist()
        base = roma.rotvec_to_rotmat(torch.tensor([0.0, 0.0, math.pi])) @ roma.rotvec_to_rotmat(
            torch.tensor([0.0, facing, 0.0])
        )
        rotation = roma.rotvec_to_rotmat(torch.tensor(wobble)) @ base
        views.append(
            HandView(
                "right" if index % 4 < 2 else "left",
                tuple(latent),
                tuple(shape),
                tuple(roma.rotmat_to_rotvec(rotation).tolist()),
            )
        )
    return views


def render_hand_view(
    hand_model, view: HandView, size: int = RENDER_SIZE
) -> tuple[np.ndarray, torch.Tensor]:
    """Render a skin-coloured hand; returns the image and the 21 keypoints in pixels."""
    from handface.geometry.camera import project_points
    from handface.models.appearance import hand_albedo
    from handface.models.base import HandParams
    from handface.render import render

    params = HandParams(
        articulation=torch.tensor([view.articulation]),
        shape=torch.tensor([view.shape]),
        global_orient=torch.tensor([view.rotvec]),
    )
    with torch.no_grad():
        out = hand_model(params)
        centre = out.vertices[0].mean(0)
        shift = torch.tensor([0.0, 0.0, 0.42]) - centre
        vertices = out.vertices[0] + shift
        K = intrinsics_from_fov(size, size, FOV_DEG)
        rgb = render(
            vertices, hand_model.faces, K, size, size,
            vertex_colors=hand_albedo(vertices.shape[0]), background=BACKGROUND,
        ).rgb  # fmt: skip
        keypoints = project_points(out.keypoints[0] + shift, K)
    return to_uint8(rgb), keypoints


def hand_keypoint_errors(views: list[HandView] | None = None) -> dict[str, float]:
    """NME of the model's 21 keypoints against MediaPipe hands on renders of posed hands.

    Distances are divided by MediaPipe's wrist-to-middle-MCP length; ``hand_nme_median`` is the
    median over all (render, keypoint) pairs. Renders where MediaPipe finds no hand, or labels
    it with the wrong side, are counted in ``hand_detected`` / ``hand_side_correct``.
    """
    from handface.detect import MediaPipeDetector
    from handface.models.anny_backend import AnnyHandModel

    models = {side: AnnyHandModel(side) for side in ("left", "right")}
    detector = MediaPipeDetector(max_hands=1)
    views = hand_check_views() if views is None else views
    errors, found, side_correct = [], 0, 0
    for view in views:
        image, keypoints = render_hand_view(models[view.side], view)
        hands = detector.detect_hands(image)
        if not hands:
            continue
        found += 1
        side_correct += hands[0].side == view.side
        scale = np.linalg.norm(hands[0].keypoints[9] - hands[0].keypoints[0])
        errors.append(np.linalg.norm(keypoints.numpy() - hands[0].keypoints, axis=1) / scale)
    all_errors = np.concatenate(errors) if errors else np.array([np.nan])
    return {
        "hand_nme_median": float(np.median(all_errors)),
        "hand_nme_mean": float(np.mean(all_errors)),
        "hand_renders": float(len(views)),
        "hand_detected": float(found),
        "hand_side_correct": float(side_correct),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--only", choices=["hand", "face"], help="rebuild only one of the two assets"
    )
    args = parser.parse_args(argv)
    if args.only in (None, "hand"):
        build_hand_keypoints()
    if args.only in (None, "face"):
        build_face_embedding()


if __name__ == "__main__":
    main()
