"""The PCA basis of hand-induced face deformation (avatar paper, METHOD.md §4).

Each training example is one frame's deformation ``D`` (V x 3, head canonical frame) flattened
to a vector. The basis is the top right-singular vectors of the *uncentred* data matrix: no mean
is subtracted, because "no hand, no deformation" must be the code ``z = 0`` (the avatar applies
``delta = sum_k z_k B_k`` and regularises ``|delta|^2``). Explained variance is therefore the
share of the deformations' energy (sum of squares) the projection keeps:
``1 - |X - X B^T B|^2 / |X|^2``, reported on held-out frames.

Held-out frames are whole sequences (every ``heldout_every``-th sequence id), so no frame of a
held-out sequence leaks into training.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor
from tqdm import tqdm

from handface.data.synth import load_topology, read_meta, read_npz
from handface.errors import InputError
from handface.io.files import atomic_write_bytes

MIN_DEFORMATION = 1e-4
"""Frames whose largest displacement is below this (metres) carry no deformation; skipped."""


@dataclass
class DeformationBasis:
    """``components`` (K, V, 3) orthonormal as flattened vectors; ``delta = z @ components``."""

    components: Float[Tensor, "K V 3"]
    singular_values: Float[Tensor, " K"]
    train_explained: Float[Tensor, " K"]
    """Cumulative share of the training energy explained by the first k components."""
    heldout_explained: Float[Tensor, " K"]
    """The same on held-out frames (NaN when there were none)."""
    num_train: int
    num_heldout: int

    @property
    def num_components(self) -> int:
        return int(self.components.shape[0])

    def apply(self, codes: Float[Tensor, "*B K"]) -> Float[Tensor, "*B V 3"]:
        """Displacements of codes ``z``: ``sum_k z_k B_k``."""
        flat = self.components.reshape(self.num_components, -1).to(codes)
        return (codes @ flat).reshape(*codes.shape[:-1], -1, 3)

    def project(self, deformation: Float[Tensor, "*B V 3"]) -> Float[Tensor, "*B K"]:
        """Least-squares codes of a deformation (the basis is orthonormal)."""
        flat = self.components.reshape(self.num_components, -1).to(deformation)
        return deformation.reshape(*deformation.shape[:-2], -1) @ flat.T

    def save(self, path: Path) -> Path:
        """Write the basis as ``.npz`` (atomically)."""
        import io

        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            components=self.components.numpy().astype(np.float32),
            singular_values=self.singular_values.numpy(),
            train_explained=self.train_explained.numpy(),
            heldout_explained=self.heldout_explained.numpy(),
            num_train=np.int64(self.num_train),
            num_heldout=np.int64(self.num_heldout),
        )
        atomic_write_bytes(Path(path), buffer.getvalue())
        return Path(path)

    @classmethod
    def load(cls, path: Path) -> DeformationBasis:
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path} does not exist; create a basis with `handface pca`")
        data = read_npz(path, "a deformation basis (.npz from `handface pca`)")
        names = ("components", "singular_values", "train_explained", "heldout_explained",
                 "num_train", "num_heldout")  # fmt: skip
        lacking = [name for name in names if name not in data]
        if lacking or data["components"].ndim != 3 or data["components"].shape[-1] != 3:
            what = f"has no {lacking[0]!r}" if lacking else "has components not shaped (K, V, 3)"
            raise InputError(f"{path} {what}; it is not a basis from `handface pca`")
        return cls(
            components=torch.from_numpy(data["components"]),
            singular_values=torch.from_numpy(data["singular_values"]),
            train_explained=torch.from_numpy(data["train_explained"]),
            heldout_explained=torch.from_numpy(data["heldout_explained"]),
            num_train=int(data["num_train"]),
            num_heldout=int(data["num_heldout"]),
        )


def explained_energy(
    data: Float[Tensor, "N D"], components: Float[Tensor, "K D"]
) -> Float[Tensor, " K"]:
    """Cumulative share of ``|data|^2`` kept by projecting on the first k orthonormal components.

    Example:
        >>> x = torch.tensor([[3.0, 4.0]]); c = torch.eye(2)
        >>> explained_energy(x, c).tolist()
        [0.36, 1.0]
    """
    total = data.pow(2).sum()
    if total == 0:
        return torch.full((components.shape[0],), float("nan"), dtype=data.dtype)
    kept = (data @ components.T).pow(2).sum(0)
    return torch.cumsum(kept, 0) / total


def fit_basis(
    train: Float[Tensor, "N V 3"], heldout: Float[Tensor, "M V 3"], components: int
) -> DeformationBasis:
    """PCA (uncentred) of ``train`` deformations; explained energy on ``heldout``."""
    if train.shape[0] < 1:
        raise InputError("no training frame has a deformation; generate contact samples first")
    x = train.reshape(train.shape[0], -1).double()
    _, singular, vh = torch.linalg.svd(x, full_matrices=False)
    k = min(components, vh.shape[0])
    basis = vh[:k]
    held = heldout.reshape(heldout.shape[0], x.shape[1]).double()
    return DeformationBasis(
        components=basis.float().reshape(k, -1, 3),
        singular_values=singular[:k].float(),
        train_explained=explained_energy(x, basis).float(),
        heldout_explained=(
            explained_energy(held, basis).float()
            if held.shape[0]
            else torch.full((k,), float("nan"))
        ),
        num_train=int(x.shape[0]),
        num_heldout=int(held.shape[0]),
    )


def load_deformations(
    root: Path, heldout_every: int = 10, progress: bool = True
) -> tuple[Tensor, Tensor]:
    """Deformations of a synthetic dataset split into (train, held-out) by sequence id."""
    root = Path(root)
    meta = read_meta(root)
    num_vertices = int(load_topology(root)["face_stiffness"].shape[0])
    train, heldout = [], []
    # leave=False: the bar goes when done (or when a broken file stops it, before its error)
    with tqdm(meta["items"], desc="pca: reading", unit="item", disable=not progress,
              leave=False) as items:  # fmt: skip
        for item in items:
            path = root / "labels" / f"{item['key']}.npz"
            if not path.is_file():
                raise InputError(f"{path} is missing; the dataset at {root} is incomplete")
            deformation = read_npz(path, names=("deformation",)).get("deformation")
            if deformation is None:
                raise InputError(f"{path} has no array 'deformation'; regenerate the dataset")
            if deformation.shape != (num_vertices, 3):
                raise InputError(f"{item['key']}: deformation has shape {deformation.shape}")
            if np.abs(deformation).max() < MIN_DEFORMATION:
                continue
            target = heldout if heldout_every and item["sequence"] % heldout_every == 0 else train
            target.append(torch.from_numpy(deformation))
    empty = torch.zeros(0, num_vertices, 3)
    return (
        torch.stack(train) if train else empty,
        torch.stack(heldout) if heldout else empty,
    )
