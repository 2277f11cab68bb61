"""Reader of the Decaf dataset (Shimada et al., SIGGRAPH Asia 2023) as :class:`InteractionSample` s.

Layout (``<root>/<split>/``, split ``train`` or ``test``; ``<S>`` a subject such as ``S1``,
``<cam>`` a camera id such as ``108``)::

    videos/<S>/<cam>.mp4            RGB video (1920 × 1080)
    segmentations/<S>/<cam>.mp4     foreground (person) mask video
    head_keys/<S>/<cam>.npy         F × 68 × 2(+) face keypoints, pixels (face_alignment)
    right_hand_keys/<S>/<cam>.npy   F × 21 × 2(+) hand keypoints, pixels (MediaPipe)
    head_bbs/<S>/<cam>.npy          F × 4 boxes (x0, y0, x1, y1), -1s where detection failed
    right_hand_bbs/<S>/<cam>.npy    same for the right hand
    contacts/<S>/contacts_head.npy  F × 5023 0/1 FLAME vertex contacts
    contacts/<S>/contacts_rh.npy    F × 778 0/1 right-hand (MANO) vertex contacts
    deformations/<S>/deforms.npy    F × 5023 × 3 FLAME vertex deformations (see below)
    params/<S>/params_smoothed.pkl  {frame id: {"head": {...}, "right_hand": {...}}}
    cameras/<S>/cameras.pkl         {cam id: {"intrinsic", "extrinsic" (4 × 4), "distortion"}}
    cutIDs/<S>.pkl                  [(a, b), ...]: the recording is cut between frames a and b

and ``<root>/assets/`` with the user's model files (``generic_model.pkl``,
``mano_v1_2/models/MANO_RIGHT.pkl``, DECA's ``landmark_embedding.npy``) and
``FLAME_neck_idx.npy`` / ``neck_idx.npy``.

Conventions, as the dataset's own scripts use them (github.com/soshishimada/DecafDatasetScript:
``src/visualizer.py``, ``src/FLAME_util.py``, ``src/tracking_util.py``,
``src/transformation_util.py``, ``src/get_consecutive_ids.py``; and the Decaf loader of
github.com/Qingxuan-Wu/DICE, ``src/decaf/simple_data_loader.py``) — all *confirmed* there:

- Head: FLAME with ``shape_params`` → the first identity components, ``expression_params`` →
  the first expression components, ``pose_params = [root (3), jaw (3)]`` (neck and eyes zero).
  The posed mesh is then rotated by ``global_orient`` **about its vertex centroid** and
  translated by ``transl`` (``rigid_transform_with_scaling`` with scale 1). The reader converts
  this to handface's convention (rotation about the FLAME origin, then translation) in
  ``head_params``; ``global_orient`` there includes the root rotation of ``pose_params``.
- Right hand: MANO through the ``mano`` package (otaheri/MANO) with ``num_pca_comps=45`` and
  ``flat_hand_mean=True``. That package switches PCA *off* when 45 components are asked for, so
  ``hand_pose`` is the 15 × 3 per-joint axis-angle itself (``hand_pose_format="axis_angle"``,
  the default; ``"pca"`` maps it through ``hands_components`` instead). ``global_orient``
  rotates about the wrist joint, then ``transl`` is added; converted like the head.
- Camera: ``extrinsic`` maps world to camera (``P = intrinsic @ extrinsic[:3]``); the
  ``distortion`` coefficients are kept in ``info`` and not applied.
- Deformation: the scripts form the deformed head as
  ``V_cam − R_cam · R(global_orient) · D`` with ``D`` from ``deforms.npy``, i.e. in the FLAME
  frame before the global rotation and with the opposite of handface's sign. The reader returns
  ``deformation = −R_root(pose_params)ᵀ · D`` so that ``face_vertices_deformed =
  face_vertices + deformation @ head_rotation.T`` holds with ``head_rotation = R_cam ·
  R(global_orient) · R_root``; for a zero root rotation this is exactly ``−D``. Neck vertices
  (``assets/FLAME_neck_idx.npy``) get zero deformation and ``assets/neck_idx.npy`` zero face
  contact, as the scripts do, when those files exist (``clean_neck``).
- ``cutIDs`` do not exclude frames: the invalid ones were already cut out of every file, and the
  pairs ``(a, b)`` mark where, so frames ``a`` and ``b`` are adjacent in the files but not in
  time. The recording splits into consecutive segments ``[0, a0], [b0, a1], …, [b_last, F)``;
  each sample carries its segment index in ``info["segment"]`` (for temporal windows) and
  :meth:`DecafDataset.segments` lists them.
- ``contacts_lh.npy`` (and ``contacts_head_flipped.npy``) belong to the left-right flipped copy
  used for augmentation, not to a real left hand: samples have only the right hand.

*Assumptions* (not confirmed; parameters where it matters):

- Frame ids of ``params_smoothed.pkl`` sort (numerically when they are digit strings or ints)
  into the frame order of the ``.npy`` arrays and videos; the scripts sort them the same way.
- Units are metres (FLAME's and MANO's), also for ``transl`` and the extrinsic translation.
- The 2D keypoints are pixel coordinates of the full video frame; a third column (confidence),
  if present, is dropped.
- 3D face keypoints: Decaf has none; with a 68-point landmark embedding (DECA's
  ``landmark_embedding.npy``, found in ``assets/`` or given) they come from the mesh, otherwise
  they are zeros and ``info["face_keypoints3d_valid"]`` is ``False``.
- ``face_keypoints2d`` / ``face_keypoints68_2d`` are the detector's keypoints (not projections);
  the hand's ``keypoints2d`` are projections of its 3D keypoints (as :class:`HandSample`
  specifies) and the detected ones are in ``info["right_hand_keypoints2d_detected"]``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import roma
import torch
from torch import Tensor

from handface.data.sample import HandSample, InteractionSample, deformed_face
from handface.errors import InputError
from handface.geometry.camera import project_points
from handface.models.base import HandParams, HeadParams
from handface.models.flame_backend import FlameHeadModel, load_flame_landmark_embedding
from handface.models.landmarks import BarycentricEmbedding
from handface.models.lbs import transl_about_origin
from handface.models.mano_backend import ManoHandModel
from handface.models.safe_pickle import restricted_load

DECAF_SUBJECTS = {"train": ("S2", "S4", "S5", "S7", "S8"), "test": ("S1", "S3", "S6")}
DECAF_CAMERAS = ("084", "100", "102", "108", "110", "111", "121", "122")
DECAF_EVAL_CAMERA = "108"
DECAF_IMAGE_SIZE = (1920, 1080)
PROJECT_URL = "https://github.com/soshishimada/DecafDatasetScript"


def natural_key(value: Any) -> tuple:
    """Sort key that orders ``"2"`` before ``"10"`` (digit runs compare as numbers)."""
    parts = re.split(r"(\d+)", str(value))
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts if p)


def consecutive_segments(cut_ids: Any, num_frames: int) -> np.ndarray:
    """Segment index of every frame from Decaf's cut pairs ``[(a, b), ...]``.

    As in Decaf's ``get_consecutive_ids.py``: the segments are ``[0, a0]``, ``[b0, a1]``, …,
    ``[b_last, F)``; frames strictly between a pair's ``a`` and ``b`` (none in the released
    pairs, where ``b = a + 1``) belong to no segment and get ``-1``.

    Example:
        >>> consecutive_segments([(1, 2)], 4).tolist()
        [0, 0, 1, 1]
    """
    pairs = sorted((int(a), int(b)) for a, b in (cut_ids or []))
    segment = np.full(num_frames, -1, dtype=np.int64)
    starts = [0] + [b for _, b in pairs]
    ends = [a for a, _ in pairs] + [num_frames - 1]
    for index, (start, end) in enumerate(zip(starts, ends, strict=True)):
        segment[max(start, 0) : end + 1] = index
    return segment


@dataclass
class _Subject:
    name: str
    frame_ids: list[Any]
    params: dict[Any, Any]
    K: np.ndarray
    extrinsic: np.ndarray
    distortion: np.ndarray | None
    head_keys: np.ndarray
    hand_keys: np.ndarray
    contacts_head: np.ndarray
    contacts_rh: np.ndarray
    deforms: np.ndarray
    head_bbs: np.ndarray | None
    hand_bbs: np.ndarray | None
    segments: np.ndarray
    video: Path
    segmentation: Path
    image_size: tuple[int, int]
    image_size_known: bool


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise InputError(f"{path} is missing; a Decaf dataset needs {what} (layout: {PROJECT_URL})")
    return path


def _load_npy(path: Path, what: str, mmap: bool = False) -> np.ndarray:
    _require(path, what)
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except ValueError as exc:
        raise InputError(f"{path}: not a numeric .npy array ({exc})") from None


def _video_size(path: Path) -> tuple[int, int]:
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            return int(stream.width), int(stream.height)
    except (av.error.FFmpegError, IndexError) as exc:
        raise InputError(f"{path}: not a readable video ({exc})") from None


class DecafDataset(torch.utils.data.Dataset):
    """Frames of the Decaf dataset seen from one camera, as :class:`InteractionSample` s.

    Keys are ``"<subject>_<camera>_<frame:06d>"`` (``"S1_108_000123"``). Vertices, keypoints and
    landmarks are in the camera frame; ``head_params`` / ``HandSample.params`` are handface
    parameters of :class:`FlameHeadModel` / :class:`ManoHandModel` in Decaf's world frame, so
    ``flame(HeadParams(**{k: v[None] for k, v in s.head_params.items()}))`` rebuilds the head
    (``x_cam = R @ x_world + t``); Decaf's raw values are in ``info["decaf_params"]``.

    Args:
        root: the ``DecafDataset`` folder (holding ``train/``, ``test/``, ``assets/``).
        split: ``"train"`` or ``"test"``.
        subjects: subjects to read (default: every one under ``<split>/params``).
        camera: camera id (``"108"`` is the evaluation view).
        flame / mano: a model, the path of the user's model file, or ``None`` for the files in
            ``<root>/assets`` (``generic_model.pkl``, ``mano_v1_2/models/MANO_RIGHT.pkl``).
        load_images: decode the RGB frame (``image``) and the foreground mask
            (``info["foreground"]``) from the videos.
        landmark_embedding: 68-point FLAME embedding (path or embedding) for 3D face keypoints;
            ``"auto"`` uses the FLAME model's or ``<root>/assets/landmark_embedding.npy``.
        hand_pose_format: how to read the 45 ``hand_pose`` values (see the module doc).
        clean_neck: zero neck deformations / contacts with the ``assets`` index files.
        frame_step: keep every ``frame_step``-th frame.
        image_size: (width, height) used when the video is absent and images are not loaded.

    Example:
        >>> ds = DecafDataset("DecafDataset", split="test", camera="108")   # doctest: +SKIP
        >>> sample = ds[0]; sample.key                                      # doctest: +SKIP
        'S1_108_000000'
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "test",
        subjects: list[str] | tuple[str, ...] | None = None,
        camera: str | int = DECAF_EVAL_CAMERA,
        flame: FlameHeadModel | str | Path | None = None,
        mano: ManoHandModel | str | Path | None = None,
        load_images: bool = False,
        landmark_embedding: str | Path | BarycentricEmbedding | None = "auto",
        hand_pose_format: Literal["axis_angle", "pca"] = "axis_angle",
        clean_neck: bool = True,
        frame_step: int = 1,
        image_size: tuple[int, int] = DECAF_IMAGE_SIZE,
    ) -> None:
        super().__init__()
        self.root = Path(root)
        self.split = split
        self.split_dir = _require(self.root / split, f"a '{split}' split folder")
        camera = str(camera)
        self.camera = camera.zfill(3) if camera.isdigit() else camera
        self.load_images = load_images
        if hand_pose_format not in ("axis_angle", "pca"):
            raise InputError(
                f"hand_pose_format must be 'axis_angle' or 'pca', not {hand_pose_format!r}"
            )
        self.hand_pose_format = hand_pose_format
        if frame_step < 1:
            raise InputError(f"frame_step must be at least 1, got {frame_step}")
        assets = self.root / "assets"
        self.flame = (
            flame
            if isinstance(flame, FlameHeadModel)
            else FlameHeadModel(flame if flame is not None else assets / "generic_model.pkl")
        )
        self.mano = (
            mano
            if isinstance(mano, ManoHandModel)
            else ManoHandModel(
                mano if mano is not None else assets / "mano_v1_2" / "models" / "MANO_RIGHT.pkl",
                "right",
            )
        )
        self.landmark_embedding = self._resolve_embedding(landmark_embedding, assets)
        self.deform_neck_ids = self._index_file(assets / "FLAME_neck_idx.npy", clean_neck)
        self.contact_neck_ids = self._index_file(assets / "neck_idx.npy", clean_neck)
        for ids, name in (
            (self.deform_neck_ids, "FLAME_neck_idx.npy"),
            (self.contact_neck_ids, "neck_idx.npy"),
        ):
            if (
                ids is not None
                and ids.size
                and not 0 <= ids.min() <= ids.max() < self.flame.num_vertices
            ):
                raise InputError(
                    f"{assets / name} indexes vertices outside the FLAME model's "
                    f"{self.flame.num_vertices}; is it from another model?"
                )
        if subjects is None:
            params_dir = _require(
                self.split_dir / "params", "a params/<subject>/ folder per subject"
            )
            subjects = sorted((p.name for p in params_dir.iterdir() if p.is_dir()), key=natural_key)
            if not subjects:
                raise InputError(f"{params_dir} holds no subject folders (expected S1, S2, ...)")
        self.subjects = {name: self._load_subject(name, image_size) for name in subjects}
        self.index = [
            (name, frame)
            for name, subject in self.subjects.items()
            for frame in range(0, len(subject.frame_ids), frame_step)
        ]

    # ----------------------------------------------------------------------------- loading
    def _resolve_embedding(
        self, value: str | Path | BarycentricEmbedding | None, assets: Path
    ) -> BarycentricEmbedding | None:
        if isinstance(value, BarycentricEmbedding) or value is None:
            return value
        if str(value) == "auto":
            if self.flame.landmark_embedding is not None:
                return self.flame.landmark_embedding
            default = assets / "landmark_embedding.npy"
            return load_flame_landmark_embedding(default) if default.is_file() else None
        return load_flame_landmark_embedding(value)

    @staticmethod
    def _index_file(path: Path, enabled: bool) -> np.ndarray | None:
        if not enabled or not path.is_file():
            return None
        return np.asarray(_load_npy(path, "vertex indices")).reshape(-1).astype(np.int64)

    def _load_subject(self, name: str, default_size: tuple[int, int]) -> _Subject:
        split, cam = self.split_dir, self.camera
        params_path = split / "params" / name / "params_smoothed.pkl"
        params = restricted_load(params_path, error=InputError, what="params_smoothed.pkl")
        if not isinstance(params, dict) or not params:
            raise InputError(f"{params_path}: expected a non-empty dict of per-frame parameters")
        frame_ids = sorted(params, key=natural_key)
        num_frames = len(frame_ids)
        cameras_path = split / "cameras" / name / "cameras.pkl"
        cameras = restricted_load(cameras_path, error=InputError, what="cameras.pkl")
        calibration = None
        if isinstance(cameras, dict):
            for key in (cam, cam.lstrip("0"), int(cam) if cam.isdigit() else None):
                if key in cameras:
                    calibration = cameras[key]
                    break
        if not isinstance(calibration, dict):
            found = ", ".join(map(str, cameras)) if isinstance(cameras, dict) else "nothing"
            raise InputError(f"{cameras_path} has no camera {cam!r} (found: {found})")
        try:
            K = np.asarray(calibration["intrinsic"], dtype=np.float64)[:3, :3]
            extrinsic = np.asarray(calibration["extrinsic"], dtype=np.float64)[:4, :4]
        except (KeyError, IndexError, ValueError) as exc:
            raise InputError(f"{cameras_path}: camera {cam} lacks a usable {exc}") from None
        if K.shape != (3, 3) or extrinsic.shape[0] < 3 or extrinsic.shape[1] != 4:
            raise InputError(f"{cameras_path}: camera {cam} intrinsic/extrinsic have wrong shapes")
        distortion = calibration.get("distortion")
        head_keys = _load_npy(split / "head_keys" / name / f"{cam}.npy", "68 face keypoints")
        hand_keys = _load_npy(split / "right_hand_keys" / name / f"{cam}.npy", "21 hand keypoints")
        contacts = split / "contacts" / name
        contacts_head = _load_npy(contacts / "contacts_head.npy", "face contacts", mmap=True)
        contacts_rh = _load_npy(contacts / "contacts_rh.npy", "right-hand contacts", mmap=True)
        deforms = _load_npy(
            split / "deformations" / name / "deforms.npy", "face deformations", mmap=True
        )
        num_face, num_hand = self.flame.num_vertices, self.mano.num_vertices
        checks = [
            (head_keys, split / "head_keys" / name / f"{cam}.npy", (68,)),
            (hand_keys, split / "right_hand_keys" / name / f"{cam}.npy", (21,)),
            (contacts_head, contacts / "contacts_head.npy", (num_face,)),
            (contacts_rh, contacts / "contacts_rh.npy", (num_hand,)),
            (deforms, split / "deformations" / name / "deforms.npy", (num_face, 3)),
        ]
        for array, path, tail in checks:
            if array.shape[0] != num_frames or tuple(array.shape[1 : 1 + len(tail)]) != tail:
                wanted = ", ".join(map(str, (num_frames, *tail)))
                raise InputError(
                    f"{path} has shape {tuple(array.shape)}; expected ({wanted}, ...) to match "
                    f"the {num_frames} frames of {params_path.name} and the model files"
                )
        bbs = {}
        for folder in ("head_bbs", "right_hand_bbs"):
            path = split / folder / name / f"{cam}.npy"
            bbs[folder] = _load_npy(path, "boxes") if path.is_file() else None
        cut_path = split / "cutIDs" / f"{name}.pkl"
        cut_ids = restricted_load(cut_path, error=InputError) if cut_path.is_file() else []
        try:
            segments = consecutive_segments(cut_ids, num_frames)
        except (TypeError, ValueError):
            raise InputError(f"{cut_path}: expected a list of (frame, frame) pairs") from None
        video = split / "videos" / name / f"{cam}.mp4"
        segmentation = split / "segmentations" / name / f"{cam}.mp4"
        if self.load_images:
            _require(video, "the RGB video of every subject and camera")
        known = video.is_file()
        size = _video_size(video) if known else tuple(default_size)
        return _Subject(
            name=name,
            frame_ids=frame_ids,
            params=params,
            K=K,
            extrinsic=extrinsic,
            distortion=None if distortion is None else np.asarray(distortion, dtype=np.float64),
            head_keys=head_keys,
            hand_keys=hand_keys,
            contacts_head=contacts_head,
            contacts_rh=contacts_rh,
            deforms=deforms,
            head_bbs=bbs["head_bbs"],
            hand_bbs=bbs["right_hand_bbs"],
            segments=segments,
            video=video,
            segmentation=segmentation,
            image_size=(int(size[0]), int(size[1])),
            image_size_known=known,
        )

    # ----------------------------------------------------------------------------- samples
    def __len__(self) -> int:
        return len(self.index)

    @functools.cached_property
    def keys(self) -> list[str]:
        return [f"{name}_{self.camera}_{frame:06d}" for name, frame in self.index]

    def segments(self, subject: str) -> list[list[int]]:
        """Frame indices of each consecutive (uncut) segment of a subject's recording."""
        labels = self.subjects[subject].segments
        return [np.flatnonzero(labels == s).tolist() for s in range(int(labels.max()) + 1)]

    def _frame_params(self, subject: _Subject, frame: int) -> dict[str, dict[str, np.ndarray]]:
        frame_id = subject.frame_ids[frame]
        entry = subject.params[frame_id]
        path = self.split_dir / "params" / subject.name / "params_smoothed.pkl"
        sizes = {
            "head": {"transl": 3, "global_orient": 3, "shape_params": None, "pose_params": 6,
                     "expression_params": None},
            "right_hand": {"betas": None, "global_orient": 3, "hand_pose": None, "transl": 3},
        }  # fmt: skip
        out: dict[str, dict[str, np.ndarray]] = {}
        for part, keys in sizes.items():
            values = entry.get(part) if isinstance(entry, dict) else None
            if not isinstance(values, dict):
                raise InputError(f"{path}: frame {frame_id!r} has no '{part}' parameters")
            out[part] = {}
            for key, size in keys.items():
                if key not in values:
                    raise InputError(f"{path}: frame {frame_id!r} lacks {part}.{key}")
                array = np.asarray(values[key], dtype=np.float64).reshape(-1)
                if size is not None and array.shape[0] != size:
                    raise InputError(
                        f"{path}: frame {frame_id!r} {part}.{key} has {array.shape[0]} values, "
                        f"expected {size}"
                    )
                out[part][key] = array
        return out

    def __getitem__(self, idx: int) -> InteractionSample:
        name, frame = self.index[idx]
        subject = self.subjects[name]
        raw = self._frame_params(subject, frame)
        like = self.flame.template_vertices
        t = lambda a: torch.tensor(np.asarray(a), dtype=like.dtype)
        R_cam, t_cam = t(subject.extrinsic[:3, :3]), t(subject.extrinsic[:3, 3])
        K = t(subject.K)
        head_params, face_world, root_rot = self._head(raw["head"], t)
        hand_params, hand_world, keypoints_world = self._hand(raw["right_hand"], t)
        to_cam = lambda x: x @ R_cam.T + t_cam
        face_vertices = to_cam(face_world)
        head_rotation = R_cam @ roma.rotvec_to_rotmat(head_params["global_orient"])
        decaf_deformation = t(subject.deforms[frame])
        if self.deform_neck_ids is not None:
            decaf_deformation[self.deform_neck_ids] = 0.0
        deformation = -(decaf_deformation @ root_rot)  # −R_rootᵀ D, row-vector form
        face_contact = t(subject.contacts_head[frame]).clone()
        if self.contact_neck_ids is not None:
            face_contact[self.contact_neck_ids] = 0.0
        face_keys2d = t(subject.head_keys[frame][:, :2])
        hand_keys2d_detected = t(subject.hand_keys[frame][:, :2])
        keypoints3d_valid = self.landmark_embedding is not None
        if keypoints3d_valid:
            face_keys3d = self.landmark_embedding.apply(face_vertices, self.flame.faces)
        else:
            face_keys3d = like.new_zeros(68, 3)
        hand_keypoints = to_cam(keypoints_world)
        hand = HandSample(
            side="right",
            vertices=to_cam(hand_world),
            faces=self.mano.faces,
            keypoints3d=hand_keypoints,
            keypoints2d=project_points(hand_keypoints, K),
            contact=t(subject.contacts_rh[frame]).clone(),
            params=hand_params,
        )
        info: dict[str, Any] = {
            "dataset": "decaf",
            "split": self.split,
            "subject": name,
            "camera": self.camera,
            "frame": frame,
            "frame_id": subject.frame_ids[frame],
            "segment": int(subject.segments[frame]),
            "distortion": None if subject.distortion is None else t(subject.distortion),
            "face_keypoints3d_valid": keypoints3d_valid,
            "face_keypoints2d_source": "detector",
            "right_hand_keypoints2d_detected": hand_keys2d_detected,
            "image_size_from_video": subject.image_size_known,
            "neck_cleaned": self.deform_neck_ids is not None,
            "decaf_params": {
                part: {key: t(value) for key, value in values.items()}
                for part, values in raw.items()
            },
        }
        if subject.head_bbs is not None:
            info["head_bbox"] = t(subject.head_bbs[frame])
        if subject.hand_bbs is not None:
            info["right_hand_bbox"] = t(subject.hand_bbs[frame])
        image = None
        if self.load_images:
            image, foreground = self._read_frames(subject, frame)
            info["foreground"] = foreground
        return InteractionSample(
            key=f"{name}_{self.camera}_{frame:06d}",
            image_size=subject.image_size,
            K=K,
            R=R_cam,
            t=t_cam,
            face_vertices=face_vertices,
            face_vertices_deformed=deformed_face(face_vertices, deformation, head_rotation),
            face_faces=self.flame.faces,
            deformation=deformation,
            head_rotation=head_rotation,
            face_contact=face_contact,
            face_keypoints3d=face_keys3d,
            face_keypoints2d=face_keys2d,
            face_keypoints68_3d=face_keys3d,
            face_keypoints68_2d=face_keys2d,
            head_params=head_params,
            hands={"right": hand},
            image=image,
            info=info,
        )

    @torch.no_grad()
    def _head(self, raw: dict[str, np.ndarray], t) -> tuple[dict[str, Tensor], Tensor, Tensor]:
        """handface head parameters, world-frame vertices and the root rotation of one frame."""
        shape, expression = t(raw["shape_params"]), t(raw["expression_params"])
        pose = t(raw["pose_params"])
        root_rot, jaw = roma.rotvec_to_rotmat(pose[:3]), pose[3:6]
        out = self.flame(HeadParams(shape=shape[None], expression=expression[None], jaw=jaw[None]))
        local, root_joint = out.vertices[0], out.joints[0, 0]
        # Decaf: v = Rg (R0 (x - J0) + J0 - c) + c + T with c the centroid of R0 (x - J0) + J0.
        centroid = root_rot @ (local.mean(0) - root_joint) + root_joint
        global_rot = roma.rotvec_to_rotmat(t(raw["global_orient"]))
        rotation = global_rot @ root_rot
        pivot_term = root_joint - root_rot @ root_joint - centroid
        transl = global_rot @ pivot_term + centroid + t(raw["transl"])
        params = {
            "global_orient": roma.rotmat_to_rotvec(rotation),
            "transl": transl,
            "neck": torch.zeros_like(jaw),
            "jaw": jaw,
            "eyes": jaw.new_zeros(2, 3),
            "shape": shape,
            "expression": expression,
        }
        return params, local @ rotation.T + transl, root_rot

    @torch.no_grad()
    def _hand(self, raw: dict[str, np.ndarray], t) -> tuple[dict[str, Tensor], Tensor, Tensor]:
        """handface MANO parameters, world-frame vertices and keypoints of one frame."""
        betas, hand_pose = t(raw["betas"]), t(raw["hand_pose"])
        if self.hand_pose_format == "pca":
            finger_pose = self.mano.pca_to_finger_pose(hand_pose[None])[0]
        elif hand_pose.shape[0] != 45:
            raise InputError(
                f"hand_pose has {hand_pose.shape[0]} values; axis-angle needs 45 "
                "(pass hand_pose_format='pca' for PCA coefficients)"
            )
        else:
            finger_pose = hand_pose.reshape(15, 3)
        out = self.mano(HandParams(shape=betas[None], finger_pose=finger_pose[None]))
        rotvec = t(raw["global_orient"])
        transl = transl_about_origin(rotvec, out.joints[0, 0], t(raw["transl"]))
        rotation = roma.rotvec_to_rotmat(rotvec)
        params = {
            "global_orient": rotvec,
            "transl": transl,
            "finger_pose": finger_pose,
            "shape": betas,
        }
        return (
            params,
            out.vertices[0] @ rotation.T + transl,
            out.keypoints[0] @ rotation.T + transl,
        )

    def _read_frames(self, subject: _Subject, frame: int) -> tuple[Tensor, Tensor | None]:
        import imageio.v3 as iio

        try:
            rgb = iio.imread(subject.video, index=frame, plugin="pyav")
        except (OSError, IndexError, ValueError, StopIteration) as exc:
            raise InputError(f"{subject.video}: cannot read frame {frame} ({exc})") from None
        image = torch.from_numpy(np.ascontiguousarray(rgb[..., :3])).float() / 255.0
        foreground = None
        if subject.segmentation.is_file():
            try:
                mask = iio.imread(subject.segmentation, index=frame, plugin="pyav")
            except (OSError, IndexError, ValueError, StopIteration) as exc:
                raise InputError(
                    f"{subject.segmentation}: cannot read frame {frame} ({exc})"
                ) from None
            gray = mask.mean(-1) if mask.ndim == 3 else mask
            foreground = torch.from_numpy(gray > 127)
        return image, foreground
