"""Projecting the network's 3D output into its crop through the photo's pinhole camera.

DICE projects with a weak-perspective camera ``s (x, y) + (tx, ty)``. A hand 10 cm in front of
a face 50 cm away appears 20% larger than weak perspective says, which leaves a floor of about
0.25 (normalised crop units) in L_reproj on our synthetic crops even for the ground-truth
meshes. So the camera head's ``(s, tx, ty)`` is read as the *head centre's* placement — depth
``f_crop / s`` with ``f_crop = 2 f / crop side``, image position ``(tx, ty)`` in the crop — and
points are projected through the real camera ``K`` and the crop's map (rotation, mirror).
With ``K`` unknown (no ``crop`` given) it falls back to the weak perspective.

The network's frame is the camera frame turned by the crop's in-plane rotation, mirrored when
the crop is, and centred on the head (:mod:`handface.dice.dataset`), so a point ``X`` of the
network's frame is ``turn^T M X + c`` in the camera frame, ``c`` the head centre.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from handface.dice.model import weak_perspective


@dataclass
class CropCamera:
    """A batch of crops with their cameras (tensors with batch first)."""

    K: Float[Tensor, "B 3 3"]
    centre: Float[Tensor, "B 2"]
    """Crop centre in image pixels."""
    side: Float[Tensor, " B"]
    """Crop side in image pixels."""
    angle: Float[Tensor, " B"]
    flipped: Float[Tensor, " B"]
    """1 for a mirrored crop."""

    @classmethod
    def from_batch(cls, batch: dict[str, Tensor]) -> CropCamera | None:
        if "crop_K" not in batch:
            return None
        return cls(
            batch["crop_K"], batch["crop_centre"], batch["crop_side"], batch["crop_angle"],
            batch["crop_flipped"],
        )  # fmt: skip

    def _rotation(self) -> Tensor:
        c, s = torch.cos(self.angle), torch.sin(self.angle)
        return torch.stack([torch.stack([c, s], -1), torch.stack([-s, c], -1)], -2)

    def _mirror(self) -> Tensor:
        return 1.0 - 2.0 * self.flipped  # -1 when flipped

    def to_normalised(self, pixels: Float[Tensor, "B N 2"]) -> Float[Tensor, "B N 2"]:
        local = (pixels - self.centre[:, None]) / (0.5 * self.side[:, None, None])
        local = local @ self._rotation().transpose(1, 2)
        return torch.cat([local[..., :1] * self._mirror()[:, None, None], local[..., 1:]], -1)

    def to_image(self, normalised: Float[Tensor, "B N 2"]) -> Float[Tensor, "B N 2"]:
        local = torch.cat(
            [normalised[..., :1] * self._mirror()[:, None, None], normalised[..., 1:]], -1
        )
        return local @ self._rotation() * (0.5 * self.side[:, None, None]) + self.centre[:, None]

    def focal(self) -> Float[Tensor, " B"]:
        """Normalised focal length ``2 f / side`` (``f`` the mean of fx and fy)."""
        return (self.K[:, 0, 0] + self.K[:, 1, 1]) / self.side

    def head_centre(self, camera: Float[Tensor, "B 3"]) -> Float[Tensor, "B 3"]:
        """Camera-frame position of the head centre from the camera head's ``(s, tx, ty)``."""
        depth = self.focal() / camera[:, 0].clamp_min(1e-6)
        pixel = self.to_image(camera[:, None, 1:])[:, 0]
        x = (pixel[:, 0] - self.K[:, 0, 2]) * depth / self.K[:, 0, 0]
        y = (pixel[:, 1] - self.K[:, 1, 2]) * depth / self.K[:, 1, 1]
        return torch.stack([x, y, depth], -1)

    def to_camera(
        self, points: Float[Tensor, "B N 3"], camera: Float[Tensor, "B 3"]
    ) -> Float[Tensor, "B N 3"]:
        """Points of the network's frame in the camera frame."""
        mirrored = torch.cat([points[..., :1] * self._mirror()[:, None, None], points[..., 1:]], -1)
        rotation = self._rotation()
        turn = torch.zeros(points.shape[0], 3, 3, dtype=points.dtype, device=points.device)
        turn[:, :2, :2] = rotation
        turn[:, 2, 2] = 1.0
        # network frame = turn (camera - c), turn acting on row vectors as in the dataset
        return mirrored @ turn + self.head_centre(camera)[:, None]

    def project(
        self, points: Float[Tensor, "B N 3"], camera: Float[Tensor, "B 3"]
    ) -> Float[Tensor, "B N 2"]:
        """Normalised crop coordinates of points of the network's frame."""
        cam = self.to_camera(points, camera)
        uvw = cam @ self.K.transpose(1, 2)
        pixels = uvw[..., :2] / uvw[..., 2:].clamp_min(1e-6)
        return self.to_normalised(pixels)


def project_to_crop(
    points: Float[Tensor, "B N 3"], camera: Float[Tensor, "B 3"], crop: CropCamera | None
) -> Float[Tensor, "B N 2"]:
    """:meth:`CropCamera.project` when the crop's camera is known, else weak perspective."""
    if crop is None:
        return weak_perspective(points, camera)
    return crop.project(points, camera)
