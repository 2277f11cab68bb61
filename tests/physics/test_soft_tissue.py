"""Soft-tissue solver: non-penetration, locality, stiffness, determinism and exact small cases.

The Anny scenes press the right palm (or a ball) into the neutral head along the skin normal,
in the head's canonical frame (z up, face towards -y); each is solved once per module.
"""

from __future__ import annotations

import doctest
import time
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import trimesh
from scipy.spatial import cKDTree

from handface.errors import InputError
from handface.geometry import signed_distance
from handface.physics import Collider, DeformationResult, SoftTissueConfig, deform
from handface.physics import soft_tissue as soft_tissue_module
from handface.physics.contact import cap_holes
from handface.physics.operators import lumped_mass

MM = 1e-3
CHEEK = (-0.047, 0.085)  # (x, z) of the right cheek below the cheekbone, canonical frame
FOREHEAD = (0.0, 0.16)


def test_doctests_of_soft_tissue_module():
    result = doctest.testmod(soft_tissue_module)
    assert result.attempted >= 5 and result.failed == 0


# --- scenes ------------------------------------------------------------------------------------


@dataclass
class Head:
    vertices: torch.Tensor
    faces: torch.Tensor
    stiffness: torch.Tensor
    outer: torch.Tensor
    normals: torch.Tensor
    area: np.ndarray

    def skin_point(self, x: float, z: float) -> int:
        """Front-most vertex near (x, z)."""
        v = self.vertices
        near = ((v[:, 0] - x).abs() < 0.006) & ((v[:, 2] - z).abs() < 0.006)
        candidates = torch.nonzero(near)[:, 0]
        return int(candidates[v[candidates, 1].argmin()])

    def solve(self, hand, stiffness=None, **kwargs) -> DeformationResult:
        s = self.stiffness if stiffness is None else stiffness
        return deform(self.vertices, self.faces, s, hand, contact_mask=self.outer, **kwargs)


@dataclass
class Palm:
    vertices: torch.Tensor  # rest pose, hand frame
    faces: torch.Tensor
    surface: torch.Tensor  # a point on the palm's skin below the palm centre

    def pressed(self, head: Head, index: int, depth: float) -> Collider:
        """The palm laid on vertex ``index`` along its normal, ``depth`` into the skin, fingers
        up (the construction of ``handface.models.scene.hand_on_cheek_scene``)."""
        palm_out = head.normals[index]
        up = torch.tensor([0.0, 0.0, 1.0])
        fingers = torch.nn.functional.normalize(up - (up @ palm_out) * palm_out, dim=0)
        thumb = torch.linalg.cross(palm_out, fingers)
        rotation = torch.stack([palm_out, fingers, thumb], dim=1)
        target = head.vertices[index] - depth * palm_out
        return Collider(
            self.vertices @ rotation.T + (target - self.surface @ rotation.T), self.faces
        )


@pytest.fixture(scope="module")
def head(head_model) -> Head:
    from handface.geometry.normals import vertex_normals
    from handface.models import HeadParams
    from handface.models.regions import load_face_regions

    with torch.no_grad():
        vertices = head_model(HeadParams()).vertices[0]
    regions = load_face_regions()
    return Head(
        vertices=vertices,
        faces=head_model.faces,
        stiffness=regions.stiffness,
        outer=regions.outer_surface,
        normals=vertex_normals(vertices, head_model.faces),
        area=lumped_mass(vertices.double().numpy(), head_model.faces.numpy()),
    )


@pytest.fixture(scope="module")
def palm(right_hand) -> Palm:
    from handface.models import HandParams

    articulation = torch.zeros(1, 20)
    articulation[0, 4::4] = -0.5  # relaxed MCP joints, as in the bundled scene
    with torch.no_grad():
        rest = right_hand(HandParams(articulation=articulation))
    vertices = rest.vertices[0]
    centre = rest.keypoints[0, [0, 5, 9, 13, 17]].mean(0)
    near = (vertices[:, 1:] - centre[1:]).norm(dim=1) < 0.015
    surface = vertices[near][vertices[near, 0].argmin()]  # palm normal is -x in the hand frame
    return Palm(vertices, right_hand.faces, surface)


@pytest.fixture(scope="module")
def cheek_presses(head, palm) -> dict[int, tuple[Collider, DeformationResult]]:
    """Palm pressed 5, 10 and 15 mm into the right cheek, solved once."""
    index = head.skin_point(*CHEEK)
    out = {}
    for depth_mm in (5, 10, 15):
        hand = palm.pressed(head, index, depth_mm * MM)
        out[depth_mm] = (hand, head.solve(hand))
    return out


