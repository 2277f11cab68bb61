"""FLAME head model read from the user's own model file (never shipped with handface).

Reads the official FLAME 2020 / 2023 pickle (``generic_model.pkl``, ``flame2023.pkl``; users
obtain it from https://flame.is.tue.mpg.de) or an ``.npz`` with the same keys:
``v_template (5023, 3)``, ``f (9976, 3)``, ``shapedirs (5023, 3, 400)`` (300 identity then 100
expression components), ``posedirs (5023, 3, 36)``, ``J_regressor`` (sparse 5 × 5023),
``weights (5023, 5)`` and ``kintree_table (2, 5)``. Pickles are read with the restricted
unpickler of :mod:`handface.models.safe_pickle` (chumpy is not needed and no code in the file runs).

Frame: FLAME's own canonical frame, unchanged: y up, the face looking along +z, metres, origin
at the coordinate origin of the model file (not a joint). ``HeadParams.global_orient`` rotates
the posed head about that origin and ``transl`` then moves it (``world = R @ canonical + t``),
as for every handface model. smplx-style FLAME code instead rotates about the root joint; convert
such a translation with :func:`handface.models.lbs.transl_about_origin` and the root joint from
``MeshOutput.joints[:, 0]`` of an unrotated forward pass.

Parameters: ``HeadParams.shape`` holds the first ``n`` identity coefficients and
``HeadParams.expression`` the first ``m`` expression PCA coefficients (FLAME has 100; Decaf uses
``n = 100, m = 50``) — not the ARKit actions of the Anny backend; the field's width decides
``n``/``m``. Both are unbounded PCA coefficients in standard deviations, 0 = average/neutral
(``neutral_shape = 0``, ``shape_prior_scale = 1``, no ``shape_bounds`` or
``expression_bounds``). ``neck``, ``jaw`` and ``eyes`` (left, right) are the local axis-angles
of FLAME's joints 1-4; the root joint's own rotation stays identity (``global_orient`` replaces
it).

Landmarks: with a 68-point embedding (DECA's ``landmark_embedding.npy``, see
:func:`load_flame_landmark_embedding`) the forward pass fills ``MeshOutput.landmarks68`` and
``landmark_layout`` is ``"ibug68"``; fitting then uses those 68 points of MediaPipe's
detections.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from handface.errors import ModelFileError
from handface.models.base import HeadModel, HeadParams, MeshOutput
from handface.models.landmarks import BarycentricEmbedding
from handface.models.lbs import blend_shapes, local_rotations, rigid_transform, skin
from handface.models.safe_pickle import load_array_dict, load_npy_object, to_array

FLAME_JOINT_LABELS = ["global", "neck", "jaw", "eye_left", "eye_right"]
FLAME_NUM_SHAPE = 300
"""Identity components in the official files; the rest of ``shapedirs`` is expression."""


def load_model_arrays(
    path: str | Path,
    required: Sequence[str],
    optional: Sequence[str] = (),
    what: str = "model file",
) -> dict[str, np.ndarray]:
    """Dense arrays for the given keys of an SMPL-family ``.pkl`` / ``.npz`` model file."""
    path = Path(path)
    content = load_array_dict(path, error=ModelFileError, what=what)
    missing = [key for key in required if key not in content]
    if missing:
        raise ModelFileError(
            f"{path} lacks {', '.join(missing)}; is it really a {what}? "
            f"(found: {', '.join(sorted(map(str, content))[:12])})"
        )
    return {
        key: to_array(content[key], label=f"{path}:{key}", error=ModelFileError)
        for key in [*required, *optional]
        if key in content
    }


def parents_from_kintree(kintree: np.ndarray, path: Path) -> list[int]:
    """Parent index of each joint (``-1`` for the root) from an SMPL-style ``kintree_table``."""
    if kintree.ndim != 2 or kintree.shape[0] != 2:
        raise ModelFileError(f"{path}: kintree_table must be 2 × J, got {kintree.shape}")
    order = kintree[1].astype(np.int64)
    if not np.array_equal(order, np.arange(kintree.shape[1])):
        raise ModelFileError(f"{path}: kintree_table joints are not numbered 0..J-1")
    parents = [int(p) for p in kintree[0].astype(np.int64)]
    parents[0] = -1
    for joint, parent in enumerate(parents[1:], start=1):
        if not 0 <= parent < joint:
            raise ModelFileError(
                f"{path}: joint {joint} has parent {parent}; parents must precede children"
            )
    return parents


def check_layout(arrays: dict[str, np.ndarray], path: Path, num_joints: int | None = None) -> None:
    """Shape checks common to FLAME and MANO files; a mismatch raises :class:`ModelFileError`."""
    verts, faces = arrays["v_template"], arrays["f"]
    if verts.ndim != 2 or verts.shape[1] != 3:
        raise ModelFileError(f"{path}: v_template must be V × 3, got {verts.shape}")
    num_verts = verts.shape[0]
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.size == 0:
        raise ModelFileError(f"{path}: f must be F × 3, got {faces.shape}")
    if faces.min() < 0 or faces.max() >= num_verts:
        raise ModelFileError(f"{path}: f indexes vertices outside 0..{num_verts - 1}")
    joints = arrays["J_regressor"].shape[0]
    if num_joints is not None and joints != num_joints:
        raise ModelFileError(f"{path}: expected {num_joints} joints, J_regressor has {joints}")
    expected = {
        "shapedirs": (num_verts, 3, None),
        "posedirs": (num_verts, 3, 9 * (joints - 1)),
        "J_regressor": (joints, num_verts),
        "weights": (num_verts, joints),
    }
    for key, shape in expected.items():
        actual = arrays[key].shape
        if len(actual) != len(shape) or any(
            e is not None and a != e for a, e in zip(actual, shape, strict=True)
        ):
            wanted = " × ".join("K" if e is None else str(e) for e in shape)
            raise ModelFileError(f"{path}: {key} must be {wanted}, got {actual}")


def register_array(
    module: torch.nn.Module, name: str, value: np.ndarray, dtype: torch.dtype
) -> None:
    """Register ``value`` as a buffer of ``module`` (contiguous, in ``dtype``)."""
    module.register_buffer(name, torch.as_tensor(np.ascontiguousarray(value), dtype=dtype))


def load_skinned_model(
    module: torch.nn.Module,
    path: Path,
    dtype: torch.dtype,
    what: str,
    optional: Sequence[str] = (),
) -> dict[str, np.ndarray]:
    """Read an SMPL-family file into ``module``: the checked arrays, ``module.parents`` and the
    buffers every such model skins with (``template_vertices``, ``faces``, ``posedirs``,
    ``joint_regressor``, ``weights``). Returns the arrays for the model-specific parts."""
    keys = ["v_template", "f", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table"]
    arrays = load_model_arrays(path, keys, optional=optional, what=what)
    check_layout(arrays, path)
    module.parents = parents_from_kintree(arrays["kintree_table"], path)
    register_array(module, "template_vertices", arrays["v_template"], dtype)
    register_array(module, "faces", arrays["f"].astype(np.int64), torch.int64)
    register_array(module, "posedirs", arrays["posedirs"], dtype)
    register_array(module, "joint_regressor", arrays["J_regressor"], dtype)
    register_array(module, "weights", arrays["weights"], dtype)
    return arrays


def load_flame_landmark_embedding(path: str | Path) -> BarycentricEmbedding:
    """The 68-point (iBUG) landmark embedding on FLAME from a user's file.

    Accepts DECA's ``landmark_embedding.npy`` (a pickled dict; its ``full_lmk_faces_idx`` /
    ``full_lmk_bary_coords`` are the 68 points; torch tensors in it are skipped, never loaded)
    or an ``.npz`` / ``.pkl`` with ``lmk_faces_idx`` / ``lmk_bary_coords`` of 68 points.
    """
    path = Path(path)
    what = "FLAME landmark embedding"
    if path.suffix == ".npy":
        content = load_npy_object(path, capture=("torch",), error=ModelFileError, what=what)
    else:
        content = load_array_dict(path, error=ModelFileError, what=what)
    if not isinstance(content, dict):
        raise ModelFileError(f"{path}: expected a dict of arrays, found {type(content).__name__}")
    for faces_key, bary_key in (
        ("full_lmk_faces_idx", "full_lmk_bary_coords"),
        ("lmk_faces_idx", "lmk_bary_coords"),
    ):
        if faces_key in content and bary_key in content:
            faces = to_array(content[faces_key], label=f"{path}:{faces_key}").reshape(-1)
            bary = to_array(content[bary_key], label=f"{path}:{bary_key}").reshape(-1, 3)
            if faces.shape[0] != 68 or bary.shape[0] != 68:
                raise ModelFileError(f"{path}: {faces_key} has {faces.shape[0]} points, need 68")
            return BarycentricEmbedding(
                torch.from_numpy(faces.astype(np.int64)), torch.from_numpy(bary.astype(np.float64))
            )
    raise ModelFileError(f"{path}: no full_lmk_faces_idx/full_lmk_bary_coords (68 landmarks) in it")


class FlameHeadModel(HeadModel):
    """FLAME from the user's model file: 5023 vertices, 5 joints, 300 shape + 100 expression.

    Example:
        >>> head = FlameHeadModel("assets/generic_model.pkl")  # doctest: +SKIP
        >>> params = HeadParams(shape=torch.zeros(1, 100), expression=torch.zeros(1, 50))
        >>> head(params).vertices.shape  # doctest: +SKIP
        torch.Size([1, 5023, 3])
    """

    def __init__(
        self,
        path: str | Path,
        dtype: torch.dtype = torch.float32,
        landmark_embedding: str | Path | BarycentricEmbedding | None = None,
        num_shape_components: int = FLAME_NUM_SHAPE,
    ) -> None:
        super().__init__()
        path = Path(path)
        self.path = path
        arrays = load_skinned_model(self, path, dtype, what="FLAME model file")
        shapedirs = arrays["shapedirs"]
        total = shapedirs.shape[-1]
        if not 0 < num_shape_components <= total:
            raise ModelFileError(
                f"{path}: shapedirs has {total} components, fewer than {num_shape_components} shape"
            )
        self.num_shape = num_shape_components
        self.num_expression = total - num_shape_components
        num_joints = len(self.parents)
        self.shape_labels = [f"shape{i}" for i in range(self.num_shape)]
        self.expression_labels = [f"exp{i}" for i in range(self.num_expression)]
        self.joint_labels = (
            list(FLAME_JOINT_LABELS)
            if num_joints == len(FLAME_JOINT_LABELS)
            else [f"joint{i}" for i in range(num_joints)]
        )
        register_array(self, "shapedirs", shapedirs[..., : self.num_shape], dtype)
        register_array(self, "exprdirs", shapedirs[..., self.num_shape :], dtype)
        if isinstance(landmark_embedding, str | Path):
            landmark_embedding = load_flame_landmark_embedding(landmark_embedding)
        if landmark_embedding is not None and int(landmark_embedding.face_index.max()) >= len(
            arrays["f"]
        ):
            raise ModelFileError("the landmark embedding indexes triangles FLAME does not have")
        self.landmark_embedding = landmark_embedding

    @property
    def dtype(self) -> torch.dtype:
        return self.template_vertices.dtype

    def _coefficients(
        self, values: Tensor | None, available: int, field: str, batch: int
    ) -> Float[Tensor, "B K"] | None:
        if values is None:
            return None
        if values.shape[-1] > available:
            raise ValueError(f"{field} has {values.shape[-1]} values; this FLAME has {available}")
        return values.to(self.template_vertices).expand(batch, -1)

    def forward(self, params: HeadParams) -> MeshOutput:
        batch = params.batch_size
        like = self.template_vertices
        v_shaped = like.expand(batch, -1, -1)
        shape = self._coefficients(params.shape, self.num_shape, "shape", batch)
        if shape is not None:
            v_shaped = v_shaped + blend_shapes(shape, self.shapedirs[..., : shape.shape[-1]])
        expression = self._coefficients(params.expression, self.num_expression, "expression", batch)
        if expression is not None:
            v_shaped = v_shaped + blend_shapes(
                expression, self.exprdirs[..., : expression.shape[-1]]
            )
        local = {1: params.neck, 2: params.jaw}
        if params.eyes is not None:
            local[3], local[4] = params.eyes[:, 0], params.eyes[:, 1]
        rotations = local_rotations(batch, len(self.parents), local, like)
        canonical, joints = skin(
            v_shaped, rotations, self.posedirs, self.joint_regressor, self.parents, self.weights
        )
        vertices = rigid_transform(canonical, params.global_orient, params.transl)
        result = MeshOutput(
            vertices=vertices,
            faces=self.faces,
            joints=rigid_transform(joints, params.global_orient, params.transl),
            extras={"canonical_vertices": canonical, "canonical_joints": joints},
        )
        result.landmarks, result.landmarks68 = self.surface_landmarks(vertices)
        return result
