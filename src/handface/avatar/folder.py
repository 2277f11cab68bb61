"""The avatar folder: what ``handface avatar`` writes and ``handface avatar render`` reads.

::

    AVATAR/
      avatar.json    schema version, source video, frames, camera, lighting, hand colours,
                     the basis kind, the build's figures and timings, and what each file holds
      head.obj       the person's head at rest (tracked shape, no expression), with UVs,
      head.mtl       + its material,
      texture.png    + the fitted albedo texture: opens in Blender, MeshLab, three.js
      head.glb       the same textured head as one binary glTF file (Y up, facing +Z)
      basis.npz      the deformation basis (components (K, V, 3), explained energy)
      frames.npz     per frame: head rotation, translation and expression, the source frame
                     index, the deformation codes and which frames have them, each hand's pose;
                     and the head's learned per-vertex offsets (canonical frame)
      decoder.pt     the code -> coefficient decoder (a state dict; ``weights_only`` loads it)

Written through a staging folder, so a failed or interrupted build leaves nothing.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import torch

from handface.avatar.appearance import Appearance
from handface.avatar.deformation_basis import DeformationBasis
from handface.avatar.export import export_avatar_glb
from handface.avatar.hand_deformation import CodeDecoder, HandDeformation
from handface.avatar.model import AVATAR_SCHEMA_VERSION, Avatar, AvatarHands
from handface.errors import InputError
from handface.io.files import atomic_output_dir, atomic_write_bytes
from handface.render.overlay import save_png

FILES = {
    "avatar.json": "this description: camera, lighting, hand colours, figures",
    "head.obj": "the head at rest with UVs (material head.mtl, texture texture.png)",
    "head.mtl": "the head's material: the texture as diffuse colour",
    "texture.png": "the fitted albedo texture (UV layout of head.obj)",
    "head.glb": "the textured head at rest as binary glTF (Y up, facing +Z; Blender, three.js)",
    "basis.npz": "the hand-deformation basis: components (K, V, 3) in the head's frame",
    "frames.npz": "per frame: head pose and expression, deformation codes, hand poses",
    "decoder.pt": "the code -> basis coefficient decoder (torch state dict)",
}


def save_avatar(avatar: Avatar, out: Path, head_model, *, overwrite: bool = False) -> Path:
    """Write ``avatar`` as the folder ``out`` (see the module docstring)."""
    out = Path(out)
    with atomic_output_dir(out, overwrite=overwrite) as staging:
        save_png(staging / "texture.png", avatar.appearance.texture.numpy())
        _write_obj(staging, avatar, head_model)
        export_avatar_glb(avatar, head_model, {}, staging / "head.glb")
        avatar.deformation.basis.save(staging / "basis.npz")
        arrays = {
            "rotation": avatar.rotation.astype(np.float32),
            "transl": avatar.transl.astype(np.float32),
            "expression": avatar.expression.astype(np.float32),
            "frame_index": avatar.frame_index.astype(np.int64),
            "head_shape": avatar.head_shape.astype(np.float32),
            "codes": avatar.deformation.codes.float().numpy(),
            "active": avatar.deformation.active.numpy(),
            "texture_coverage": avatar.appearance.coverage.numpy(),
        }
        if avatar.head_offsets is not None:
            arrays["head_offsets"] = np.asarray(avatar.head_offsets, np.float32)
        for side, hands in avatar.hands.items():
            for name in ("present", "global_orient", "transl", "articulation"):
                arrays[f"hand_{side}_{name}"] = np.asarray(getattr(hands, name))
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        atomic_write_bytes(staging / "frames.npz", buffer.getvalue())
        decoder = avatar.deformation.decoder
        buffer = io.BytesIO()
        torch.save(
            {
                "state": {k: v.float() for k, v in decoder.state_dict().items()},
                "code_size": int(decoder.layers[0].in_features),
                "hidden": int(decoder.layers[0].out_features),
                "components": int(decoder.layers[2].out_features),
                "scale": float(decoder.scale),
            },
            buffer,
        )
        atomic_write_bytes(staging / "decoder.pt", buffer.getvalue())
        document = {
            "schema_version": AVATAR_SCHEMA_VERSION,
            "kind": "handface avatar",
            "source": avatar.source,
            "frames": len(avatar),
            "fps": avatar.fps,
            "image_size": list(avatar.image_size),
            "K": np.asarray(avatar.K).tolist(),
            "head_model": type(head_model).__name__,
            "lighting_sh9": avatar.appearance.lighting.tolist(),
            "hand_colors": {side: list(h.color) for side, h in avatar.hands.items()},
            "basis": {
                "kind": avatar.basis_kind,
                "components": avatar.deformation.basis.num_components,
            },
            "figures": avatar.figures,
            "files": FILES,
        }
        (staging / "avatar.json").write_text(json.dumps(document, indent=2) + "\n")
    return out


def load_avatar(folder: Path) -> Avatar:
    """Read an avatar folder written by :func:`save_avatar`.

    Raises:
        InputError: not an avatar folder, a missing file, or a newer schema.
    """
    folder = Path(folder)
    meta_path = folder / "avatar.json"
    if not meta_path.is_file():
        raise InputError(f"{folder} is not an avatar folder (no avatar.json); make one with "
                         "`handface avatar VIDEO --out FOLDER`")  # fmt: skip
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{meta_path} is not valid JSON ({error})") from None
    version = meta.get("schema_version")
    if version != AVATAR_SCHEMA_VERSION:
        raise InputError(f"{folder}: avatar schema {version}; this handface reads "
                         f"{AVATAR_SCHEMA_VERSION}")  # fmt: skip
    for name in ("texture.png", "basis.npz", "frames.npz", "decoder.pt"):  # what loading reads
        if not (folder / name).is_file():
            raise InputError(f"{folder}: {name} is missing; the avatar folder is incomplete")
    from PIL import Image

    texture = np.asarray(Image.open(folder / "texture.png").convert("RGB"), np.float32) / 255.0
    basis = DeformationBasis.load(folder / "basis.npz")
    with np.load(folder / "frames.npz") as data:
        arrays = {k: data[k] for k in data.files}
    saved = torch.load(folder / "decoder.pt", weights_only=True)
    decoder = CodeDecoder(saved["code_size"], saved["hidden"], saved["components"],
                          saved["scale"]).double()  # fmt: skip
    decoder.load_state_dict({k: v.double() for k, v in saved["state"].items()})
    deformation = HandDeformation(
        codes=torch.as_tensor(arrays["codes"]).double(),
        decoder=decoder,
        basis=basis,
        active=torch.as_tensor(arrays["active"]),
    )
    appearance = Appearance(
        texture=torch.from_numpy(texture),
        lighting=torch.tensor(meta["lighting_sh9"], dtype=torch.float32),
        coverage=torch.as_tensor(arrays["texture_coverage"]),
    )
    hands = {}
    for side, color in meta.get("hand_colors", {}).items():
        hands[side] = AvatarHands(
            present=arrays[f"hand_{side}_present"],
            global_orient=arrays[f"hand_{side}_global_orient"],
            transl=arrays[f"hand_{side}_transl"],
            articulation=arrays[f"hand_{side}_articulation"],
            color=tuple(color),
        )
    return Avatar(
        image_size=tuple(meta["image_size"]),
        K=np.array(meta["K"], dtype=np.float64),
        fps=float(meta["fps"]),
        head_shape=arrays["head_shape"],
        rotation=arrays["rotation"],
        transl=arrays["transl"],
        expression=arrays["expression"],
        frame_index=arrays["frame_index"],
        head_offsets=arrays.get("head_offsets"),
        appearance=appearance,
        deformation=deformation,
        hands=hands,
        basis_kind=meta["basis"]["kind"],
        source=meta.get("source"),
        figures=meta.get("figures", {}),
    )


def _write_obj(staging: Path, avatar: Avatar, head_model) -> None:
    vertices = avatar.rest_head(head_model).numpy()
    faces = head_model.faces.numpy()
    # one texture coordinate per distinct UV (corners share them except along the seams)
    uvs, corner_uv = np.unique(
        head_model.face_uvs.reshape(-1, 2).numpy().round(6), axis=0, return_inverse=True
    )
    corner_uv = corner_uv.reshape(-1, 3)
    lines = ["# handface avatar head at rest (metres, the head's canonical frame)",
             "mtllib head.mtl", "usemtl skin"]  # fmt: skip
    lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in vertices]
    lines += [f"vt {u:.6f} {v:.6f}" for u, v in uvs]
    for (a, b, c), (ta, tb, tc) in zip(faces, corner_uv, strict=True):
        lines.append(f"f {a + 1}/{ta + 1} {b + 1}/{tb + 1} {c + 1}/{tc + 1}")
    (staging / "head.obj").write_text("\n".join(lines) + "\n")
    (staging / "head.mtl").write_text(
        "newmtl skin\nKa 1 1 1\nKd 1 1 1\nKs 0 0 0\nmap_Kd texture.png\n"
    )