def ball(centre, radius: float, subdivisions: int = 3, dtype=torch.float32) -> Collider:
    mesh = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    vertices = torch.tensor(mesh.vertices, dtype=dtype) + torch.as_tensor(centre, dtype=dtype)
    return Collider(vertices, torch.tensor(mesh.faces))


def box(centre, extents, dtype=torch.float32) -> Collider:
    mesh = trimesh.creation.box(extents=extents)
    vertices = torch.tensor(mesh.vertices, dtype=dtype) + torch.as_tensor(centre, dtype=dtype)
    return Collider(vertices, torch.tensor(mesh.faces))


def plane_grid(size: float = 0.1, n: int = 51, dtype=torch.float32):
    """A flat square patch at z = 0, ``n x n`` vertices, two triangles per cell (up-facing)."""
    ticks = torch.linspace(-size / 2, size / 2, n, dtype=torch.float64)
    yy, xx = torch.meshgrid(ticks, ticks, indexing="ij")
    vertices = torch.stack([xx, yy, torch.zeros_like(xx)], -1).reshape(-1, 3).to(dtype)
    i = torch.arange(n - 1)
    a = (i[:, None] * n + i[None, :]).reshape(-1)
    b, c, d = a + 1, a + n, a + n + 1
    faces = torch.cat([torch.stack([a, b, d], 1), torch.stack([a, d, c], 1)])
    return vertices, faces


def surface_sdf(points: torch.Tensor, hand: Collider) -> torch.Tensor:
    return signed_distance(points.double(), hand.vertices.double(), hand.faces).sdf


# --- Anny head and hand ------------------------------------------------------------------------


@pytest.mark.parametrize("depth_mm", [5, 15])
def test_no_face_vertex_stays_inside_the_hand(head, cheek_presses, depth_mm):
    hand, result = cheek_presses[depth_mm]
    before = surface_sdf(head.vertices, hand)[head.outer]
    after = surface_sdf(head.vertices + result.displacement, hand)[head.outer]
    assert -before.min() > depth_mm * MM  # the scene does press that deep
    assert result.max_penetration_before == pytest.approx(-float(before.min()), rel=1e-6)
    assert -after.min() < 0.5 * MM
    assert result.max_penetration_after < 0.5 * MM
    # The skin leaves by the side of the hand that presses on it, not out of the back of a
    # finger: nothing moves much farther than the deepest penetration.
    assert result.displacement.norm(dim=1).max() < 2 * result.max_penetration_before


def test_displacement_vanishes_far_from_the_contact(head, cheek_presses):
    hand, result = cheek_presses[10]
    deformed = head.vertices + result.displacement
    contact = (surface_sdf(deformed, hand).abs() < 5 * MM) & head.outer
    distance = cKDTree(deformed[contact].numpy()).query(deformed.numpy())[0]
    far = torch.from_numpy(distance > 0.04)
    magnitude = result.displacement.norm(dim=1)
    assert (far & result.region).sum() > 100  # the solve region reaches past 4 cm
    assert magnitude.max() > 10 * MM
    assert magnitude[far].max() < 0.1 * MM
    # ... and it is smooth: within 1-2 cm of the contact the dent is still there.
    ring = torch.from_numpy((distance > 0.005) & (distance < 0.015)) & head.outer
    assert magnitude[ring].max() > 1 * MM


def _spread(head: Head, hand: Collider, result: DeformationResult) -> float:
    """Displaced volume (m^3) of the skin not touching the hand: how far a dent spreads."""
    deformed = head.vertices + result.displacement
    away = (surface_sdf(deformed, hand) > 2 * MM).numpy()
    magnitude = result.displacement.norm(dim=1).double().numpy()
    return float(np.sum(head.area[away] * magnitude[away]))


def test_soft_tissue_spreads_a_press_farther_than_stiff(head, palm, cheek_presses):
    hand, _ = cheek_presses[10]
    soft = head.solve(hand, torch.zeros_like(head.stiffness))
    stiff = head.solve(hand, torch.ones_like(head.stiffness))
    # The hand is rigid: both remove the penetration...
    assert soft.max_penetration_after < 0.5 * MM and stiff.max_penetration_after < 0.5 * MM
    # ... but the soft tissue carries the dent much farther around the contact.
    assert _spread(head, hand, soft) > 3 * _spread(head, hand, stiff)
    soft_area = head.area[(soft.displacement.norm(dim=1) > 1 * MM).numpy()].sum()
    stiff_area = head.area[(stiff.displacement.norm(dim=1) > 1 * MM).numpy()].sum()
    assert soft_area > 1.3 * stiff_area


