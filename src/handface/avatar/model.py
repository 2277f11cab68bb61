"""The result type of ``handface avatar``: :class:`Avatar`, and how it poses and renders.

An avatar is the person's head as the tracker fitted it (one shape; per frame pose and
expression), its appearance (UV texture and spherical-harmonics lighting,
:mod:`handface.avatar.appearance`), the hands' colours, and the hand-induced deformation (a PCA
basis, per-frame codes and their decoder, :mod:`handface.avatar.hand_deformation`). The frames'
hands are kept as posed meshes' parameters, so any frame re-renders with its deformation;
:mod:`handface.avatar.hand_poses` places hands anew and finds the deformation they cause.

Saving and loading the folder is :mod:`handface.avatar.folder`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from handface.avatar.appearance import Appearance
from handface.avatar.hand_deformation import ContactFrame, HandDeformation
from handface.errors import InputError
from handface.models import HandParams, HeadParams
from handface.render.interpolate import (
    interpolate_face_attributes_at_pixels,
    pixel_barycentrics,
    scatter_to_image,
)
from handface.render.rasterizer import Scene
from handface.render.shading import pixel_surface, sample_texture
from handface.render.spherical_harmonics import sh_irradiance

AVATAR_SCHEMA_VERSION = 1
"""Version of the avatar folder (``avatar.json``); bumped whenever a field changes meaning."""

DEFAULT_HAND_COLOR = (0.8, 0.6, 0.5)
"""Albedo of a hand the video never showed (build's default too)."""


@dataclass
class AvatarHands:
    """One hand side over the frames: where it was tracked and its pose there."""

    present: np.ndarray
    """(T,) bool."""
    global_orient: Float[np.ndarray, "T 3"]
    transl: Float[np.ndarray, "T 3"]
    articulation: Float[np.ndarray, "T A"]
    color: tuple[float, float, float]
    """The hand's albedo, fitted under the avatar's lighting."""


@dataclass
class Avatar:
    """A head avatar with hand contacts (see the module docstring)."""

    image_size: tuple[int, int]
    """(width, height) of the avatar's frames (the working resolution)."""
    K: Float[np.ndarray, "3 3"]
    """Intrinsics at ``image_size``."""
    fps: float
    head_shape: Float[np.ndarray, " S"]
    rotation: Float[np.ndarray, "T 3 3"]
    """Per frame the head's rotation (canonical -> camera)."""
    transl: Float[np.ndarray, "T 3"]
    expression: Float[np.ndarray, "T E"]
    frame_index: np.ndarray
    """(T,) the video frame each avatar frame comes from."""
    appearance: Appearance
    deformation: HandDeformation
    hands: dict[str, AvatarHands] = field(default_factory=dict)
    basis_kind: str = "subject"
    """``subject`` (simulated on this head) or ``dataset`` (``handface pca``)."""
    source: str | None = None
    figures: dict[str, Any] = field(default_factory=dict)
    head_offsets: Float[np.ndarray, "V 3"] | None = None
    """Per-vertex offsets of the canonical head learned photometrically (detail the
    parametric shape lacks), added in every frame before its hand deformation."""
    tracked_deformation: Float[np.ndarray, "T V 3"] | None = None
    """The tracker's soft-tissue deformation per frame (head canonical frame), kept by
    :func:`~handface.avatar.build.build_avatar` for comparisons; not saved in the folder."""

    def __len__(self) -> int:
        return int(self.rotation.shape[0])

    def canonical_head(
        self, head_model, t: int, deformed: bool = True, displacement: Tensor | None = None
    ) -> Float[Tensor, "V 3"]:
        """Frame ``t``'s head in its canonical frame, with its hand deformation (or with
        ``displacement`` instead, or none when ``deformed`` is false)."""
        self._check_frame(t)
        params = HeadParams(
            expression=torch.as_tensor(self.expression[t : t + 1], dtype=torch.float32),
            shape=torch.as_tensor(self.head_shape[None], dtype=torch.float32),
        )
        with torch.no_grad():
            canonical = head_model(params).extras["canonical_vertices"][0]
        if self.head_offsets is not None:
            canonical = canonical + torch.as_tensor(self.head_offsets, dtype=canonical.dtype)
        if displacement is not None:
            canonical = canonical + displacement.to(canonical.dtype)
        elif deformed:
            canonical = canonical + self.deformation.displacement(t).to(canonical.dtype)
        return canonical

    def rest_head(self, head_model) -> Float[Tensor, "V 3"]:
        """The person's head at rest (no expression, no deformation), canonical frame, with
        its learned offsets: what head.obj and head.glb hold."""
        params = HeadParams(shape=torch.as_tensor(self.head_shape[None], dtype=torch.float32))
        with torch.no_grad():
            rest = head_model(params).extras["canonical_vertices"][0]
        if self.head_offsets is not None:
            rest = rest + torch.as_tensor(self.head_offsets, dtype=rest.dtype)
        return rest

    def head_vertices(
        self, head_model, t: int, deformed: bool = True, displacement: Tensor | None = None
    ) -> Float[Tensor, "V 3"]:
        """Frame ``t``'s head in the camera frame (``deformed``, ``displacement``: as
        :meth:`canonical_head`)."""
        canonical = self.canonical_head(head_model, t, deformed, displacement)
        R = torch.as_tensor(self.rotation[t], dtype=canonical.dtype)
        return canonical @ R.T + torch.as_tensor(self.transl[t], dtype=canonical.dtype)

    def hand_meshes(self, hand_models, t: int) -> list[tuple[str, Tensor, Tensor]]:
        """Frame ``t``'s hands: (side, camera-frame vertices, faces)."""
        self._check_frame(t)
        out = []
        for side, hands in sorted(self.hands.items()):
            if not hands.present[t]:
                continue
            model = hand_models[side]
            params = HandParams(
                global_orient=torch.as_tensor(hands.global_orient[t : t + 1]).float(),
                transl=torch.as_tensor(hands.transl[t : t + 1]).float(),
                articulation=torch.as_tensor(hands.articulation[t : t + 1]).float(),
            )
            with torch.no_grad():
                out.append((side, model(params).vertices[0], model.faces))
        return out

    def contact_frames(self, head_model, hand_models) -> list[ContactFrame]:
        """Every frame's undeformed head and hands in the head's canonical frame: what
        :func:`~handface.avatar.hand_deformation.fit_hand_deformation` trains on."""
        out = []
        for t in range(len(self)):
            R = torch.as_tensor(self.rotation[t]).double()
            transl = torch.as_tensor(self.transl[t]).double()
            hands = [((vertices.double() - transl) @ R, faces)
                     for _, vertices, faces in self.hand_meshes(hand_models, t)]  # fmt: skip
            out.append(ContactFrame(self.canonical_head(head_model, t, deformed=False).double(),
                                    hands))  # fmt: skip
        return out

    def render(
        self,
        head_model,
        hand_models,
        t: int,
        *,
        deformed: bool = True,
        displacement: Tensor | None = None,
        hands: list[tuple[str, Tensor, Tensor]] | None = None,
        background: float = 0.0,
    ) -> np.ndarray:
        """Frame ``t`` re-rendered (uint8 ``(H, W, 3)``): the textured head (with its hand
        deformation unless ``deformed`` is false, or with ``displacement``) and the hands in
        their colours (the frame's own, or ``hands``: (side, camera-frame vertices, faces)),
        under the avatar's lighting, hands occluding the face."""
        head = self.head_vertices(head_model, t, deformed, displacement)
        meshes = [(head, head_model.faces)]
        colors = []
        if hands is None:
            hands = self.hand_meshes(hand_models, t)
        for side, vertices, faces in hands:
            meshes.append((vertices, faces))
            colors.append(self.hand_color(side))
        K = torch.as_tensor(self.K).float()
        return render_scene(
            self.appearance, head_model.face_uvs, meshes, colors, K, self.image_size, background
        )

    def hand_color(self, side: str) -> tuple[float, float, float]:
        """The fitted colour of the ``side`` hand; a side the video never showed takes the
        other hand's (the same skin), or a neutral skin tone when it showed none."""
        if side in self.hands:
            return self.hands[side].color
        return next((h.color for h in self.hands.values()), DEFAULT_HAND_COLOR)

    def _check_frame(self, t: int) -> None:
        if not 0 <= t < len(self):
            raise InputError(f"frame {t} is outside the avatar's {len(self)} frames")


def render_scene(
    appearance: Appearance,
    face_uvs: Float[Tensor, "F 3 2"],
    meshes: list[tuple[Tensor, Tensor]],
    hand_colors: list[tuple[float, float, float]],
    K: Float[Tensor, "3 3"],
    image_size: tuple[int, int],
    background: float = 0.0,
) -> np.ndarray:
    """The head (``meshes[0]``, textured) and hands (``meshes[1:]``, uniform ``hand_colors``)
    rasterized together and lit by ``appearance.lighting``; uint8 ``(H, W, 3)``."""
    width, height = image_size
    scene = Scene.from_meshes([(v.float(), f) for v, f in meshes])
    with torch.no_grad():
        fragments = scene.rasterize(K, height, width)
        pb = pixel_barycentrics(fragments, scene.vertices, scene.faces, K)
        _, n = pixel_surface(pb, scene.vertices, scene.faces)
        object_id = fragments.object_id.reshape(-1)[pb.pixel]
        head_faces = meshes[0][1].shape[0]
        uv_table = torch.cat(
            [face_uvs.float(), torch.zeros(scene.faces.shape[0] - head_faces, 3, 2)]
        )
        uv = interpolate_face_attributes_at_pixels(pb, uv_table)
        albedo = sample_texture(appearance.texture, uv)
        for index, color in enumerate(hand_colors, start=1):
            albedo[object_id == index] = torch.tensor(color, dtype=albedo.dtype)
        rgb = albedo * sh_irradiance(n, appearance.lighting)
        image = scatter_to_image(pb, rgb, background)
    return (image.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
