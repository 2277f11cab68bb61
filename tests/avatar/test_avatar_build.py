"""`handface avatar` end to end on the 8-frame synthetic clip, and `handface avatar render`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image

from handface.avatar.folder import FILES, load_avatar

FAST = ["--fps", "30", "--appearance-steps", "80", "--photometric-steps", "60", "--presses", "8",
        "--deformation-steps", "30"]  # fmt: skip


def _handface(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "handface", *args], capture_output=True,
                          text=True, timeout=600)  # fmt: skip


@pytest.fixture(scope="module")
def built(clip, tmp_path_factory):
    out = tmp_path_factory.mktemp("avatar") / "person"
    result = _handface("avatar", str(clip / "images"), "--out", str(out), *FAST)
    assert result.returncode == 0, result.stderr[-2000:]
    return out, result


def test_the_avatar_folder_is_complete_and_describes_itself(built, clip):
    out, result = built
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    meta = json.loads((out / "avatar.json").read_text())
    assert meta["schema_version"] == 1 and meta["basis"]["kind"] == "subject"
    assert meta["frames"] == 8 and meta["image_size"] == [256, 256]
    figures = meta["figures"]
    assert figures["frames_with_hand_near_face"] >= 1  # the clip's press
    assert 0.0 < figures["photometric_l1"] < 0.2
    assert 0.0 < figures["pose_correction_deg_median"] < 10.0
    assert f"avatar of {meta['frames']} frames" in result.stdout
    assert "Traceback" not in result.stderr


def test_head_obj_opens_with_its_texture(built):
    out, _ = built
    mesh = trimesh.load(out / "head.obj", process=False)
    # trimesh splits the vertices on the UV seams (measured 4538 -> 4746)
    assert mesh.faces.shape == (9014, 3) and 4538 <= len(mesh.vertices) < 6000
    assert mesh.visual.uv is not None and mesh.visual.material.image is not None
    texture = np.asarray(Image.open(out / "texture.png"))
    assert texture.shape[2] == 3 and texture.std() > 5  # not a flat fill


def test_load_round_trip_and_deterministic_render(built, clip, head_model):
    from handface.models import AnnyHandModel

    out, _ = built
    avatar = load_avatar(out)
    assert len(avatar) == 8
    assert avatar.deformation.codes.shape[0] == 8
    hands = {side: AnnyHandModel(side) for side in avatar.hands}
    first = avatar.render(head_model, hands, 3)
    assert np.array_equal(first, avatar.render(head_model, hands, 3))
    # the re-render matches the photo where the head is (the mesh covers some hair and
    # background at its border: measured 19.3 dB on this frame, 14-20 dB over the clip)
    photo = np.asarray(Image.open(sorted((clip / "images").glob("*.png"))[3]).convert("RGB"))
    head = torch.as_tensor(avatar.head_vertices(head_model, 3)).float()
    from handface.render.rasterizer import rasterize

    covered = rasterize(head, head_model.faces, torch.as_tensor(avatar.K).float(), 256, 256).mask
    error = (first[covered.numpy()].astype(float) - photo[covered.numpy()]) / 255.0
    psnr = -10 * np.log10(np.mean(error**2))
    assert psnr > 17.0
    undeformed = avatar.render(head_model, hands, 3, deformed=False)
    assert undeformed.shape == first.shape


def test_render_writes_a_video_of_every_frame(built, tmp_path):
    import av

    out, _ = built
    video = tmp_path / "render.mp4"
    result = _handface("avatar", "render", str(out), "--out", str(video))
    assert result.returncode == 0, result.stderr[-2000:]
    with av.open(str(video)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == 8


def test_the_folder_head_glb_is_the_textured_head_upright(built):
    out, _ = built
    scene = trimesh.load(out / "head.glb", process=False)
    (mesh,) = scene.geometry.values()
    assert mesh.faces.shape == (9014, 3) and mesh.visual.uv is not None
    assert mesh.visual.material.baseColorTexture is not None
    extent = mesh.vertices.max(0) - mesh.vertices.min(0)
    assert extent[1] == extent.max()  # glTF: the head's height is along Y


def _decoded(video) -> list[np.ndarray]:
    import av

    with av.open(str(video)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def test_hand_poses_in_the_head_frame_give_back_the_frames_hands(built, head_model):
    from handface.avatar.hand_poses import avatar_hand_poses, placed_hands
    from handface.models import AnnyHandModel

    out, _ = built
    avatar = load_avatar(out)
    hands = {side: AnnyHandModel(side) for side in ("left", "right")}
    poses = avatar_hand_poses(avatar)
    assert len(poses) == len(avatar) and any(poses)
    for t, pose in enumerate(poses):
        own = avatar.hand_meshes(hands, t)
        placed = placed_hands(avatar, hands, t, pose)
        assert [side for side, _, _ in placed] == [side for side, _, _ in own]
        for (_, a, _), (_, b, _) in zip(placed, own, strict=True):
            assert (a - b).abs().max() < 1e-5  # metres


def test_a_hand_placed_into_the_face_deforms_it_and_one_placed_away_does_not(built, head_model):
    """The flat hand of the cheek scene (tests/cheek_scene.py) pressed into the avatar's right
    cheek: a placement no frame had, independent of where tracking put the clip's hands. (The
    contact-loss placement is tested with a basis that covers its press in
    tests/avatar/test_hand_deformation.py; this avatar's basis was pressed where the clip's
    hands were, so it finds nothing here.)"""
    from handface.avatar.hand_poses import placement_deformation
    from handface.geometry.contact import penetration_depth
    from handface.models import AnnyHandModel

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from cheek_scene import build_scene  # noqa: E402

    out, _ = built
    avatar = load_avatar(out)
    hand_model = AnnyHandModel("right")
    scene = build_scene(head_model, hand_model)
    R_scene, t_scene = scene.head.rotation.double(), scene.head.params.transl[0].double()
    t = 0
    R, transl = (torch.as_tensor(a[t]).double() for a in (avatar.rotation, avatar.transl))

    def placed(offset: float):
        """The cheek scene's hand, moved from its head's frame into avatar frame t's camera."""
        canonical = (scene.hand(offset).vertices.double() - t_scene) @ R_scene
        return [("right", canonical @ R.T + transl, hand_model.faces)]

    undeformed = avatar.head_vertices(head_model, t, deformed=False).double()

    def depths(head, hands):
        faces = head_model.faces
        return torch.cat([penetration_depth(v.double(), head, faces) for _, v, _ in hands])

    # the avatar's head is not the average head: push until the hand is 3 mm or more inside
    offset = 0.0
    while float(depths(undeformed, placed(offset)).max()) < 0.003 and offset < 0.03:
        offset += 0.001
    pressed_in, away = placed(offset), placed(-0.08)
    before = depths(undeformed, pressed_in)
    assert 0.003 <= float(before.max()) < 0.012
    pressed, moved_away = placement_deformation(avatar, head_model, [t, t], [pressed_in, away])
    assert float(moved_away.abs().max()) == 0.0  # no hand within reach: no deformation
    head = avatar.head_vertices(head_model, t, displacement=pressed.float()).double()
    # the solver pushes the cheek out of the hand as far as the tissue allows (measured: 3.1 mm
    # deep -> 1.3 mm, the skin moved up to 3.2 mm)
    assert float(depths(head, pressed_in).max()) < 0.5 * float(before.max())


