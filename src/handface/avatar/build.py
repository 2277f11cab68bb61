"""``handface avatar VIDEO``: track the video, then learn the avatar (METHOD.md §4's schedule).

1. **Track** (:class:`handface.track.Tracker`): per frame the head's pose, expression and one
   shared shape, and the hands' meshes; the frames are kept at the working resolution.
2. **Appearance**: the texture and lighting (:mod:`handface.avatar.appearance`) from the pixels
   where the head is visible (the hands' meshes, rasterized with it, occlude it); then each
   hand's colour under that lighting.
3. **Basis**: by default the subject-specific basis (:mod:`handface.avatar.subject_basis`),
   pressed where the tracked hands come within ``contact_reach`` of the face (the whole face
   when they never do); or a dataset basis from ``handface pca``.
4. **Hand deformation**: codes and decoder trained with the contact loss
   (:mod:`handface.avatar.hand_deformation`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np
import roma
import torch
from PIL import Image

from handface.avatar.appearance import AppearanceConfig, AppearanceFrame, fit_appearance
from handface.avatar.deformation_basis import DeformationBasis
from handface.avatar.hand_deformation import (
    ContactFrame,
    HandDeformationConfig,
    fit_hand_deformation,
)
from handface.avatar.model import DEFAULT_HAND_COLOR, Avatar, AvatarHands
from handface.avatar.photometric import (
    FrameCorrections,
    HeadGeometry,
    PhotometricConfig,
    refine_photometric,
)
from handface.avatar.subject_basis import SubjectBasisConfig, contact_sites, subject_basis
from handface.errors import InputError
from handface.models.regions import face_regions_for
from handface.render.interpolate import pixel_barycentrics
from handface.render.rasterizer import Scene
from handface.render.shading import pixel_surface
from handface.render.spherical_harmonics import sh_irradiance


@dataclass
class AvatarConfig:
    """Settings of :func:`build_avatar`."""

    size: int = 256
    """Long side of the avatar's frames in pixels (the paper: 256)."""
    contact_reach: float = 0.02
    """Face vertices within this of a tracked hand (metres) are where the subject basis presses."""
    appearance: AppearanceConfig = field(default_factory=AppearanceConfig)
    refine_poses: bool = True
    """Correct each frame's tracked pose photometrically, with the texture
    (:mod:`handface.avatar.photometric`); the hands move with the head."""
    photometric: PhotometricConfig = field(default_factory=PhotometricConfig)
    subject_basis: SubjectBasisConfig = field(default_factory=SubjectBasisConfig)
    hand_deformation: HandDeformationConfig = field(default_factory=HandDeformationConfig)


@dataclass
class _Frame:
    index: int
    image: np.ndarray  # (h, w, 3) float32 in [0, 1], working size
    person: np.ndarray | None  # (h, w) bool: MediaPipe's person segmentation, or None
    rotation: np.ndarray
    transl: np.ndarray
    expression: np.ndarray
    canonical: torch.Tensor  # (V, 3) undeformed
    hands: dict[str, dict[str, np.ndarray]]  # side -> params
    hand_vertices: dict[str, torch.Tensor]  # side -> camera-frame vertices
    tracked_deformation: np.ndarray  # (V, 3) the tracker's soft-tissue D (canonical)


