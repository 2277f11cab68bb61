"""A deformation basis for one person: presses simulated on their own head, then PCA.

The avatar paper learns its 30-component basis from a dataset of many people's deformations
(Decaf); :mod:`handface.avatar.deformation_basis` does the same on ``handface synth`` data.
Beyond the paper, the soft-tissue solver can make a basis for the very head being animated:
rigid fingertip-, finger- and knuckle-sized balls are pressed into it at sampled points of the
face skin, lips and nose, along the skin's inward normal, each by a sampled depth, and the
solver's displacements (head canonical frame) are the training data. Its components then
describe how *this* face gives way, stiffness map included.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import trimesh
from jaxtyping import Bool, Float, Int
from torch import Tensor
from tqdm import tqdm

from handface.avatar.deformation_basis import MIN_DEFORMATION, DeformationBasis, fit_basis
from handface.errors import InputError
from handface.geometry.distance import point_mesh_distance
from handface.geometry.normals import vertex_normals
from handface.models.regions import FaceRegions
from handface.physics import Collider, deform

PRESS_REGIONS = ("face_skin", "lips", "nose")
"""Where presses are sampled: the skin hands touch (not the scalp, ears or neck)."""


@dataclass
class SubjectBasisConfig:
    """Settings of :func:`subject_basis`."""

    presses: int = 96
    """Simulated presses for training the basis (one soft-tissue solve each)."""
    heldout: int = 16
    """Further presses, never trained on, that measure the basis's explained energy."""
    components: int = 30
    """Basis size (the paper's 30)."""
    depth_mm: tuple[float, float] = (2.0, 8.0)
    """Range of press depths (uniform), millimetres into the undeformed skin."""
    radii_mm: tuple[float, ...] = (7.0, 10.0, 16.0)
    """Radii of the pressing balls: a fingertip, a finger pad, a knuckle (chosen uniformly)."""
    seed: int = 0
    progress: bool = False
    """Show a progress bar."""


def simulate_presses(
    canonical_vertices: Float[Tensor, "V 3"],
    faces: Int[Tensor, "F 3"],
    regions: FaceRegions,
    count: int,
    config: SubjectBasisConfig,
    generator: np.random.Generator,
    sites: Bool[Tensor, " V"] | None = None,
) -> Float[Tensor, "N V 3"]:
    """``count`` deformations of the head, each by one ball pressed in (see the module) at a
    vertex of ``sites`` (default: the face skin, lips and nose); presses the solver leaves
    without any displacement are dropped."""
    vertices = canonical_vertices.detach().double()
    normals = vertex_normals(vertices, faces)
    allowed = regions.outer_surface if sites is None else sites & regions.outer_surface
    if sites is None:
        allowed = allowed & regions.mask(*PRESS_REGIONS)
    sites = torch.nonzero(allowed).flatten()
    if sites.numel() == 0:
        raise InputError("no outer skin vertex to press (face skin, lips, nose or the sites)")
    balls = {r: trimesh.creation.icosphere(subdivisions=2, radius=r / 1000.0)
             for r in config.radii_mm}  # fmt: skip
    out = []
    for _ in tqdm(range(count), desc="subject basis", unit="press", disable=not config.progress):
        site = int(sites[generator.integers(sites.numel())])
        radius = float(generator.choice(config.radii_mm))
        depth = generator.uniform(*config.depth_mm) / 1000.0
        ball = balls[radius]
        centre = vertices[site] + normals[site] * (radius / 1000.0 - depth)
        collider = Collider(
            torch.as_tensor(ball.vertices, dtype=torch.float64) + centre,
            torch.as_tensor(ball.faces, dtype=torch.int64),
        )
        result = deform(vertices, faces, regions.stiffness, collider,
                        contact_mask=regions.outer_surface)  # fmt: skip
        if float(result.displacement.abs().max()) >= MIN_DEFORMATION:
            out.append(result.displacement.float())
    if not out:
        return canonical_vertices.new_zeros(0, *canonical_vertices.shape)
    return torch.stack(out)


def contact_sites(
    head_vertices: Float[Tensor, "T V 3"],
    hands: list[list[tuple[Float[Tensor, "Vh 3"], Int[Tensor, "Fh 3"]]]],
    reach: float = 0.02,
) -> Bool[Tensor, " V"]:
    """Head vertices within ``reach`` of a hand's surface in any frame (``hands[t]``: frame
    ``t``'s hand meshes, same frame as ``head_vertices[t]``): where to press for an avatar.

    Example:
        >>> head = torch.tensor([[[0.0, 0, 0], [0.1, 0, 0]]])
        >>> tri = (torch.tensor([[0.0, 0, 0.01], [0.01, 0, 0.01], [0, 0.01, 0.01]]),
        ...        torch.tensor([[0, 1, 2]]))
        >>> contact_sites(head, [[tri]]).tolist()
        [True, False]
    """
    sites = torch.zeros(head_vertices.shape[1], dtype=torch.bool)
    for frame_head, frame_hands in zip(head_vertices, hands, strict=True):
        for vertices, hand_faces in frame_hands:
            distance = point_mesh_distance(frame_head.double(), vertices.double(),
                                           hand_faces).distance  # fmt: skip
            sites |= distance < reach
    return sites


def subject_basis(
    canonical_vertices: Float[Tensor, "V 3"],
    faces: Int[Tensor, "F 3"],
    regions: FaceRegions,
    config: SubjectBasisConfig | None = None,
    sites: Bool[Tensor, " V"] | None = None,
) -> DeformationBasis:
    """The PCA basis of presses simulated on this head (method: module docstring).

    A linear basis of 30 components cannot hold every local press over a whole face (its
    held-out explained energy stays near half with presses everywhere), so an avatar presses
    where its video's hands touched: ``sites`` (a vertex mask, e.g. the face vertices in
    contact in any tracked frame, grown by a few centimetres) restricts the presses; the
    default is the whole face skin, lips and nose.

    Example:
        >>> from handface.models import AnnyHeadModel, HeadParams
        >>> from handface.models.regions import load_face_regions
        >>> head = AnnyHeadModel()
        >>> rest = head(HeadParams()).extras["canonical_vertices"][0]
        >>> basis = subject_basis(rest, head.faces, load_face_regions(),
        ...                       SubjectBasisConfig(presses=6, heldout=2, components=4))
        >>> basis.num_components, basis.components.shape[1:]
        (4, torch.Size([4538, 3]))
    """
    config = config or SubjectBasisConfig()
    if config.presses < 1 or config.components < 1:
        raise InputError("a subject basis needs at least one press and one component")
    if regions.labels.shape[0] != canonical_vertices.shape[0]:
        raise InputError(
            f"the face regions have {regions.labels.shape[0]} vertices, the head "
            f"{canonical_vertices.shape[0]}"
        )
    generator = np.random.default_rng(config.seed)
    train = simulate_presses(canonical_vertices, faces, regions, config.presses, config,
                             generator, sites)  # fmt: skip
    heldout = simulate_presses(canonical_vertices, faces, regions, config.heldout, config,
                               generator, sites)  # fmt: skip
    return fit_basis(train, heldout, config.components)
