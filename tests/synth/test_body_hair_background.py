"""The person around the synthetic head: neck and shoulders, hair, cluttered backgrounds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from handface.models import HeadParams
from handface.models.scene import head_rotation
from handface.synth.appearance import clutter
from handface.synth.body import body_mesh, clothing_colours, pose_body
from handface.synth.hair import HAIRLINE_FADE, hair_shell
from handface.synth.placement import outward_normals


@pytest.fixture(scope="module")
def person(head_model):
    shape = torch.tensor([0.3, 0.6, 0.5, 0.7, 0.4, 0.5, 0.2, 0.3, 0.5])
    head = head_model(HeadParams(shape=shape[None])).vertices[0]
    return shape, head, body_mesh(shape, head)


def test_body_joins_the_head_at_the_neck(person):
    _, head, body = person
    seam = body.head_weight == 1.0
    assert int(seam.sum()) > 20
    # the seam ring is the head's own neck edge: within 2 mm of head vertices
    assert float(torch.cdist(body.vertices[seam], head).min(dim=1).values.max()) < 0.002
    # shoulders: wider than the head, below it
    assert float(body.vertices[:, 0].max() - body.vertices[:, 0].min()) > 0.3
    assert float(body.vertices[:, 2].min()) < float(head[:, 2].min()) - 0.15
    assert int(body.faces.max()) == body.vertices.shape[0] - 1 and int(body.faces.min()) == 0


def test_pose_body_blends_head_and_torso(person):
    _, _, body = person
    rotation = head_rotation(20.0, 10.0, 0.0)
    translation = torch.tensor([0.01, -0.02, 0.6])
    same = pose_body(body, rotation, translation, rotation)
    assert torch.allclose(same, body.vertices @ rotation.T + translation, atol=1e-6)
    torso = head_rotation(5.0, 0.0, 0.0)
    posed = pose_body(body, rotation, translation, torso)
    seam = body.head_weight == 1.0
    assert torch.allclose(posed[seam], same[seam], atol=1e-6)  # the neck follows the head
    low = body.head_weight == 0.0
    expected = (body.vertices[low] - body.pivot) @ torso.T + body.pivot @ rotation.T + translation
    assert torch.allclose(posed[low], expected, atol=1e-6)  # the shoulders follow the torso


def test_clothes_and_collar(person):
    _, _, body = person
    colours = clothing_colours(body, (0.8, 0.6, 0.5), (0.1, 0.2, 0.9), 0.04, "plain", 3)
    neck = body.height_below_seam < 0.04
    assert torch.allclose(colours[neck], torch.tensor([0.8, 0.6, 0.5]).expand(int(neck.sum()), 3))
    assert torch.allclose(
        colours[~neck], torch.tensor([0.1, 0.2, 0.9]).expand(int((~neck).sum()), 3)
    )
    striped = clothing_colours(body, (0.8, 0.6, 0.5), (0.1, 0.2, 0.9), 0.04, "stripes", 3)
    assert 0 < int((striped[~neck] != colours[~neck]).any(dim=1).sum()) < int((~neck).sum())


def test_hair_shell_thins_to_the_hairline(person, head_model):
    from handface.models.regions import load_face_regions

    _, head, _ = person
    scalp = load_face_regions().mask("scalp")
    normals = outward_normals(head, head_model.faces)
    shell, faces, share = hair_shell(head, head_model.faces, normals, scalp, 0.02)
    assert int(faces.max()) < shell.shape[0] and share.shape == (shell.shape[0],)
    assert float(share.max()) == 1.0 and float(share.min()) < 0.05
    offset = torch.cdist(shell, head).min(dim=1).values
    # the crown stands ~2 cm off the skull, the hairline lies on it
    assert float(offset[share == 1.0].median()) > 0.012
    assert float(offset[share < 0.05].max()) < 0.002
    assert HAIRLINE_FADE > 0


def test_clutter_is_busy_and_deterministic():
    a = clutter(np.random.default_rng(5), 96)
    b = clutter(np.random.default_rng(5), 96)
    c = clutter(np.random.default_rng(6), 96)
    assert a.shape == (96, 96, 3) and np.array_equal(a, b) and not np.array_equal(a, c)
    assert 0.0 <= a.min() and a.max() <= 1.0
    # many regions: strong local gradients in a good share of the picture
    edges = np.abs(np.diff(a.mean(axis=2), axis=1)) > 0.02
    assert edges.mean() > 0.05 or a.std() > 0.1
