import numpy as np
import pytest
import torch

from handface.errors import InputError
from handface.models import HeadParams
from handface.models.face_areas import FACE_AREA_NAMES, load_face_areas, touched_areas

FACE = (
    "forehead", "left temple", "right temple", "left eye", "right eye", "nose",
    "left cheek", "right cheek", "mouth", "chin", "left jaw", "right jaw",
)  # fmt: skip


@pytest.fixture(scope="module")
def neutral(head_model):
    """Neutral head vertices (canonical frame) and the joint positions by name."""
    with torch.no_grad():
        out = head_model(HeadParams())
    joints = dict(zip(head_model.joint_labels, out.joints[0].numpy(), strict=True))
    return out.vertices[0].numpy(), joints


@pytest.fixture(scope="module")
def centroids(neutral):
    vertices, _ = neutral
    areas = load_face_areas()
    return {name: vertices[areas.mask(name).numpy()].mean(0) for name in FACE_AREA_NAMES}


def test_every_vertex_has_a_known_area_and_no_area_is_empty(head_model):
    areas = load_face_areas()
    labels = areas.labels.numpy()
    assert labels.shape == (head_model.num_vertices,)
    assert labels.min() >= 0 and labels.max() < len(FACE_AREA_NAMES)
    counts = np.bincount(labels, minlength=len(FACE_AREA_NAMES))
    assert (counts >= 30).all(), dict(zip(FACE_AREA_NAMES, counts, strict=True))
    assert set(FACE) <= set(areas.names) and len(areas.names) == len(set(areas.names))


def test_left_means_the_persons_left(neutral, centroids):
    # Anny's Blender bones: ".L" is the character's own left. Its eye must sit in "left eye".
    vertices, joints = neutral
    assert joints["eye.L"][0] > 0 > joints["eye.R"][0]
    areas = load_face_areas()
    nearest = np.linalg.norm(vertices - joints["eye.L"], axis=1).argmin()
    assert areas.names[int(areas.labels[nearest])] == "left eye"
    for name in ("temple", "eye", "cheek", "jaw", "ear"):
        assert centroids[f"left {name}"][0] > 0.01 and centroids[f"right {name}"][0] < -0.01
        # sided areas mirror each other (the head is symmetric): same height within 5 mm
        assert abs(centroids[f"left {name}"][2] - centroids[f"right {name}"][2]) < 0.005


def test_areas_sit_where_their_names_say(centroids):
    z = {name: centroids[name][2] for name in FACE_AREA_NAMES}
    y = {name: centroids[name][1] for name in FACE_AREA_NAMES}
    # z up: forehead above eyes above cheeks above mouth above chin; chin lowest of the face
    assert z["forehead"] > z["left eye"] > z["left cheek"] > z["mouth"] > z["chin"]
    assert z["forehead"] > z["right eye"] > z["right cheek"]
    assert min(FACE, key=z.get) == "chin"
    # the face looks towards -y: the nose is the most forward area, the ears and scalp behind
    assert min(FACE_AREA_NAMES, key=y.get) == "nose"
    assert y["left ear"] > y["left cheek"] and y["scalp"] > y["forehead"]
    for name in ("forehead", "nose", "mouth", "chin", "neck"):
        assert abs(centroids[name][0]) < 0.003, name  # midline areas


def test_each_face_area_is_one_patch(head_model):
    # Spatial coherence on the mesh: the largest connected piece of each area holds all of its
    # outer-surface vertices (eyeballs and the inside of the mouth are separate mesh parts).
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    labels = load_face_areas().labels.numpy()
    faces = head_model.faces.numpy()
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    same = labels[edges[:, 0]] == labels[edges[:, 1]]
    n = len(labels)
    graph = coo_matrix((np.ones(int(same.sum())), tuple(edges[same].T)), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    for k, name in enumerate(FACE_AREA_NAMES):
        sizes = np.bincount(component[labels == k])
        sizes = np.sort(sizes[sizes > 0])[::-1]
        assert sizes[0] >= 0.6 * sizes.sum(), (name, sizes[:5])
        assert sizes.min() >= 20, (name, sizes)


def test_stored_asset_matches_a_fresh_build(head_model):
    from handface.models.build_face_areas import build_face_areas

    fresh = build_face_areas(head_model)
    np.testing.assert_array_equal(fresh.labels.numpy(), load_face_areas().labels.numpy())


def test_touched_areas_names_and_orders_by_summed_contact():
    areas = load_face_areas()
    contact = np.zeros(len(areas.labels), dtype=np.float32)
    chin = np.flatnonzero(areas.mask("chin").numpy())
    cheek = np.flatnonzero(areas.mask("left cheek").numpy())
    nose = np.flatnonzero(areas.mask("nose").numpy())
    contact[chin[:10]] = 0.9  # sum 9
    contact[cheek[:20]] = 0.6  # sum 12: first
    contact[nose[:2]] = 1.0  # only two vertices: below min_vertices
    contact[np.flatnonzero(areas.mask("scalp").numpy())[:50]] = 0.5  # not above the threshold
    assert touched_areas(contact) == ["left cheek", "chin"]
    assert touched_areas(torch.from_numpy(contact)) == ["left cheek", "chin"]
    assert touched_areas(contact, min_vertices=2) == ["left cheek", "chin", "nose"]
    assert touched_areas(contact, threshold=0.7) == ["chin"]
    assert touched_areas(contact, threshold=0.4) == ["scalp", "left cheek", "chin"]
    assert touched_areas(np.zeros_like(contact)) == []
    contact[cheek[:20]] = np.nan  # unknown probabilities are no contact
    assert touched_areas(contact) == ["chin"]


def test_touched_areas_rejects_another_mesh():
    with pytest.raises(InputError, match="5023 values"):
        touched_areas(np.zeros(5023))


def test_synthetic_contacts_land_in_the_anchor_area(synth_dataset):
    # The synthetic data places lateral anchors from MediaPipe's subject-right landmarks and
    # records the side it used: its cheek, eye and ear contacts must be named on that side.
    import json

    meta = json.loads((synth_dataset / "meta.json").read_text())
    checked = 0
    for item in meta["items"]:
        side, _, part = item["anchor"].partition("_")
        if not item["in_contact"] or side not in ("left", "right"):
            continue
        part = part.split("_")[0]  # "cheek_side" -> "cheek"
        with np.load(synth_dataset / "labels" / f"{item['key']}.npz") as labels:
            touched = touched_areas(labels["face_contact"])
        assert f"{side} {part}" in touched, (item["key"], item["anchor"], touched)
        assert not any(name.startswith("right" if side == "left" else "left") for name in touched)
        checked += 1
    assert checked >= 2