def test_soft_cheek_moves_more_than_the_stiff_forehead(head):
    """Same ball, same press depth along the normal, the stored stiffness map."""
    spreads = {}
    for name, point in {"cheek": CHEEK, "forehead": FOREHEAD}.items():
        index = head.skin_point(*point)
        centre = head.vertices[index] + (0.02 - 8 * MM) * head.normals[index]
        hand = ball(centre, 0.02)
        result = head.solve(hand)
        assert result.max_penetration_after < 0.5 * MM
        spreads[name] = _spread(head, hand, result)
    assert (
        head.stiffness[head.skin_point(*CHEEK)] < 0.5 < head.stiffness[head.skin_point(*FOREHEAD)]
    )
    assert spreads["cheek"] > 1.5 * spreads["forehead"]


def test_deterministic(head, cheek_presses):
    hand, first = cheek_presses[10]
    second = head.solve(hand)
    assert torch.equal(first.displacement, second.displacement)
    assert first.energy_history == second.energy_history


@pytest.mark.parametrize("depth_mm", [5, 10, 15])
def test_energy_decreases_monotonically(cheek_presses, depth_mm):
    _, result = cheek_presses[depth_mm]
    energy = np.array(result.energy_history)
    assert len(energy) == result.iterations + 1 >= 2
    assert np.all(np.diff(energy) <= 0)
    assert energy[-1] < 1e-3 * energy[0]  # the initial penetration dominates the energy


def test_only_the_region_moves(head, cheek_presses):
    _, result = cheek_presses[10]
    assert result.region.dtype == torch.bool and result.region.shape == (head.vertices.shape[0],)
    assert torch.all(result.displacement[~result.region] == 0)
    assert 0 < int(result.region.sum()) < head.vertices.shape[0]


def test_time_per_call_is_reported(head, cheek_presses, capsys):
    """Not a speed assertion (see ``handface bench``): prints the time of the 10 mm cheek press."""
    hand, reference = cheek_presses[10]
    head.solve(hand)  # warm caches (hand tree grouping)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        head.solve(hand)
        times.append(time.perf_counter() - start)
    with capsys.disabled():
        print(
            f"\n[soft tissue] 10 mm palm press on the cheek: {min(times) * 1e3:.0f} ms/call, "
            f"{reference.iterations} iterations, {int(reference.region.sum())} free vertices, "
            f"{torch.get_num_threads()} torch threads"
        )
    assert reference.iterations >= 1


# --- small exact cases -------------------------------------------------------------------------


def test_no_penetration_gives_zero_displacement():
    vertices, faces = plane_grid()
    hand = box([0.0, 0.0, 0.011], [0.02, 0.02, 0.02])  # 1 mm above the patch
    result = deform(vertices, faces, torch.full((vertices.shape[0],), 0.5), hand)
    assert torch.equal(result.displacement, torch.zeros_like(vertices))
    assert not result.region.any()
    assert result.iterations == 0 and result.max_penetration_before == 0.0


@pytest.mark.parametrize("flip", [False, True], ids=["up-facing", "down-facing"])
def test_flat_patch_dent_centre_moves_by_the_press_depth(flip):
    vertices, faces = plane_grid()
    if flip:  # the solver must not depend on the winding of the skin
        faces = faces.flip(1)
    depth = 5 * MM
    config = SoftTissueConfig()
    # 21 mm wide: the box's sides pass between grid vertices (2 mm apart), so the vertices
    # under its edges are inside it, nearer its sides than its bottom, and must still go down.
    hand = box([0.0, 0.0, 0.01 - depth], [0.021, 0.021, 0.02])
    result = deform(vertices, faces, torch.full((vertices.shape[0],), 0.5), hand, config)
    centre = int((vertices[:, :2].norm(dim=1)).argmin())
    d = result.displacement[centre]
    assert float(d[2]) == pytest.approx(-(depth + config.margin), abs=0.02 * MM)
    assert float(d[:2].norm()) < 0.02 * MM
    assert result.max_penetration_before == pytest.approx(depth, abs=1e-6)
    assert result.max_penetration_after == 0.0
    # Nothing is pushed up, and the dent fades with distance from the box.
    assert float(result.displacement[:, 2].max()) < 0.01 * MM
    under = vertices[:, :2].abs().max(dim=1).values < 0.0105
    torch.testing.assert_close(
        result.displacement[under, 2],
        torch.full((int(under.sum()),), -(depth + config.margin)),
        atol=0.02 * MM,
        rtol=0,
    )
    ring = (vertices[:, :2].abs().max(dim=1).values - 0.014).abs() < 1e-4
    far = vertices[:, :2].norm(dim=1) > 0.045
    assert result.displacement[ring, 2].max() < -1 * MM
    assert result.displacement[far, 2].abs().max() < 0.01 * MM


