"""The avatar's hand-induced deformation: per-frame codes, a small decoder, a PCA basis.

As in the avatar paper (METHOD.md §4): every frame ``t`` has a learned code ``c_t``
(auto-decoded: no encoder, the codes are optimised), a small MLP maps it to the coefficients
``z_t`` of a PCA deformation basis ``B`` (:mod:`handface.avatar.deformation_basis`, or a
subject-specific one from :mod:`handface.avatar.subject_basis`), and the head's canonical
surface moves by ``delta_t = sum_k z_tk B_k``. The codes and the decoder are trained with the
paper's contact loss (:func:`handface.losses.avatar_contact_loss`) on points of the hands (their
surface, where ``s_hand = 0``, and points a margin inside, where ``s_hand < 0``) against the
deformed head, plus the ``|delta|^2`` regulariser: the face gives way where the hand presses in
and meets it where it rests, and stays put elsewhere. Frames without a hand near the face get
``delta = 0``: no hand, no deformation.

Each point's signed distance to the deformed head is measured to a corresponding triangle,
refreshed every ``correspondence_every`` steps on the current surface (between refreshes the
triangle is fixed and the distance is ``(p - q) . n`` for the closest point ``q`` on it and its
outward normal ``n``), so every frame's points are evaluated in one batched call.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn
from tqdm import tqdm

from handface.avatar.deformation_basis import DeformationBasis
from handface.errors import InputError
from handface.geometry.contact import CONTACT_DISTANCE, surface_signed_distance
from handface.geometry.distance import closest_point_on_triangles, point_mesh_distance
from handface.geometry.normals import face_normals, vertex_normals
from handface.losses import avatar_contact_loss, displacement_regularizer


@dataclass
class HandDeformationConfig:
    """Settings of :func:`fit_hand_deformation`."""

    code_size: int = 32
    """Length of each frame's code."""
    hidden: int = 64
    """Width of the decoder's hidden layer."""
    iterations: int = 300
    learning_rate: float = 3e-3
    coefficient_scale: float = 0.01
    """Basis coefficients per unit of decoder output: a unit-norm component concentrated on a
    few hundred vertices moves them by centimetres per unit, so the decoder works in
    hundredths and Adam's steps stay below a millimetre."""
    margin: float = CONTACT_DISTANCE
    """The contact loss's margin ``m`` (5 mm at metric scale)."""
    surface_weight: float = 1e5
    """Weight of the surface term ``mean(s_head^2)`` (metres^2: 5 mm off weighs 2.5)."""
    penetration_weight: float = 1e3
    """Weight of the penetration term ``mean(relu(-s_head - m))`` (metres)."""
    regularizer_weight: float = 3e5
    """Weight of ``mean |delta|^2`` over the head's vertices, metres^2. The paper's 5e3-3e4 is
    for its own scale. Measured on the cheek presses of tests/avatar (2.7 and 6.5 mm deep) over
    4 seeds: 3e5 leaves 0.6-0.7 and 1.7-1.9 mm of overlap with bumps of 4-5 and 14-21 mm; 1e5
    leaves 0-0.8 and 1.7-3.8 mm but its bumps vary from seed to seed, 6-17 and 16-33 mm."""
    reach: float = 0.02
    """Hand points farther than this from the undeformed head take no part (metres)."""
    correspondence_every: int = 25
    """Steps between refreshes of each point's triangle on the deformed head."""
    seed: int = 0
    """Seed of the decoder's initial weights and the codes' (the fit is deterministic)."""
    progress: bool = False
    """Show a progress bar."""


@dataclass
class ContactFrame:
    """One frame's head and hands in the head's canonical frame (undeformed)."""

    head_vertices: Float[Tensor, "V 3"]
    """The head with this frame's expression and shape, before any hand deformation."""
    hands: list[tuple[Float[Tensor, "Vh 3"], Int[Tensor, "Fh 3"]]]
    """Each hand's vertices and triangles (outward wound)."""


class CodeDecoder(nn.Module):
    """Code -> basis coefficients: ``scale * (Linear -> Softplus -> Linear)``, shifted so the
    zero code gives zero coefficients."""

    def __init__(self, code_size: int, hidden: int, components: int, scale: float) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            # no output bias: the shift below would cancel it
            nn.Linear(code_size, hidden),
            nn.Softplus(),
            nn.Linear(hidden, components, bias=False),
        )
        self.scale = scale

    def forward(self, codes: Float[Tensor, "T C"]) -> Float[Tensor, "T K"]:
        return self.scale * (self.layers(codes) - self.layers(torch.zeros_like(codes[:1])))


@dataclass
class HandDeformation:
    """Trained codes and decoder over a basis; ``active`` frames had a hand near the face."""

    codes: Float[Tensor, "T C"]
    decoder: CodeDecoder
    basis: DeformationBasis
    active: Tensor
    """(T,) bool: frames whose deformation is learned (the others are zero)."""
    history: list[dict[str, float]] = field(default_factory=list)

    def coefficients(self, codes: Tensor | None = None) -> Float[Tensor, "T K"]:
        """Basis coefficients per frame (zero on inactive frames)."""
        codes = self.codes if codes is None else codes
        return self.decoder(codes) * self.active[:, None].to(codes.dtype)

    def displacements(self) -> Float[Tensor, "T V 3"]:
        """``delta_t`` per frame (head canonical frame, metres)."""
        with torch.no_grad():
            return self.basis.apply(self.coefficients())

    def displacement(self, t: int) -> Float[Tensor, "V 3"]:
        """``delta_t`` of one frame."""
        with torch.no_grad():
            z = self.decoder(self.codes[t : t + 1]) * float(self.active[t])
            return self.basis.apply(z)[0]


