"""The avatar's hand deformation (codes -> decoder -> PCA basis) and the subject basis, on the
constructed cheek scene (tests/cheek_scene.py): the head in its canonical frame, the flat hand
pushed along the cheek's viewing ray."""

from __future__ import annotations

import doctest
import sys
from pathlib import Path

import pytest
import torch

from handface.avatar import subject_basis as subject_basis_module
from handface.avatar.deformation_basis import fit_basis
from handface.avatar.hand_deformation import (
    CodeDecoder,
    ContactFrame,
    HandDeformationConfig,
    fit_hand_deformation,
)
from handface.avatar.subject_basis import SubjectBasisConfig, contact_sites, subject_basis
from handface.errors import InputError
from handface.geometry.contact import penetration_from_sdf, surface_signed_distance
from handface.models.regions import load_face_regions
from handface.physics import Collider, deform

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cheek_scene import build_scene  # noqa: E402


@pytest.fixture(scope="module")
def canonical(head_model, right_hand):
    """The head's canonical vertices and a function: offset -> the hand in that frame."""
    scene = build_scene(head_model, right_hand)
    R, t = scene.head.rotation.double(), scene.head.params.transl[0].double()

    def hand_at(offset: float) -> torch.Tensor:
        return (scene.hand(offset).vertices.double() - t) @ R

    return scene.head.canonical_vertices.double(), hand_at


def _depth(head, hand, faces) -> float:
    return float(penetration_from_sdf(surface_signed_distance(hand, head, faces)).max())


def test_codes_learn_to_lift_the_face_out_of_the_pressing_hand(head_model, right_hand, canonical):
    head, hand_at = canonical
    faces, regions = head_model.faces, load_face_regions()
    # a basis that can hold these presses: the solver's deformations of the same hand at other
    # depths (the fit must find the codes, the decoder and the amounts itself)
    presses = [
        deform(head, faces, regions.stiffness, Collider(hand_at(o), right_hand.faces),
               contact_mask=regions.outer_surface).displacement.float()
        for o in (0.002, 0.004, 0.006, 0.008, 0.01)
    ]  # fmt: skip
    basis = fit_basis(torch.stack(presses), torch.zeros(0, *head.shape), 4)
    frames = [ContactFrame(head, [(hand_at(o), right_hand.faces)]) for o in (0.003, 0.007)]
    frames.append(ContactFrame(head, []))  # no hand: no deformation
    result = fit_hand_deformation(frames, faces, basis, HandDeformationConfig(iterations=150))
    assert result.active.tolist() == [True, True, False]
    delta = result.displacements()
    assert float(delta[2].abs().max()) == 0.0
    assert float(result.displacement(2).abs().max()) == 0.0
    assert torch.allclose(result.displacement(1), delta[1], atol=1e-9)
    for index, offset in enumerate((0.003, 0.007)):
        hand = hand_at(offset)
        before, after = _depth(head, hand, faces), _depth(head + delta[index], hand, faces)
        # measured: 2.68 -> 0.62 mm and 6.48 -> 1.87 mm, with bumps of 4.5 and 13.8 mm
        assert after < 0.5 * before
        assert float(delta[index].norm(dim=-1).max()) < 4.0 * before
    first, last = result.history[0], result.history[-1]
    assert last["surface"] < 0.5 * first["surface"]


def test_a_trained_decoder_stays_fixed_while_new_codes_are_found(head_model, right_hand, canonical):
    """An avatar's placements anew: only the codes move, through the decoder it was trained
    with, and they still lift the face out of the hand."""
    head, hand_at = canonical
    faces, regions = head_model.faces, load_face_regions()
    presses = [
        deform(head, faces, regions.stiffness, Collider(hand_at(o), right_hand.faces),
               contact_mask=regions.outer_surface).displacement.float()
        for o in (0.002, 0.005, 0.008)
    ]  # fmt: skip
    basis = fit_basis(torch.stack(presses), torch.zeros(0, *head.shape), 3)
    config = HandDeformationConfig(iterations=120)
    trained = fit_hand_deformation([ContactFrame(head, [(hand_at(0.006), right_hand.faces)])],
                                   faces, basis, config)  # fmt: skip
    weights = {k: v.clone() for k, v in trained.decoder.state_dict().items()}
    hand = hand_at(0.004)
    found = fit_hand_deformation([ContactFrame(head, [(hand, right_hand.faces)])], faces, basis,
                                 config, decoder=trained.decoder)  # fmt: skip
    for name, value in found.decoder.state_dict().items():
        assert torch.equal(value, weights[name].to(value.dtype)), name
    assert all(torch.equal(v, weights[k]) for k, v in trained.decoder.state_dict().items())
    before = _depth(head, hand, faces)
    assert _depth(head + found.displacements()[0], hand, faces) < 0.7 * before


def test_the_contact_loss_reaches_codes_and_decoder_and_a_zero_code_is_no_deformation():
    decoder = CodeDecoder(code_size=8, hidden=16, components=5, scale=0.01).double()
    with torch.no_grad():
        assert float(decoder(torch.zeros(3, 8, dtype=torch.float64)).abs().max()) < 1e-15
    codes = torch.randn(3, 8, dtype=torch.float64, requires_grad=True)
    decoder(codes).pow(2).sum().backward()
    assert float(codes.grad.abs().sum()) > 0
    assert all(float(p.grad.abs().sum()) > 0 for p in decoder.parameters())


def test_mismatched_heads_are_refused(head_model, canonical):
    head, _ = canonical
    basis = fit_basis(torch.randn(3, head.shape[0], 3), torch.zeros(0, head.shape[0], 3), 2)
    with pytest.raises(InputError, match="at least one frame"):
        fit_hand_deformation([], head_model.faces, basis)
    with pytest.raises(InputError, match="vertices, the basis"):
        fit_hand_deformation([ContactFrame(head[:10], [])], head_model.faces, basis)


def test_subject_basis_presses_where_the_hand_touches(head_model, right_hand, canonical):
    head, hand_at = canonical
    sites = contact_sites(head[None], [[(hand_at(0.004), right_hand.faces)]], reach=0.01)
    assert 20 < int(sites.sum()) < head.shape[0] // 2
    config = SubjectBasisConfig(presses=8, heldout=2, components=5, seed=3)
    basis = subject_basis(head.float(), head_model.faces, load_face_regions(), config, sites)
    flat = basis.components.reshape(5, -1)
    assert torch.allclose(flat @ flat.T, torch.eye(5), atol=1e-4)
    assert basis.num_train == 8 and basis.num_heldout == 2
    assert bool((basis.train_explained[1:] >= basis.train_explained[:-1] - 1e-6).all())
    # the components move the skin near the touched area: each one's largest displacement lies
    # within a few centimetres of a site
    site_points = head[sites].float()
    for component in basis.components:
        peak = head[component.norm(dim=-1).argmax()].float()
        assert float((site_points - peak).norm(dim=-1).min()) < 0.03
    same = subject_basis(head.float(), head_model.faces, load_face_regions(), config, sites)
    assert torch.equal(same.components, basis.components)  # seeded: reproducible


def test_doctests_of_subject_basis():
    result = doctest.testmod(subject_basis_module)
    assert result.attempted >= 2 and result.failed == 0
