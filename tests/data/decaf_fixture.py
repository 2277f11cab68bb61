"""Synthetic FLAME / MANO model files in the official layout and a tiny Decaf-layout dataset.

Nothing here comes from the licensed files: the "FLAME" is an icosphere with 5 joints and random
blendshapes, the "MANO" a capsule of 778 vertices with 16 joints. The pickles are written the way
the official ones are (protocol 2, ``shapedirs`` as a ``chumpy.ch.Ch`` object, ``J_regressor`` as
a ``scipy.sparse.csc_matrix``), with a stand-in class that pickles under chumpy's name.
"""

from __future__ import annotations

import contextlib
import pickle
import shutil
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np
import roma
import scipy.sparse
import torch
import trimesh

from handface.models.flame_backend import FlameHeadModel
from handface.models.mano_backend import ManoHandModel


class Ch:
    """Pickles as ``chumpy.ch.Ch`` with the state dict chumpy's ``__setstate__`` receives."""

    def __init__(self, x: np.ndarray) -> None:
        self.x = x

    def __getstate__(self) -> dict[str, Any]:
        # chumpy's __getstate__ returns __dict__ without _parents and _cache
        return {
            "x": self.x,
            "_dirty_vars": set(),
            "_itr": None,
            "_make_dense": False,
            "_make_sparse": False,
            "_depends_on_deps": {},
        }


class add:  # noqa: N801 - named like chumpy.ch_ops.add
    """Pickles as ``chumpy.ch_ops.add`` (an expression object without an ``x``)."""

    def __init__(self, a: Ch, b: Ch) -> None:
        self.a, self.b = a, b


Ch.__module__ = "chumpy.ch"
add.__module__ = "chumpy.ch_ops"


@contextlib.contextmanager
def fake_chumpy():
    """Make ``chumpy.ch.Ch`` / ``chumpy.ch_ops.add`` resolvable while pickling, then undo it."""
    names = ("chumpy", "chumpy.ch", "chumpy.ch_ops")
    saved = {name: sys.modules.get(name) for name in names}
    package, ch, ops = (types.ModuleType(name) for name in names)
    ch.Ch, ops.add = Ch, add
    package.ch, package.ch_ops = ch, ops
    sys.modules.update(zip(names, (package, ch, ops), strict=True))
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _regressor(vertices: np.ndarray, centers: np.ndarray, k: int = 6) -> np.ndarray:
    """Each joint = mean of its k nearest vertices (rows sum to 1, like the official ones)."""
    regressor = np.zeros((len(centers), len(vertices)))
    for j, center in enumerate(centers):
        nearest = np.argsort(((vertices - center) ** 2).sum(1))[:k]
        regressor[j, nearest] = 1.0 / k
    return regressor


def _skinning_weights(vertices: np.ndarray, centers: np.ndarray, sigma: float) -> np.ndarray:
    d2 = ((vertices[:, None] - centers[None]) ** 2).sum(-1)
    weights = np.exp(-(d2 - d2.min(1, keepdims=True)) / (2 * sigma**2))
    return weights / weights.sum(1, keepdims=True)


def _write_model_pickle(path: Path, content: dict[str, Any], protocol: int = 2) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with fake_chumpy(), open(path, "wb") as stream:
        pickle.dump(content, stream, protocol=protocol)