@dataclass
class _Points:
    frame: Tensor  # (P,) frame index
    position: Tensor  # (P, 3) canonical
    hand_sdf: Tensor  # (P,)
    triangle: Tensor  # (P,) corresponding head triangle


def _hand_points(frame: ContactFrame, faces: Tensor, reach: float, margin: float):
    """The hand points near the head: surface vertices and points ``margin`` inside."""
    positions, sdfs = [], []
    for vertices, hand_faces in frame.hands:
        vertices = vertices.double()
        inner = vertices - margin * vertex_normals(vertices, hand_faces)
        inner_sdf = surface_signed_distance(inner, vertices, hand_faces, reach=margin * 4)
        positions += [vertices, inner]
        sdfs += [torch.zeros(len(vertices), dtype=torch.float64), inner_sdf.double()]
    if not positions:
        return None
    points = torch.cat(positions)
    near = surface_signed_distance(points, frame.head_vertices.double(), faces, reach=reach)
    keep = near.abs() < reach
    return points[keep], torch.cat(sdfs)[keep]


def fit_hand_deformation(
    frames: Sequence[ContactFrame],
    faces: Int[Tensor, "F 3"],
    basis: DeformationBasis,
    config: HandDeformationConfig | None = None,
    decoder: CodeDecoder | None = None,
) -> HandDeformation:
    """Train per-frame codes and the decoder with the contact loss (method: module docstring).

    With a trained ``decoder`` only the codes are optimised and the decoder is kept as it is:
    how an avatar finds the deformation for hand placements it was not trained on (the same
    loss, on the avatar's own decoder and basis).

    Raises:
        InputError: no frames, or a frame's head does not match the basis.
    """
    config = config or HandDeformationConfig()
    if not frames:
        raise InputError("fit_hand_deformation needs at least one frame")
    num_vertices = int(basis.components.shape[1])
    for index, frame in enumerate(frames):
        if frame.head_vertices.shape != (num_vertices, 3):
            raise InputError(
                f"frame {index}: the head has {tuple(frame.head_vertices.shape)} vertices, the "
                f"basis {num_vertices}"
            )
    heads = torch.stack([f.head_vertices.double() for f in frames])
    frame_ids, positions, hand_sdf = [], [], []
    for index, frame in enumerate(frames):
        found = _hand_points(frame, faces, config.reach, config.margin)
        if found is None or not len(found[0]):
            continue
        frame_ids.append(torch.full((len(found[0]),), index))
        positions.append(found[0])
        hand_sdf.append(found[1])
    count = len(frames)
    active = torch.zeros(count, dtype=torch.bool)
    trained = decoder is not None
    if decoder is None:
        with torch.random.fork_rng():  # seeded, without touching the caller's random state
            torch.manual_seed(config.seed)
            decoder = CodeDecoder(
                config.code_size, config.hidden, basis.num_components, config.coefficient_scale
            ).double()
    else:
        decoder = copy.deepcopy(decoder).double().requires_grad_(False)
    code_size = decoder.layers[0].in_features
    codes = torch.zeros(count, code_size, dtype=torch.float64)
    result = HandDeformation(codes, decoder, basis, active)
    if not positions:
        return result
    points = _Points(torch.cat(frame_ids), torch.cat(positions), torch.cat(hand_sdf), None)
    active[points.frame.unique()] = True
    # small random codes: identical codes would give every frame the same gradient direction
    generator = torch.Generator().manual_seed(config.seed)
    codes = (1e-2 * torch.randn(count, code_size, generator=generator,
                                dtype=torch.float64)).requires_grad_(True)  # fmt: skip
    components = basis.components.double()
    learned = [codes] if trained else [codes, *decoder.parameters()]
    optimizer = torch.optim.Adam(learned, lr=config.learning_rate)
    faces = faces.long()
    result.codes = codes
    steps = tqdm(range(config.iterations), desc="hand deformation", unit="step",
                 disable=not config.progress)  # fmt: skip
    for step in steps:
        optimizer.zero_grad()
        z = result.coefficients(codes)
        delta = torch.einsum("tk,kvc->tvc", z, components)
        deformed = heads + delta
        if step % config.correspondence_every == 0:
            points.triangle = _correspond(points, deformed.detach(), faces)
        head_sdf = _signed_to_triangles(points, deformed, faces)
        terms = avatar_contact_loss(head_sdf, points.hand_sdf, config.margin)
        regularizer = displacement_regularizer(delta[active])
        loss = (
            config.surface_weight * terms.surface
            + config.penetration_weight * terms.penetration
            + config.regularizer_weight * regularizer
        )
        loss.backward()
        optimizer.step()
        result.history.append(
            {
                "surface": float(terms.surface.detach()),
                "penetration": float(terms.penetration.detach()),
                "regularizer": float(regularizer.detach()),
            }
        )
    result.codes = codes.detach()
    return result


def _correspond(points: _Points, deformed: Tensor, faces: Tensor) -> Tensor:
    triangles = torch.empty(len(points.frame), dtype=torch.long)
    for index in points.frame.unique().tolist():
        rows = points.frame == index
        found = point_mesh_distance(points.position[rows], deformed[index], faces)
        triangles[rows] = found.face_index
    return triangles


def _signed_to_triangles(points: _Points, deformed: Tensor, faces: Tensor) -> Tensor:
    corners = deformed[points.frame[:, None], faces[points.triangle]]  # (P, 3, 3)
    closest, _ = closest_point_on_triangles(
        points.position, corners[:, 0], corners[:, 1], corners[:, 2]
    )
    normal = face_normals(corners, torch.tensor([[0, 1, 2]]))[:, 0]
    return ((points.position - closest) * normal).sum(-1)