def test_flat_patch_winding_does_not_change_the_result():
    vertices, faces = plane_grid(n=31)
    hand = ball([0.005, -0.003, 0.01 - 4 * MM], 0.01)
    stiffness = torch.linspace(0, 1, vertices.shape[0])
    up = deform(vertices, faces, stiffness, hand)
    down = deform(vertices, faces.flip(1), stiffness, hand)
    torch.testing.assert_close(up.displacement, down.displacement, atol=1e-7, rtol=0)


def test_float64_in_float64_out_and_matches_float32():
    vertices, faces = plane_grid(n=31)
    stiffness = torch.full((vertices.shape[0],), 0.3)
    hand32 = ball([0.0, 0.0, 0.01 - 3 * MM], 0.01)
    hand64 = Collider(hand32.vertices.double(), hand32.faces)
    r32 = deform(vertices, faces, stiffness, hand32)
    r64 = deform(vertices.double(), faces, stiffness.double(), hand64)
    assert r32.displacement.dtype == torch.float32
    assert r64.displacement.dtype == torch.float64
    torch.testing.assert_close(r64.displacement.float(), r32.displacement, atol=1e-5, rtol=0)


def test_two_colliders_press_two_places():
    vertices, faces = plane_grid()
    depth = 3 * MM
    hands = [ball([x, 0.0, 0.01 - depth], 0.01) for x in (-0.025, 0.025)]
    result = deform(vertices, faces, torch.full((vertices.shape[0],), 0.2), hands)
    deformed = vertices + result.displacement
    for hand in hands:
        assert float(surface_sdf(deformed, hand).min()) > -0.05 * MM
        below = int((vertices[:, :2] - hand.vertices.mean(0)[:2]).norm(dim=1).argmin())
        assert -float(result.displacement[below, 2]) > depth - 0.5 * MM  # polyhedral ball
    between = int(vertices[:, :2].norm(dim=1).argmin())
    assert result.displacement[between].norm() < 0.5 * depth
    single = deform(vertices, faces, torch.full((vertices.shape[0],), 0.2), hands[0])
    assert result.region.sum() > single.region.sum()


def test_rejects_mismatched_stiffness():
    vertices, faces = plane_grid(n=5)
    with pytest.raises(InputError, match="stiffness"):
        deform(vertices, faces, torch.zeros(3), box([0, 0, 0], [0.01, 0.01, 0.01]))


def test_cap_holes_closes_an_open_mesh():
    sphere = trimesh.creation.icosphere(subdivisions=2)
    keep = sphere.triangles_center[:, 2] < 0.5  # cut the top off: one boundary loop
    vertices, faces = cap_holes(np.asarray(sphere.vertices), np.asarray(sphere.faces)[keep])
    capped = trimesh.Trimesh(vertices, faces, process=False)
    assert capped.is_watertight and capped.is_winding_consistent and capped.volume > 0
    closed_v, closed_f = np.asarray(sphere.vertices), np.asarray(sphere.faces)
    assert cap_holes(closed_v, closed_f)[1].shape == closed_f.shape


def test_a_warm_start_from_the_previous_frame_saves_iterations(head, cheek_presses):
    hand10, cold = cheek_presses[10]
    hand15, _ = cheek_presses[15]
    # the next frame presses 5 mm deeper: starting from this frame's D starts at a lower
    # energy and ends at least as low, with the penetration resolved
    reference = head.solve(hand15)
    warm = head.solve(hand15, initial=cold.displacement)
    assert warm.energy_history[0] < 0.5 * reference.energy_history[0]
    assert warm.energy_history[-1] <= reference.energy_history[-1] * (1 + 1e-9)
    assert warm.max_penetration_after < 1e-4
    # the same frame again (a hand at rest) is solved at once, to the same dent
    again = head.solve(hand10, initial=cold.displacement)
    assert again.iterations == 0 < cold.iterations
    assert torch.allclose(again.displacement, cold.displacement)
    # a start worse than none (a dent on the wrong side) is ignored: the same as a cold start
    wrong = head.solve(hand10, initial=-5.0 * cold.displacement)
    assert torch.equal(wrong.displacement, cold.displacement)
    with pytest.raises(InputError, match="one displacement per vertex"):
        head.solve(hand10, initial=cold.displacement[:5])