def fake_flame_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    """Arrays of a small FLAME-layout model: icosphere template, 5 joints, 300 + 100 comps."""
    rng = np.random.default_rng(seed)
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=0.1)
    center = np.array([0.0, 0.03, 0.01])
    vertices = np.asarray(sphere.vertices) + center
    targets = center + np.array(
        [[0, -0.07, 0], [0, -0.05, 0], [0, -0.03, 0.06], [0.035, 0.04, 0.08], [-0.035, 0.04, 0.08]]
    )
    regressor = _regressor(vertices, targets)
    return {
        "v_template": vertices,
        "f": np.asarray(sphere.faces, dtype=np.uint32),
        "shapedirs": rng.normal(scale=1e-3, size=(len(vertices), 3, 400)),
        "posedirs": rng.normal(scale=1e-3, size=(len(vertices), 3, 36)),
        "J_regressor": regressor,
        "weights": _skinning_weights(vertices, regressor @ vertices, sigma=0.03),
        "kintree_table": np.array([[2**32 - 1, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.int64),
    }


def _capsule(rings: int = 8, segments: int = 97, radius: float = 0.02, length: float = 0.15):
    """A closed capsule along +y with ``2 + rings * segments`` vertices (778 by default)."""
    ys = np.linspace(0.0, length, rings)
    angles = np.linspace(0.0, 2 * np.pi, segments, endpoint=False)
    ring = np.stack([radius * np.cos(angles), np.zeros_like(angles), radius * np.sin(angles)], 1)
    body = np.concatenate([ring + [0.0, y, 0.0] for y in ys])
    vertices = np.concatenate([body, [[0.0, -radius, 0.0], [0.0, length + radius, 0.0]]])
    bottom, top = len(body), len(body) + 1
    faces = []
    for r in range(rings - 1):
        for s in range(segments):
            a, b = r * segments + s, r * segments + (s + 1) % segments
            faces += [[a, a + segments, b], [b, a + segments, b + segments]]
    for s in range(segments):
        faces.append([bottom, s, (s + 1) % segments])
        last = (rings - 1) * segments
        faces.append([top, last + (s + 1) % segments, last + s])
    return vertices, np.asarray(faces, dtype=np.uint32)


MANO_PARENTS = [-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14]


def fake_mano_arrays(seed: int = 1) -> dict[str, np.ndarray]:
    """Arrays of a small MANO-layout model: 778-vertex capsule, 16 joints, 10 betas, PCA."""
    rng = np.random.default_rng(seed)
    vertices, faces = _capsule()
    targets = [[0.0, 0.01, 0.0]]
    for x in (-0.012, -0.004, 0.012, 0.004, -0.02):  # index, middle, little, ring, thumb
        targets += [[x, 0.06 + 0.025 * k, 0.0] for k in range(3)]
    regressor = _regressor(vertices, np.asarray(targets))
    components = np.linalg.qr(rng.normal(size=(45, 45)))[0]
    return {
        "v_template": vertices,
        "f": faces,
        "shapedirs": rng.normal(scale=1e-3, size=(len(vertices), 3, 10)),
        "posedirs": rng.normal(scale=1e-3, size=(len(vertices), 3, 135)),
        "J_regressor": regressor,
        "weights": _skinning_weights(vertices, regressor @ vertices, sigma=0.015),
        "kintree_table": np.array(
            [[2**32 - 1, *MANO_PARENTS[1:]], list(range(16))], dtype=np.int64
        ),
        "hands_components": components,
        "hands_mean": rng.normal(scale=0.1, size=45),
    }


def _official_layout(arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    content: dict[str, Any] = dict(arrays)
    content["shapedirs"] = Ch(arrays["shapedirs"])
    content["J_regressor"] = scipy.sparse.csc_matrix(arrays["J_regressor"])
    content["J"] = add(Ch(arrays["J_regressor"] @ arrays["v_template"]), Ch(np.zeros(3)))
    content["bs_style"], content["bs_type"] = "lbs", "lrotmin"
    return content


def write_fake_flame(path: Path, seed: int = 0, protocol: int = 2) -> dict[str, np.ndarray]:
    """Write a FLAME-layout ``.pkl`` (or ``.npz`` when the suffix says so); return its arrays.

    Protocol 2 is what the official (Python 2) files use; protocol 0 spells the Python 2 module
    names (``copy_reg``, ``__builtin__``) out.
    """
    arrays = fake_flame_arrays(seed)
    if Path(path).suffix == ".npz":
        np.savez(path, **arrays)
    else:
        _write_model_pickle(Path(path), _official_layout(arrays), protocol)
    return arrays


def write_fake_mano(path: Path, seed: int = 1) -> dict[str, np.ndarray]:
    """Write a MANO-layout ``.pkl`` (or ``.npz``); return its arrays."""
    arrays = fake_mano_arrays(seed)
    if Path(path).suffix == ".npz":
        np.savez(path, **arrays)
    else:
        _write_model_pickle(Path(path), _official_layout(arrays))
    return arrays


@dataclass
class DecafFixture:
    """What :func:`write_decaf_fixture` wrote, for the tests to compare against."""

    root: Path
    subject: str
    camera: str
    split: str
    params: dict[int, dict[str, dict[str, np.ndarray]]]
    extrinsic: np.ndarray
    intrinsic: np.ndarray
    deforms: np.ndarray
    contacts_head: np.ndarray
    contacts_rh: np.ndarray
    head_keys: np.ndarray
    hand_keys: np.ndarray
    head_bbs: np.ndarray
    cut_ids: list[tuple[int, int]]
    neck_ids: np.ndarray
    colours: np.ndarray
    image_size: tuple[int, int]
    landmark_faces: np.ndarray | None = None
    landmark_bary: np.ndarray | None = None
    files: dict[str, Path] = field(default_factory=dict)


def write_decaf_fixture(
    root: Path,
    flame_path: Path,
    mano_path: Path,
    num_frames: int = 3,
    subject: str = "S1",
    camera: str = "108",
    split: str = "test",
    with_landmarks: bool = True,
    seed: int = 2,
) -> DecafFixture:
    """Write a tiny dataset in Decaf's layout with known parameters and labels.

    The model files are copied to ``assets/`` under the names Decaf's scripts use. Frame 0 has a
    zero FLAME root rotation (``pose_params[:3]``), later frames do not.
    """
    rng = np.random.default_rng(seed)
    root = Path(root)
    base = root / split
    assets = root / "assets"
    (assets / "mano_v1_2" / "models").mkdir(parents=True, exist_ok=True)
    shutil.copy(flame_path, assets / "generic_model.pkl")
    shutil.copy(mano_path, assets / "mano_v1_2" / "models" / "MANO_RIGHT.pkl")
    flame, mano = FlameHeadModel(flame_path), ManoHandModel(mano_path, "right")
    num_face, num_faces, num_hand = flame.num_vertices, len(flame.faces), mano.num_vertices

    def save(relative: str, array: np.ndarray) -> Path:
        path = base / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, array)
        return path

    def dump(path: Path, value: Any) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as stream:
            pickle.dump(value, stream, protocol=pickle.HIGHEST_PROTOCOL)
        return path

    params: dict[int, dict[str, dict[str, np.ndarray]]] = {}
    for i in range(num_frames):
        root_rot = np.zeros(3) if i == 0 else rng.normal(scale=0.15, size=3)
        params[i] = {
            "head": {
                "transl": rng.normal(scale=0.02, size=3).astype(np.float32),
                "global_orient": rng.normal(scale=0.3, size=3).astype(np.float32),
                "shape_params": rng.normal(size=100).astype(np.float32),
                "pose_params": np.concatenate([root_rot, [0.2, 0.0, 0.0]]).astype(np.float32),
                "expression_params": rng.normal(size=50).astype(np.float32),
            },
            "right_hand": {
                "betas": rng.normal(size=10).astype(np.float32),
                "global_orient": rng.normal(scale=0.5, size=3).astype(np.float32),
                "hand_pose": rng.normal(scale=0.2, size=45).astype(np.float32),
                "transl": (np.array([0.05, -0.05, 0.08]) + rng.normal(scale=0.01, size=3)).astype(
                    np.float32
                ),
            },
        }
    width, height = 64, 48
    intrinsic = np.array([[60.0, 0.0, 31.5], [0.0, 60.0, 23.5], [0.0, 0.0, 1.0]])
    extrinsic = np.eye(4)
    extrinsic[:3, :3] = roma.rotvec_to_rotmat(torch.tensor([0.1, -0.2, 0.05])).double().numpy()
    extrinsic[:3, 3] = [0.02, -0.01, 0.7]
    other = extrinsic.copy()
    other[:3, 3] = [0.5, 0.0, 0.7]
    cameras = {
        camera: {"intrinsic": intrinsic, "extrinsic": extrinsic, "distortion": np.zeros(5)},
        "084": {"intrinsic": intrinsic, "extrinsic": other, "distortion": np.zeros(5)},
    }
    deforms = rng.normal(scale=2e-3, size=(num_frames, num_face, 3)).astype(np.float32)
    contacts_head = (rng.random((num_frames, num_face)) < 0.1).astype(np.float32)
    contacts_rh = (rng.random((num_frames, num_hand)) < 0.1).astype(np.float32)
    head_keys = rng.uniform(0, width, size=(num_frames, 68, 2)).astype(np.float32)
    hand_keys = rng.uniform(0, width, size=(num_frames, 21, 3)).astype(np.float32)  # x, y, conf
    head_bbs = np.tile(np.array([10, 5, 50, 45]), (num_frames, 1))
    head_bbs[-1] = -1  # a failed detection, as Decaf marks them
    cut_ids = [(0, 1)] if num_frames > 1 else []
    neck_ids = np.arange(0, num_face, 50)

    files = {
        "head_keys": save(f"head_keys/{subject}/{camera}.npy", head_keys),
        "right_hand_keys": save(f"right_hand_keys/{subject}/{camera}.npy", hand_keys),
        "head_bbs": save(f"head_bbs/{subject}/{camera}.npy", head_bbs),
        "right_hand_bbs": save(f"right_hand_bbs/{subject}/{camera}.npy", head_bbs + 3),
        "contacts_head": save(f"contacts/{subject}/contacts_head.npy", contacts_head),
        "contacts_rh": save(f"contacts/{subject}/contacts_rh.npy", contacts_rh),
        "contacts_lh": save(f"contacts/{subject}/contacts_lh.npy", contacts_rh[:, ::-1].copy()),
        "deforms": save(f"deformations/{subject}/deforms.npy", deforms),
        "params": dump(base / "params" / subject / "params_smoothed.pkl", params),
        "cameras": dump(base / "cameras" / subject / "cameras.pkl", cameras),
        "cut_ids": dump(base / "cutIDs" / f"{subject}.pkl", cut_ids),
    }
    np.save(assets / "FLAME_neck_idx.npy", neck_ids)
    colours = np.array(
        [[(40 + 70 * i) % 250, 100, (200 + 90 * i) % 250] for i in range(num_frames)]
    )
    frames = np.zeros((num_frames, height, width, 3), dtype=np.uint8)
    frames[:] = colours[:, None, None, :].astype(np.uint8)
    masks = np.zeros_like(frames)
    masks[:, 10:40, 20:50] = 255
    for folder, content in (("videos", frames), ("segmentations", masks)):
        path = base / folder / subject / f"{camera}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        iio.imwrite(path, content, plugin="pyav", codec="libx264", fps=25)
        files[folder] = path

    fixture = DecafFixture(
        root=root,
        subject=subject,
        camera=camera,
        split=split,
        params=params,
        extrinsic=extrinsic,
        intrinsic=intrinsic,
        deforms=deforms,
        contacts_head=contacts_head,
        contacts_rh=contacts_rh,
        head_keys=head_keys,
        hand_keys=hand_keys,
        head_bbs=head_bbs,
        cut_ids=cut_ids,
        neck_ids=neck_ids,
        colours=colours,
        image_size=(width, height),
        files=files,
    )
    if with_landmarks:
        faces = rng.integers(0, num_faces, size=(1, 68))
        bary = rng.dirichlet(np.ones(3), size=(1, 68))
        embedding = {  # DECA's landmark_embedding.npy: numpy arrays and torch tensors in a dict
            "static_lmk_faces_idx": faces[0, 17:],
            "static_lmk_bary_coords": bary[0, 17:],
            "dynamic_lmk_faces_idx": torch.zeros(79, 17, dtype=torch.long),
            "dynamic_lmk_bary_coords": torch.zeros(79, 17, 3),
            "full_lmk_faces_idx": faces,
            "full_lmk_bary_coords": bary,
        }
        np.save(assets / "landmark_embedding.npy", embedding, allow_pickle=True)
        fixture.landmark_faces, fixture.landmark_bary = faces[0], bary[0]
        fixture.files["landmark_embedding"] = assets / "landmark_embedding.npy"
    return fixture