class FrameCollector:
    """A tracker sink that keeps what the avatar needs of every frame with a face."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.frames: list[_Frame] = []
        self.head_shape: np.ndarray | None = None
        self.hand_faces: dict[str, torch.Tensor] = {}
        self.scale: float | None = None

    def __call__(self, frame, capture, status) -> None:
        if capture.face is None or capture.image is None:
            return
        height, width = capture.image.shape[:2]
        if self.scale is None:
            self.scale = self.size / max(height, width)
        size = (max(2, round(width * self.scale)), max(2, round(height * self.scale)))
        image = np.asarray(Image.fromarray(capture.image).resize(size, Image.BILINEAR))
        person = capture.extras.get("person_mask")
        if person is not None:
            person = np.asarray(person, np.float32)
            person = np.asarray(Image.fromarray(person).resize(size, Image.BILINEAR)) > 0.5
        face = capture.face
        R = face.rotation.astype(np.float64)
        transl = np.asarray(face.params["transl"], np.float64).reshape(3)
        canonical = torch.as_tensor((face.vertices.astype(np.float64) - transl) @ R).float()
        self.head_shape = np.asarray(face.params["shape"], np.float32).reshape(-1)
        hands, hand_vertices = {}, {}
        for side, hand in capture.hands.items():
            hands[side] = {k: np.asarray(hand.params[k], np.float32).reshape(-1)
                           for k in ("global_orient", "transl", "articulation")}  # fmt: skip
            hand_vertices[side] = torch.as_tensor(hand.vertices).float()
            self.hand_faces[side] = torch.as_tensor(hand.faces).long()
        self.frames.append(
            _Frame(
                index=int(frame.index),
                image=image.astype(np.float32) / 255.0,
                person=person,
                rotation=R.astype(np.float32),
                transl=transl.astype(np.float32),
                expression=np.asarray(face.params["expression"], np.float32).reshape(-1),
                canonical=canonical,
                hands=hands,
                hand_vertices=hand_vertices,
                tracked_deformation=np.asarray(face.deformation, np.float32),
            )
        )


def build_avatar(
    video: str | os.PathLike,
    *,
    config: AvatarConfig | None = None,
    basis: DeformationBasis | None = None,
    start: int = 0,
    end: int | None = None,
    stride: int = 1,
    focal: float | None = None,
    fps: float | None = None,
    K: np.ndarray | None = None,
    heldout_every: int = 0,
    method: str = "hybrid",
    checkpoint: str | os.PathLike | None = None,
    progress: bool = True,
    head_model=None,
) -> Avatar:
    """Learn an avatar from a video (method: module docstring). ``basis``: a dataset basis
    (``handface pca``) instead of the subject-specific one; ``K``: known intrinsics of the
    video; ``heldout_every``: frames whose index is a multiple of it are tracked and get
    deformation codes (from geometry alone) but their pixels are kept out of the appearance
    and pose fits (for evaluation). ``method``: the tracker
    (:func:`handface.track.run.make_tracker`; ``hybrid`` by default: the fit's meshes with
    DICE's touch verdicts, which put the hands on the face where the fit's own gate leaves
    them centimetres away).

    Raises:
        InputError: an unreadable video, or no frame where the face is found.
    """
    from handface.detect.video import FrameReader
    from handface.models import default_head_model
    from handface.track.run import make_tracker

    config = config or AvatarConfig()
    timings: dict[str, float] = {}
    tick = time.perf_counter()
    reader = FrameReader(video, start=start, end=end, stride=stride, fps=fps)
    collector = FrameCollector(config.size)
    try:
        tracker = make_tracker(method, checkpoint=checkpoint, focal=focal)
        sequence = tracker.run(
            reader, fps=reader.fps, sink=collector, progress=progress, source=str(video),
            K=None if K is None else torch.as_tensor(K, dtype=torch.float64),
            total=len(reader.indices) if reader.indices is not None else None,
        )  # fmt: skip
    finally:
        reader.close()
    if not collector.frames:
        raise InputError(f"{video}: no frame shows a face the tracker could fit; no avatar")
    timings["track_s"] = time.perf_counter() - tick
    head_model = head_model or default_head_model()
    if head_model.face_uvs is None:
        raise InputError(f"the {type(head_model).__name__} has no UV layout to texture")
    faces = head_model.faces
    frames = collector.frames
    K = np.array(sequence.K, dtype=np.float64)
    K[:2] *= collector.scale
    K_t = torch.as_tensor(K).float()
    height, width = frames[0].image.shape[:2]

    tick = time.perf_counter()
    seen = [f for f in frames if not (heldout_every and f.index % heldout_every == 0)]
    if not seen:
        raise InputError("every frame is held out; lower heldout_every")
    appearance_frames, hand_pixels = _appearance_frames(seen, faces, collector.hand_faces, K_t)
    appearance = fit_appearance(appearance_frames, faces, head_model.face_uvs,
                                _with_progress(config.appearance, progress))  # fmt: skip
    corrections = {}
    offsets = None
    if config.refine_poses:
        geometry = HeadGeometry.of(
            head_model, torch.as_tensor(collector.head_shape),
            torch.stack([torch.as_tensor(f.rotation) for f in seen]),
            torch.stack([torch.as_tensor(f.expression) for f in seen]),
        )  # fmt: skip
        refined = refine_photometric(appearance_frames, faces, head_model.face_uvs, appearance,
                                     _with_progress(config.photometric, progress),
                                     geometry)  # fmt: skip
        appearance = refined.appearance
        offsets = refined.offsets
        # held-out frames take their neighbours' correction (no pixel of theirs is used)
        times = torch.tensor([float(f.index) for f in seen])
        every = torch.tensor([float(f.index) for f in frames])
        corrections = _apply_corrections(frames, refined.poses.interpolated(times, every),
                                         geometry, offsets)  # fmt: skip
        _, hand_pixels = _appearance_frames(seen, faces, collector.hand_faces, K_t)
    hand_colors = _hand_colors(hand_pixels, appearance.lighting)
    timings["appearance_s"] = time.perf_counter() - tick

    tick = time.perf_counter()
    contact_frames = [_contact_frame(f, collector.hand_faces) for f in frames]
    kind = "dataset"
    if basis is None:
        kind = "subject"
        heads = torch.stack([f.head_vertices for f in contact_frames])
        sites = contact_sites(heads, [f.hands for f in contact_frames], config.contact_reach)
        regions = face_regions_for(head_model.num_vertices)
        rest = frames[0].canonical  # the person's head; presses are small next to expressions
        basis = subject_basis(rest, faces, regions,
                              _with_progress(config.subject_basis, progress),
                              sites if bool(sites.any()) else None)  # fmt: skip
    timings["basis_s"] = time.perf_counter() - tick

    tick = time.perf_counter()
    deformation = fit_hand_deformation(
        contact_frames, faces, basis, _with_progress(config.hand_deformation, progress)
    )
    timings["hand_deformation_s"] = time.perf_counter() - tick

    count = len(frames)
    hands = {}
    for side in sorted(collector.hand_faces):
        present = np.array([side in f.hands for f in frames])
        width_a = next(len(f.hands[side]["articulation"]) for f in frames if side in f.hands)

        def column(name: str, dim: int, side=side) -> np.ndarray:
            return np.stack([f.hands[side][name] if side in f.hands
                             else np.zeros(dim, np.float32) for f in frames])  # fmt: skip

        hands[side] = AvatarHands(
            present=present,
            global_orient=column("global_orient", 3),
            transl=column("transl", 3),
            articulation=column("articulation", width_a),
            color=hand_colors.get(side, DEFAULT_HAND_COLOR),
        )
    last = deformation.history[-1] if deformation.history else {}
    return Avatar(
        image_size=(width, height),
        K=K,
        fps=float(sequence.fps),
        head_shape=collector.head_shape,
        rotation=np.stack([f.rotation for f in frames]),
        transl=np.stack([f.transl for f in frames]),
        expression=np.stack([f.expression for f in frames]),
        frame_index=np.array([f.index for f in frames]),
        head_offsets=None if offsets is None else offsets.numpy(),
        appearance=appearance,
        deformation=deformation,
        hands=hands,
        basis_kind=kind,
        source=str(video),
        tracked_deformation=np.stack([f.tracked_deformation for f in frames]),
        figures={
            "frames": count,
            "frames_with_hand_near_face": int(deformation.active.sum()),
            "photometric_l1": round(appearance.history[-1], 5),
            **corrections,
            "texture_coverage": round(float(appearance.coverage.float().mean()), 4),
            "basis_heldout_explained": round(float(basis.heldout_explained[-1]), 4),
            "contact_surface_m2": last.get("surface"),
            "contact_penetration_m": last.get("penetration"),
            **{k: round(v, 2) for k, v in timings.items()},
        },
    )


def _with_progress(config, progress: bool):
    from dataclasses import replace

    return replace(config, progress=progress)


def _apply_corrections(
    frames: list[_Frame],
    poses: FrameCorrections,
    geometry: HeadGeometry | None = None,
    offsets: torch.Tensor | None = None,
) -> dict[str, float]:
    """Move each frame's head and hands by its pose correction (about the head's centroid),
    change its expression by its correction (kept in the model's bounds) and its canonical
    head by that and the ``offsets``; returns the corrections' medians."""
    angles, shifts, expression_changes = [], [], []
    for t, frame in enumerate(frames):
        if geometry is not None and (poses.expression is not None or offsets is not None):
            canonical = frame.canonical.double()
            if poses.expression is not None:
                expression = torch.as_tensor(frame.expression) + poses.expression[t]
                if geometry.bounds is not None:
                    expression = expression.clamp(*geometry.bounds)
                change = expression - torch.as_tensor(frame.expression)
                basis = geometry.expression_basis.double()
                canonical = canonical + torch.einsum("e,evc->vc", change.double(), basis)
                frame.expression = expression.float().numpy()
                expression_changes.append(float(change.abs().max()))
            if offsets is not None:
                canonical = canonical + offsets.double()
            frame.canonical = canonical.float()
        R_d = poses.rotation[t].double()
        t_d = poses.translation[t].double()
        R = torch.as_tensor(frame.rotation).double()
        transl = torch.as_tensor(frame.transl).double()
        centre = (frame.canonical.double() @ R.T + transl).mean(0)
        frame.rotation = (R_d @ R).float().numpy()
        frame.transl = (R_d @ (transl - centre) + centre + t_d).float().numpy()
        for side, params in frame.hands.items():
            R_h = roma.rotvec_to_rotmat(torch.as_tensor(params["global_orient"]).double())
            t_h = torch.as_tensor(params["transl"]).double()
            params["global_orient"] = roma.rotmat_to_rotvec(R_d @ R_h).float().numpy()
            params["transl"] = (R_d @ (t_h - centre) + centre + t_d).float().numpy()
            vertices = frame.hand_vertices[side].double()
            frame.hand_vertices[side] = ((vertices - centre) @ R_d.T + centre + t_d).float()
        angles.append(float(torch.rad2deg(roma.rotmat_to_rotvec(R_d).norm())))
        shifts.append(1000.0 * float(t_d.norm()))
    figures = {
        "pose_correction_deg_median": round(float(np.median(angles)), 3),
        "pose_correction_mm_median": round(float(np.median(shifts)), 3),
    }
    if expression_changes:
        figures["expression_correction_max_median"] = round(float(np.median(expression_changes)), 4)
    if offsets is not None:
        figures["vertex_offset_mm_mean"] = round(1000.0 * float(offsets.norm(dim=-1).mean()), 3)
        figures["vertex_offset_mm_max"] = round(1000.0 * float(offsets.norm(dim=-1).max()), 3)
    return figures


def _contact_frame(frame: _Frame, hand_faces: dict[str, torch.Tensor]) -> ContactFrame:
    R = torch.as_tensor(frame.rotation).double()
    t = torch.as_tensor(frame.transl).double()
    hands = [((frame.hand_vertices[side].double() - t) @ R, hand_faces[side])
             for side in sorted(frame.hand_vertices)]  # fmt: skip
    return ContactFrame(frame.canonical.double(), hands)


def _appearance_frames(frames, faces, hand_faces, K):
    """Per frame the head's visible pixels (the hands rasterized with it occlude it), and the
    hands' pixels with their normals (for the hands' colours)."""
    out, hand_pixels = [], {}
    for frame in frames:
        height, width = frame.image.shape[:2]
        R, t = torch.as_tensor(frame.rotation), torch.as_tensor(frame.transl)
        head = frame.canonical @ R.T + t
        sides = sorted(frame.hand_vertices)
        scene = Scene.from_meshes([(head, faces)] + [(frame.hand_vertices[s], hand_faces[s])
                                                      for s in sides])  # fmt: skip
        fragments = scene.rasterize(K, height, width)
        object_id = fragments.object_id
        image = torch.as_tensor(frame.image)
        # the head where nothing covers it, and where the photo shows the person (the tracked
        # head can be larger than the real one: its border would learn the background)
        visible = object_id == 0
        if frame.person is not None:
            visible &= torch.as_tensor(frame.person)
        out.append(AppearanceFrame(head, K, image, visible))
        if sides:
            pb = pixel_barycentrics(fragments, scene.vertices, scene.faces, K)
            _, n = pixel_surface(pb, scene.vertices, scene.faces)
            ids = object_id.reshape(-1)[pb.pixel]
            colours = image.reshape(-1, 3)[pb.pixel]
            for k, side in enumerate(sides, start=1):
                keep = ids == k
                hand_pixels.setdefault(side, []).append((colours[keep], n[keep]))
    return out, hand_pixels


def _hand_colors(hand_pixels, lighting) -> dict[str, tuple[float, float, float]]:
    """Each hand's albedo: least squares of its pixels over the lighting's irradiance."""
    colors = {}
    for side, parts in hand_pixels.items():
        rgb = torch.cat([c for c, _ in parts])
        normals = torch.cat([n for _, n in parts])
        if not len(rgb):
            continue
        irradiance = sh_irradiance(normals, lighting).clamp_min(1e-3)
        albedo = (rgb * irradiance).sum(0) / irradiance.pow(2).sum(0)
        colors[side] = tuple(float(x) for x in albedo.clamp(0, 1))
    return colors
