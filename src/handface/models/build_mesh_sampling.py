"""Regenerate ``models/assets/mesh_sampling_anny.npz``: coarse levels and mirror maps of Anny.

``python -m handface.models.build_mesh_sampling [--out PATH]``

Builds the head hierarchy 4538 -> 1513 -> 504 -> 168 and the right-hand hierarchy
1609 -> 402 -> 101 on the neutral meshes (see :mod:`handface.geometry.mesh_sampling`), and the
mirror maps of :class:`handface.models.mesh_sampling.MirrorMaps`. Before writing it checks what
the maps rely on and prints what it found:

* the mirror axis of each model: the canonical axis whose reflection matches the head with
  itself, and the right hand with the left hand, most closely (x for both);
* that the left hand is the right hand reflected vertex for vertex, also when posed with the
  mirrored compact articulation and any shape;
* the mirror permutations of the head vertices, the 52 facial actions and the 68 landmarks
  are involutions.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from handface.geometry.mesh_sampling import mirror_correspondence
from handface.models.anny_backend import AnnyHandModel, AnnyHeadModel
from handface.models.base import HandParams
from handface.models.mesh_sampling import (
    ANNY_HAND_LEVELS,
    ANNY_HEAD_LEVELS,
    MESH_SAMPLING_FILES,
    compute_body_sampling,
    neutral_hand,
    neutral_head,
    save_body_sampling,
)


def mirror_axis_errors(vertices: torch.Tensor, other: torch.Tensor | None = None) -> list[float]:
    """Mean distance (metres) of the best reflected match across each canonical axis."""
    errors = []
    for axis in range(3):
        _, distance = mirror_correspondence(vertices, other, axis=axis)
        errors.append(float(distance.mean()))
    return errors


def check_hand_mirror(right: AnnyHandModel, left: AnnyHandModel, sign: torch.Tensor) -> float:
    """Largest distance between a posed left hand and the reflected right hand (metres)."""
    gen = torch.Generator().manual_seed(0)
    articulation = torch.randn(4, 20, generator=gen)
    shape = torch.rand(4, len(right.shape_labels), generator=gen)
    reflect = torch.tensor([-1.0, 1.0, 1.0])
    with torch.no_grad():
        a = right(HandParams(articulation=articulation, shape=shape)).vertices
        b = left(HandParams(articulation=articulation * sign, shape=shape)).vertices
    return float((a * reflect - b).norm(dim=-1).max())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=MESH_SAMPLING_FILES["anny"])
    args = parser.parse_args(argv)

    head_model = AnnyHeadModel()
    right, left = AnnyHandModel("right"), AnnyHandModel("left")
    head = neutral_head(head_model).vertices[0].double()
    hand_r = neutral_hand(right).vertices[0].double()
    hand_l = neutral_hand(left).vertices[0].double()

    head_errors = mirror_axis_errors(head)
    hand_errors = mirror_axis_errors(hand_r, hand_l)
    names = "xyz"
    print(
        "mirror axis, head (mean mm per axis): "
        + ", ".join(f"{names[a]} {1000 * e:.3f}" for a, e in enumerate(head_errors))
    )
    print(
        "mirror axis, right -> left hand (mean mm per axis): "
        + ", ".join(f"{names[a]} {1000 * e:.3f}" for a, e in enumerate(hand_errors))
    )
    if int(np.argmin(head_errors)) != 0 or int(np.argmin(hand_errors)) != 0:
        raise SystemExit("the mirror axis is not canonical x; the mirror maps assume it is")

    sampling = compute_body_sampling(
        head_model, right, ANNY_HEAD_LEVELS, ANNY_HAND_LEVELS, left_hand_model=left
    )
    mirror = sampling.mirror
    identity = torch.equal(mirror.hand_right_to_left, torch.arange(hand_r.shape[0]))
    print(f"right -> left hand correspondence is the identity: {identity}")
    if mirror.hand_articulation_sign is not None:
        error = check_hand_mirror(right, left, mirror.hand_articulation_sign)
        print(f"posed left hand vs reflected right hand: max {1000 * error:.4f} mm")
        if error > 1e-4:
            raise SystemExit("the mirrored compact articulation does not mirror the hand")
    for name, perm in (
        ("head vertices", mirror.head_vertices),
        ("expressions", mirror.expression),
        ("landmarks68", mirror.landmarks68),
    ):
        if perm is not None and not torch.equal(perm[perm], torch.arange(len(perm))):
            raise SystemExit(f"the mirror map of the {name} is not an involution")
    reflected = head * torch.tensor([-1.0, 1.0, 1.0], dtype=head.dtype)
    distance = (reflected - head[mirror.head_vertices]).norm(dim=-1)
    matched = mirror.head_matched
    print(
        f"head mirror: {int(matched.sum())} of {len(matched)} vertices matched "
        f"(max {1000 * float(distance[matched].max()):.3f} mm); "
        f"{int((~matched).sum())} without a partner map to themselves"
    )
    print("levels: head", sampling.head.sizes, "hand", sampling.hand.sizes)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_body_sampling(sampling, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
