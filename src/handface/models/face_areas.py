"""Named face areas on the Anny head: the words a person uses for where a hand touches a face.

Every head vertex carries one label from :data:`FACE_AREA_NAMES` ("forehead", "left cheek",
"chin", ...). "left" and "right" are the *person's* own sides (in the head's canonical frame
the person's left is +x; the mesh's ``eye.L`` bone sits there). The labels are derived from
the neutral head by ``python -m handface.models.build_face_areas`` (the face regions of
:mod:`handface.models.regions` split and named with the embedded MediaPipe landmarks as
anatomical anchors) and stored in ``models/assets/face_areas.npz``.

Example:
    >>> import torch
    >>> areas = load_face_areas()
    >>> contact = torch.zeros(len(areas.labels))
    >>> contact[areas.mask("left cheek")] = 1.0
    >>> touched_areas(contact)
    ['left cheek']
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from handface.errors import InputError
from handface.models.landmarks import ASSETS

FACE_AREAS_FILE = ASSETS / "face_areas.npz"
FACE_AREA_NAMES: tuple[str, ...] = (
    "forehead", "left temple", "right temple", "left eye", "right eye", "nose",
    "left cheek", "right cheek", "mouth", "chin", "left jaw", "right jaw",
    "left ear", "right ear", "neck", "scalp",
)  # fmt: skip
"""Area names; a vertex's label is an index into this tuple. Left/right: the person's own."""


@dataclass(frozen=True)
class FaceAreas:
    """Per-vertex area labels of the head mesh (indices into ``names``)."""

    labels: Int[Tensor, " V"]
    names: tuple[str, ...] = FACE_AREA_NAMES

    def mask(self, *names: str) -> Bool[Tensor, " V"]:
        """Vertices in any of the named areas.

        Example:
            >>> int(load_face_areas().mask("nose").sum()) > 100
            True
        """
        unknown = set(names) - set(self.names)
        if unknown:
            raise ValueError(
                f"unknown face areas {sorted(unknown)}; known: {', '.join(self.names)}"
            )
        wanted = torch.tensor([self.names.index(name) for name in names])
        return torch.isin(self.labels, wanted)

    def save(self, path=FACE_AREAS_FILE) -> None:
        np.savez_compressed(
            path, labels=self.labels.numpy().astype(np.int8), names=np.array(self.names)
        )


@functools.lru_cache(maxsize=1)
def load_face_areas() -> FaceAreas:
    """The stored named areas of the Anny head (4538 vertices)."""
    if not FACE_AREAS_FILE.exists():
        raise FileNotFoundError(
            f"{FACE_AREAS_FILE} is missing; "
            "regenerate it with `python -m handface.models.build_face_areas`"
        )
    with np.load(FACE_AREAS_FILE) as data:
        if tuple(str(n) for n in data["names"]) != FACE_AREA_NAMES:
            raise ValueError(f"{FACE_AREAS_FILE} was written with other area names; regenerate it")
        return FaceAreas(labels=torch.from_numpy(data["labels"].astype(np.int64)))


def touched_areas(
    contact: Float[np.ndarray, " V"] | Float[Tensor, " V"],
    threshold: float = 0.5,
    min_vertices: int = 3,
    areas: FaceAreas | None = None,
) -> list[str]:
    """The named areas a hand touches, most touched first.

    An area counts when at least ``min_vertices`` of its vertices have a contact probability
    above ``threshold`` (one or two stray vertices on a border are noise, not a touch). Areas
    are ordered by the summed probability of those vertices, largest first (ties: the order
    of :data:`FACE_AREA_NAMES`). NaN probabilities count as 0.

    Example:
        >>> areas = load_face_areas()
        >>> contact = np.zeros(len(areas.labels))
        >>> contact[areas.mask("chin").numpy()] = 0.9
        >>> contact[np.flatnonzero(areas.mask("mouth").numpy())[:2]] = 1.0  # too few
        >>> touched_areas(contact)
        ['chin']
    """
    areas = load_face_areas() if areas is None else areas
    values = contact.detach().cpu().numpy() if isinstance(contact, Tensor) else np.asarray(contact)
    values = np.nan_to_num(values.astype(np.float64).reshape(-1), nan=0.0)
    labels = areas.labels.numpy()
    if values.shape[0] != labels.shape[0]:
        raise InputError(
            f"contact has {values.shape[0]} values but the head mesh with named areas has "
            f"{labels.shape[0]} vertices; face areas exist for the Anny head only"
        )
    above = values > threshold
    count = np.bincount(labels[above], minlength=len(areas.names))
    total = np.bincount(labels[above], weights=values[above], minlength=len(areas.names))
    hit = [k for k in range(len(areas.names)) if count[k] >= max(min_vertices, 1)]
    # A stable sort on the negated sum keeps the FACE_AREA_NAMES order among equal sums.
    hit.sort(key=lambda k: -total[k])
    return [areas.names[k] for k in hit]