def test_render_with_hand_poses_and_export_glb(built, tmp_path):
    out, _ = built
    poses = tmp_path / "hands.json"
    result = _handface("avatar", "hands", str(out), "--out", str(poses))
    assert result.returncode == 0, result.stderr[-2000:]
    document = json.loads(poses.read_text())
    assert len(document["poses"]) == 8
    # every frame gets the first frame-with-hands' hands, moved 3 cm to the side
    first = next(p for p in document["poses"] if p)
    for hand in first.values():
        hand["transl"][0] += 0.03
    document["poses"] = [first]
    poses.write_text(json.dumps(document))
    plain, placed = tmp_path / "plain.mp4", tmp_path / "placed.mp4"
    for video, extra in ((plain, []), (placed, ["--hand-pose", str(poses)])):
        result = _handface("avatar", "render", str(out), "--out", str(video), "--end", "3", *extra)
        assert result.returncode == 0, result.stderr[-2000:]
    a, b = _decoded(plain), _decoded(placed)
    assert len(a) == len(b) == 3
    assert np.abs(a[0].astype(int) - b[0].astype(int)).mean() > 1.0  # the hands moved

    expressions = tmp_path / "expressions.json"
    expressions.write_text(json.dumps({"format": "handface-expressions", "version": 1,
                                       "expressions": [{"jawOpen": 1.0}]}))  # fmt: skip
    opened = tmp_path / "opened.mp4"
    result = _handface("avatar", "render", str(out), "--out", str(opened), "--end", "3",
                       "--expression", str(expressions))  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    c = _decoded(opened)
    changed = np.abs(a[0].astype(int) - c[0].astype(int)).sum(-1) > 30
    assert 20 < int(changed.sum()) < 0.2 * changed.size  # the mouth opened, nothing else

    glb = tmp_path / "frame.glb"
    result = _handface("avatar", "export", str(out), "--out", str(glb), "--frame", "3")
    assert result.returncode == 0, result.stderr[-2000:]
    scene = trimesh.load(glb, process=False)
    avatar = load_avatar(out)
    expected = {"head"} | {f"{side}_hand" for side in avatar.hands if avatar.hands[side].present[3]}
    assert set(scene.geometry) == expected


RENDER = ["avatar", "render", "{avatar}", "--out", "{tmp}/v.mp4"]


@pytest.mark.parametrize(
    "arguments, message",
    [
        ([*RENDER, "--hand-pose", "{clip}/x.json"], "does not exist"),
        ([*RENDER, "--hand-pose", "{poses}"], "not a hand pose file"),
        ([*RENDER, "--expression", "{poses}"], "not an expression file"),
        (["avatar", "export", "{avatar}", "--out", "{tmp}/a.obj"], ".glb"),
        (["avatar", "export", "{avatar}", "--out", "{tmp}/a.glb", "--frame", "99"], "outside"),
        (["avatar", "hands", "{avatar}", "--out", "{tmp}/h.txt"], ".json"),
        (["avatar", "render", "{clip}", "--out", "{tmp}/v.mp4"], "not an avatar folder"),
        (["avatar", "render", "{avatar}", "--out", "{tmp}/v.gif"], ".mp4"),
        (["avatar", "{clip}/images", "--out", "{avatar}"], "already exists"),
        (["avatar", "{tmp}/missing.mp4", "--out", "{tmp}/a"], "missing.mp4"),
    ],
)
def test_bad_input_gives_one_line_and_exit_2(built, clip, tmp_path, arguments, message):
    out, _ = built
    poses = out.parent / "not_poses.json"  # valid JSON of another kind
    poses.write_text("{}")
    before = sorted(p.name for p in out.parent.iterdir())
    args = [a.format(clip=clip, tmp=tmp_path, avatar=out, poses=poses) for a in arguments]
    result = _handface(*args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr
    assert sorted(p.name for p in out.parent.iterdir()) == before  # nothing written or lost
    assert not list(tmp_path.iterdir())
