"""Second-order spherical-harmonics lighting: irradiance from 9 coefficients per colour channel.

Distant, smooth illumination of a convex Lambertian surface is captured to within a few percent
by the first nine real spherical harmonics of the normal (Ramamoorthi & Hanrahan 2001), which is
why face avatars (DECA, IMavatar, FLAME-based trackers) model a video's lighting this way: a
pixel's colour is ``albedo * sum_k c_k Y_k(n)``, linear in the coefficients ``c`` and in the
albedo, so both can be fitted by gradient descent from photos.

The basis functions here already include the Lambertian cosine lobe's convolution constants, so
``c`` is the irradiance's own expansion: ``c = (1, 0, ..., 0)`` is uniform white light (shade 1
everywhere) and ``c = (a, 0, 0, b, 0, ...)`` a gradient along the camera's z axis.
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from torch import Tensor

from handface.errors import InputError

SH_COEFFICIENTS = 9
"""Coefficients per colour channel (bands 0, 1 and 2)."""


def sh_basis(normals: Float[Tensor, "*shape 3"]) -> Float[Tensor, "*shape 9"]:
    """The nine real SH basis values of unit ``normals``, scaled so ``Y_0 = 1``.

    Order: 1, y, z, x, xy, yz, 3z^2 - 1, xz, x^2 - y^2 (bands 0, 1, 2), each band carrying the
    Lambertian convolution constant relative to band 0 (2/3 for band 1, 1/4 for band 2) and the
    basis normalisation, so the result times the coefficients is irradiance.

    Example:
        >>> sh_basis(torch.tensor([[0.0, 0.0, 1.0]])).round(decimals=4)
        tensor([[1.0000, 0.0000, 1.1547, 0.0000, 0.0000, 0.0000, 0.5590, 0.0000, 0.0000]])
    """
    if normals.shape[-1] != 3:
        raise InputError(f"normals must be (..., 3), got {tuple(normals.shape)}")
    x, y, z = normals.unbind(-1)
    # Y_lm normalisation times the cosine lobe's A_l (pi, 2pi/3, pi/4), relative to band 0's
    # pi * 0.282095: band 1 gets 0.488603 * (2/3) / 0.282095 = 1.1547..., etc.
    c0 = math.pi * 0.282095
    band1 = (2.0 * math.pi / 3.0) * 0.488603 / c0
    c2 = (math.pi / 4.0) / c0
    return torch.stack(
        [
            torch.ones_like(x),
            band1 * y,
            band1 * z,
            band1 * x,
            c2 * 1.092548 * x * y,
            c2 * 1.092548 * y * z,
            c2 * 0.315392 * (3.0 * z * z - 1.0),
            c2 * 1.092548 * x * z,
            c2 * 0.546274 * (x * x - y * y),
        ],
        dim=-1,
    )


def sh_irradiance(
    normals: Float[Tensor, "*shape 3"], coefficients: Float[Tensor, "C 9"]
) -> Float[Tensor, "*shape C"]:
    """Irradiance per colour channel at surfaces with unit ``normals`` (camera frame).

    Example:
        >>> white = torch.zeros(3, 9); white[:, 0] = 1.0
        >>> sh_irradiance(torch.tensor([[0.0, 0.0, -1.0]]), white)
        tensor([[1., 1., 1.]])
    """
    if coefficients.dim() != 2 or coefficients.shape[-1] != SH_COEFFICIENTS:
        raise InputError(f"coefficients must be (C, 9), got {tuple(coefficients.shape)}")
    return sh_basis(normals.to(coefficients.dtype)) @ coefficients.T
