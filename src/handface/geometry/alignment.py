"""Point-set alignment and comparison: Procrustes (Umeyama), similarity transforms, Chamfer.

Shapes are batched ``(B, N, 3)``; any number of leading batch dimensions works where noted.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor

from handface.errors import InputError

__all__ = [
    "ProcrustesResult",
    "apply_similarity",
    "chamfer_distance",
    "invert_similarity",
    "nearest_neighbors",
    "procrustes",
]


@dataclass
class ProcrustesResult:
    """Similarity ``x -> scale * rotation @ x + translation`` that best maps source to target.

    ``aligned`` is the source after the transform; ``rotation`` is a proper rotation
    (``det = +1``).
    """

    aligned: Float[Tensor, "*batch N 3"]
    scale: Float[Tensor, "*batch"]
    rotation: Float[Tensor, "*batch 3 3"]
    translation: Float[Tensor, "*batch 3"]

    def apply(self, points: Float[Tensor, "*batch M 3"]) -> Float[Tensor, "*batch M 3"]:
        """Apply the transform to other points (e.g. a whole mesh aligned by its landmarks)."""
        return apply_similarity(points, self.scale, self.rotation, self.translation)


def apply_similarity(
    points: Float[Tensor, "*batch N 3"],
    scale: Float[Tensor, "*batch"],
    rotation: Float[Tensor, "*batch 3 3"],
    translation: Float[Tensor, "*batch 3"],
) -> Float[Tensor, "*batch N 3"]:
    """``x -> scale * R x + t`` for every point.

    Example:
        >>> R = torch.tensor([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])  # 90 deg about z
        >>> apply_similarity(torch.tensor([[1.0, 0, 0]]), torch.tensor(2.0), R, torch.ones(3))
        tensor([[1., 3., 1.]])
    """
    return (
        scale[..., None, None] * (points @ rotation.transpose(-1, -2)) + translation[..., None, :]
    )


def invert_similarity(
    scale: Float[Tensor, "*batch"],
    rotation: Float[Tensor, "*batch 3 3"],
    translation: Float[Tensor, "*batch 3"],
) -> tuple[Float[Tensor, "*batch"], Float[Tensor, "*batch 3 3"], Float[Tensor, "*batch 3"]]:
    """``(s, R, t)`` of the inverse transform ``y -> R^T (y - t) / s``."""
    rot_inv = rotation.transpose(-1, -2)
    scale_inv = 1.0 / scale
    trans_inv = -scale_inv[..., None] * (rot_inv @ translation[..., None])[..., 0]
    return scale_inv, rot_inv, trans_inv


def procrustes(
    source: Float[Tensor, "*batch N 3"],
    target: Float[Tensor, "*batch N 3"],
    weights: Float[Tensor, "*batch N"] | None = None,
    scale: bool = True,
) -> ProcrustesResult:
    """Least-squares similarity (or rigid, ``scale=False``) transform from source to target.

    Minimises ``sum_i w_i |s R x_i + t - y_i|^2`` in closed form (Umeyama 1991): weighted
    centroids, SVD of the weighted cross-covariance, and a sign flip of the last singular
    direction when needed so that ``R`` is a rotation, never a reflection. Differentiable
    (through ``torch.linalg.svd``; gradients are ill-defined when two singular values
    coincide, e.g. for rotationally symmetric point sets).

    Args:
        weights: non-negative per-point weights (default: all 1); at least three points with
            non-zero weight that are not collinear are needed for a unique rotation.

    Degenerate input gives a finite result: with collinear points the rotation is one of the
    optimal ones (not unique); coincident source points (one point, ``N == 0``, all weights
    0, or a spread within ``16 eps`` of the points' distance from the origin) give scale 0,
    i.e. everything maps to the target's (weighted) centroid; a batch of 0 gives empty
    fields. NaN or inf in source, target or weights raise :class:`~handface.errors.InputError`
    (checked on the 3x3 covariance: no extra pass).

    Example:
        >>> src = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
        >>> res = procrustes(src, 2.0 * src + 1.0)
        >>> round(float(res.scale), 4), res.translation.round(decimals=4)
        (2.0, tensor([1., 1., 1.]))
    """
    if source.shape != target.shape or source.shape[-1] != 3 or source.dim() < 2:
        raise InputError(
            f"source and target must both have shape (..., N, 3), got {tuple(source.shape)} "
            f"and {tuple(target.shape)}"
        )
    if weights is None:
        weights = source.new_ones(source.shape[:-1])
    elif weights.shape != source.shape[:-1]:
        raise InputError(
            f"weights must have shape {tuple(source.shape[:-1])}, got {tuple(weights.shape)}"
        )
    w = weights / weights.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(source.dtype).tiny)
    w3 = w[..., None]
    mu_src = (w3 * source).sum(dim=-2)
    mu_tgt = (w3 * target).sum(dim=-2)
    src_c = source - mu_src[..., None, :]
    tgt_c = target - mu_tgt[..., None, :]
    cov = (w3 * tgt_c).transpose(-1, -2) @ src_c  # (..., 3, 3): sum w y x^T
    # Any NaN/inf input reaches the covariance (0 * inf is NaN): 9 values per item to check
    # instead of torch.linalg.svd's opaque "failed to converge".
    if not bool(torch.isfinite(cov).all()):
        raise InputError("procrustes: source, target and weights must be finite (NaN or inf)")
    u, sv, vh = torch.linalg.svd(cov)
    # det(U V^T) = -1 means the best orthogonal map is a reflection: flip the weakest axis.
    sign = torch.sign(torch.linalg.det(u @ vh))
    sign = torch.where(sign == 0, torch.ones_like(sign), sign)
    d = torch.ones_like(sv)
    d = torch.cat([d[..., :2], sign[..., None]], dim=-1)
    rotation = u @ (d[..., :, None] * vh)
    if scale:
        var_src = (w * (src_c * src_c).sum(dim=-1)).sum(dim=-1)
        # A spread within the rounding of the coordinates (or one whose square underflows)
        # is no spread: the points coincide and the best scale is 0. Dividing the rounding
        # noise of the covariance by it instead gave scales like 1e136.
        info = torch.finfo(source.dtype)
        noise = (16 * info.eps) ** 2 * (mu_src * mu_src).sum(dim=-1) + info.tiny
        spread = var_src > noise
        s = (sv * d).sum(dim=-1) / torch.where(spread, var_src, torch.ones_like(var_src))
        s = torch.where(spread, s, torch.zeros_like(s))
    else:
        s = torch.ones_like(sv[..., 0])
    translation = mu_tgt - s[..., None] * (rotation @ mu_src[..., None])[..., 0]
    aligned = apply_similarity(source, s, rotation, translation)
    return ProcrustesResult(aligned, s, rotation, translation)


def nearest_neighbors(
    a: Float[Tensor, "B N 3"], b: Float[Tensor, "B M 3"], *, chunk_size: int = 2048
) -> tuple[Float[Tensor, "B N"], Int[Tensor, "B N"]]:
    """For every point of ``a``, the (non-squared) distance to and index of its nearest point
    in ``b``. Brute force in chunks of ``chunk_size`` rows of ``a`` (memory ``B * chunk * M``).

    The search runs without gradients; the returned distance is recomputed from the chosen pair
    so it is differentiable in both sets (zero gradient where the points coincide).
    """
    if a.dim() != 3 or b.dim() != 3 or a.shape[-1] != 3 or b.shape[-1] != 3:
        raise InputError(
            f"a and b must be (B, N, 3) and (B, M, 3), got {tuple(a.shape)}, {tuple(b.shape)}"
        )
    if a.shape[0] != b.shape[0] or b.shape[1] == 0:
        raise InputError(
            "a and b need the same batch size and b at least one point, got "
            f"{tuple(a.shape)} and {tuple(b.shape)}"
        )
    if chunk_size < 1:
        raise InputError(f"chunk_size must be at least 1, got {chunk_size}")
    with torch.no_grad():
        idx = torch.cat(
            [
                torch.cdist(
                    a[:, start : start + chunk_size].detach(),
                    b.detach(),
                    compute_mode="donot_use_mm_for_euclid_dist",
                ).argmin(dim=-1)
                for start in range(0, a.shape[1], chunk_size)
            ]
            or [a.new_zeros(a.shape[0], 0, dtype=torch.long)],
            dim=1,
        )
    nearest = torch.gather(b, 1, idx[..., None].expand(-1, -1, 3))
    return torch.linalg.vector_norm(a - nearest, dim=-1), idx


def chamfer_distance(
    a: Float[Tensor, "B N 3"],
    b: Float[Tensor, "B M 3"],
    *,
    squared: bool = False,
    chunk_size: int = 2048,
) -> tuple[Float[Tensor, " B"], Float[Tensor, " B"]]:
    """Mean nearest-neighbour distance from ``a`` to ``b`` and from ``b`` to ``a``.

    Unlike pytorch3d's default this is the plain Euclidean distance (metres, so it reads as an
    error in mm once multiplied by 1000); pass ``squared=True`` for the mean squared distance.
    Returns the two directions separately; their sum (or mean) is the symmetric Chamfer
    distance. Memory is bounded by ``chunk_size`` (see :func:`nearest_neighbors`);
    differentiable in both sets. Both sets need at least one point
    (:class:`~handface.errors.InputError` otherwise); a batch of 0 gives empty results; a NaN
    point in either set makes both means NaN (it wins every nearest-neighbour search).

    Example:
        >>> a = torch.tensor([[[0.0, 0, 0]]])
        >>> b = torch.tensor([[[1.0, 0, 0], [0, 2, 0]]])
        >>> chamfer_distance(a, b)
        (tensor([1.]), tensor([1.5000]))
    """
    if a.dim() == 3 and b.dim() == 3 and (a.shape[1] == 0 or b.shape[1] == 0):
        raise InputError(
            "chamfer_distance of an empty point set is undefined, got "
            f"{tuple(a.shape)} and {tuple(b.shape)}"
        )
    d_ab, _ = nearest_neighbors(a, b, chunk_size=chunk_size)
    d_ba, _ = nearest_neighbors(b, a, chunk_size=chunk_size)
    if squared:
        d_ab, d_ba = d_ab * d_ab, d_ba * d_ba
    return d_ab.mean(dim=-1), d_ba.mean(dim=-1)
