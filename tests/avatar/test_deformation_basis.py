"""The PCA deformation basis: exact subspaces, held-out energy, round trip, CLI."""

from __future__ import annotations

import pytest
import torch

from handface.avatar.deformation_basis import (
    DeformationBasis,
    explained_energy,
    fit_basis,
    load_deformations,
)
from handface.cli import entrypoint


def _low_rank(count: int, rank: int, vertices: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    modes = torch.linalg.qr(torch.randn(vertices * 3, rank, generator=generator))[0].T
    codes = torch.randn(count, rank, generator=generator)
    return (codes @ modes).reshape(count, vertices, 3), modes


def test_basis_recovers_a_low_rank_subspace():
    data, modes = _low_rank(40, 3, 50, seed=0)
    heldout = _low_rank(10, 3, 50, seed=0)[0].roll(1, 0) * 0.5  # same subspace, other codes
    basis = fit_basis(data, heldout, components=5)
    assert basis.num_components == 5
    flat = basis.components.reshape(5, -1)
    assert torch.allclose(flat @ flat.T, torch.eye(5), atol=1e-5)
    assert basis.train_explained[2] == pytest.approx(1.0, abs=1e-5)
    assert basis.heldout_explained[2] == pytest.approx(1.0, abs=1e-5)
    assert float(basis.train_explained[1]) < 0.999
    # the first three components span the true modes
    projection = modes @ flat[:3].T
    assert torch.allclose(projection @ projection.T, torch.eye(3), atol=1e-4)
    codes = basis.project(data)
    assert torch.allclose(basis.apply(codes), data, atol=1e-5)


def test_explained_energy_exact_and_zero_code_means_no_deformation():
    x = torch.tensor([[3.0, 4.0]])
    assert explained_energy(x, torch.eye(2)).tolist() == pytest.approx([0.36, 1.0])
    data, _ = _low_rank(10, 2, 20, seed=1)
    basis = fit_basis(data, data[:0], components=2)
    assert torch.equal(basis.apply(torch.zeros(2)), torch.zeros(20, 3))
    assert torch.isnan(basis.heldout_explained).all()


def test_save_load_round_trip(tmp_path):
    data, _ = _low_rank(12, 4, 30, seed=2)
    basis = fit_basis(data, data[:3], components=4)
    loaded = DeformationBasis.load(basis.save(tmp_path / "basis.npz"))
    assert torch.equal(loaded.components, basis.components)
    assert loaded.num_train == 12 and loaded.num_heldout == 3


def test_pca_on_synthetic_data(synth_sequence, tmp_path, capsys):
    train, heldout = load_deformations(synth_sequence, heldout_every=0, progress=False)
    assert train.shape[1:] == (4538, 3) and heldout.shape[0] == 0
    assert 0 < train.shape[0] <= 8
    out = tmp_path / "basis.npz"
    entrypoint(["pca", "--data", str(synth_sequence), "--out", str(out), "--components", "3",
                "--heldout-every", "0"])  # fmt: skip
    assert "explained on training frames" in capsys.readouterr().out
    basis = DeformationBasis.load(out)
    assert basis.num_components == min(3, train.shape[0])
    with pytest.raises(SystemExit) as exit_info:
        entrypoint(["pca", "--data", str(synth_sequence), "--out", str(out)])
    assert exit_info.value.code == 2
