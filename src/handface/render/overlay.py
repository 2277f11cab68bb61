"""Rendered meshes over photos, per-vertex heat maps, and atomic PNG writing.

Example (contact heat map of a face over a photo):

    >>> import numpy as np
    >>> from handface.geometry.camera import intrinsics_from_fov
    >>> photo = np.zeros((8, 8, 3), dtype=np.uint8)
    >>> v = torch.tensor([[-1.0, -1.0, 2.0], [1.0, -1.0, 2.0], [0.0, 1.0, 2.0]])
    >>> f = torch.tensor([[0, 1, 2]])
    >>> out = overlay_meshes(photo, [(v, f)], intrinsics_from_fov(8, 8, 90.0),
    ...                      vertex_values=[torch.tensor([0.0, 0.5, 1.0])])
    >>> out.shape, out.dtype, int(out[0, 0].sum())  # untouched corner keeps the photo
    ((8, 8, 3), dtype('uint8'), 0)
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Float, Int, UInt8
from PIL import Image
from torch import Tensor

from handface.errors import InputError
from handface.render.rasterizer import join_meshes, rasterize
from handface.render.shading import DirectionalLight, shade

# Piecewise-linear colour maps, anchors evenly spaced over [0, 1].
COLORMAPS: dict[str, tuple[tuple[float, float, float], ...]] = {
    # Samples of matplotlib's perceptually uniform "viridis" (CC0) at 0, 1/8, ..., 1.
    "viridis": (
        (0.267004, 0.004874, 0.329415),
        (0.282623, 0.140926, 0.457517),
        (0.229739, 0.322361, 0.545706),
        (0.172719, 0.448791, 0.557885),
        (0.127568, 0.566949, 0.550556),
        (0.157851, 0.683765, 0.501686),
        (0.369214, 0.788888, 0.382914),
        (0.678489, 0.863742, 0.189503),
        (0.993248, 0.906157, 0.143936),
    ),
    # Contact probability: neutral grey (no contact) through orange to saturated red.
    "contact": ((0.80, 0.80, 0.80), (0.98, 0.62, 0.22), (0.85, 0.08, 0.08)),
    # Classic black-red-yellow-white heat.
    "heat": ((0.0, 0.0, 0.0), (0.85, 0.10, 0.0), (1.0, 0.85, 0.0), (1.0, 1.0, 1.0)),
}

# Default albedo per object in overlays: skin-like for the first mesh (head), a cooler tone for
# the following ones (hands), so occlusions read clearly.
_PALETTE = ((0.85, 0.72, 0.62), (0.45, 0.62, 0.90), (0.55, 0.85, 0.55), (0.90, 0.55, 0.80))


def colormap(values: Float[Tensor, "*shape"], name: str = "contact") -> Float[Tensor, "*shape 3"]:
    """Map values in ``[0, 1]`` to RGB in ``[0, 1]`` (clamped; NaN maps like 0).

    Differentiable almost everywhere (piecewise linear).

    Example:
        >>> colormap(torch.tensor([0.0, 1.0]), "heat").tolist()
        [[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]
    """
    if name not in COLORMAPS:
        raise InputError(f"unknown colormap {name!r}; choose one of: {', '.join(COLORMAPS)}")
    values = torch.as_tensor(values)
    if not values.is_floating_point():
        values = values.to(torch.float32)
    lut = torch.tensor(COLORMAPS[name], dtype=values.dtype, device=values.device)
    t = torch.nan_to_num(values, nan=0.0).clamp(0.0, 1.0) * (len(lut) - 1)
    i = t.floor().clamp(max=len(lut) - 2).to(torch.int64)
    frac = (t - i.to(t.dtype)).unsqueeze(-1)
    return lut[i] * (1.0 - frac) + lut[i + 1] * frac


DEFORMATION_SCALE_STEPS_MM = (1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 50.0)
"""The tops the ``|D|`` colour scale may have (mm): round numbers a legend can print."""


def deformation_scale_top(largest_mm: float) -> float:
    """The top of the ``|D|`` colour scale for a largest ``|D|`` of ``largest_mm``: the smallest
    of :data:`DEFORMATION_SCALE_STEPS_MM` at or above it (50 beyond; 1 when it is not a
    number, so an undeformed face stays dark).

    Example:
        >>> deformation_scale_top(0.2), deformation_scale_top(2.1), deformation_scale_top(12.0)
        (1.0, 3.0, 20.0)
    """
    largest = float(largest_mm) if math.isfinite(largest_mm) else 0.0
    steps = DEFORMATION_SCALE_STEPS_MM
    return next((step for step in steps if step >= largest), steps[-1])


def deformation_colors(
    magnitude_mm: Float[Tensor, "*shape"] | Float[np.ndarray, "*shape"], scale_mm: float
) -> Float[Tensor, "*shape 3"]:
    """``|D|`` in millimetres as colours in ``[0, 1]``: the ``"viridis"`` map from 0 (dark
    violet) to ``scale_mm`` and above (yellow). The one colouring of deformation in every
    picture, video and viewer.

    Example:
        >>> top = deformation_colors(torch.tensor([5.0, 12.0]), scale_mm=5.0)
        >>> torch.equal(top[0], top[1])  # at and above the scale: yellow
        True
    """
    values = torch.as_tensor(np.asarray(magnitude_mm, np.float32))
    return colormap(values / max(float(scale_mm), 1e-9), "viridis")


def to_uint8(image: Tensor | np.ndarray) -> UInt8[np.ndarray, "H W *C"]:
    """Float image in ``[0, 1]`` (clamped) or uint8 image -> uint8 numpy array."""
    if isinstance(image, Tensor):
        image = image.detach().cpu().numpy()
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.bool_:
        return image.astype(np.uint8) * 255
    return (np.clip(np.nan_to_num(image.astype(np.float64)), 0.0, 1.0) * 255.0 + 0.5).astype(
        np.uint8
    )


def composite(
    photo: UInt8[np.ndarray, "H W 3"],
    rgb: Float[Tensor, "H W 3"],
    alpha: Float[Tensor, "H W"],
    *,
    opacity: float = 1.0,
) -> UInt8[np.ndarray, "H W 3"]:
    """Alpha-blend a rendering (``[0, 1]`` floats) over a photo; pixels with alpha 0 keep the
    photo's exact values."""
    photo = _check_photo(photo)
    a = (alpha.detach().cpu().double().numpy() * float(opacity))[..., None]
    top = np.clip(rgb.detach().cpu().double().numpy(), 0.0, 1.0) * 255.0
    out = photo.astype(np.float64) * (1.0 - a) + top * a
    out = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    return np.where(a > 0, out, photo)


def overlay_meshes(
    photo: UInt8[np.ndarray, "H W 3"],
    meshes: Sequence[tuple[Float[Tensor, "Vi 3"], Int[Tensor, "Fi 3"]]],
    K: Float[Tensor, "3 3"],
    *,
    vertex_values: Sequence[Tensor | None] | None = None,
    colors: Sequence[Tensor | tuple[float, float, float] | None] | None = None,
    cmap: str = "contact",
    opacity: float = 0.75,
    light: DirectionalLight | None = None,
) -> UInt8[np.ndarray, "H W 3"]:
    """Draw shaded meshes (camera frame, metres) over a photo taken with intrinsics ``K``.

    Per mesh ``i``, the albedo is ``colormap(vertex_values[i], cmap)`` when given (e.g. a
    per-vertex contact probability in ``[0, 1]``), else ``colors[i]`` (an RGB triple or a
    ``(Vi, 3)`` array), else a default palette colour. Meshes occlude each other correctly
    (one z-buffer). Where no mesh is drawn the photo is returned unchanged.
    """
    photo = _check_photo(photo)
    if len(meshes) == 0:
        return photo.copy()
    height, width = photo.shape[:2]
    meshes = [(v.detach().to(torch.float32), f) for v, f in meshes]
    albedo = []
    for i, (v, _) in enumerate(meshes):
        values = vertex_values[i] if vertex_values is not None and i < len(vertex_values) else None
        color = colors[i] if colors is not None and i < len(colors) else None
        if values is not None:
            values = torch.as_tensor(values, dtype=torch.float32).reshape(-1)
            if values.shape[0] != v.shape[0]:
                raise InputError(
                    f"mesh {i}: vertex_values has {values.shape[0]} entries "
                    f"for {v.shape[0]} vertices"
                )
            albedo.append(colormap(values, cmap))
        elif color is not None:
            c = torch.as_tensor(color, dtype=torch.float32)
            albedo.append(c.expand(v.shape[0], 3) if c.dim() == 1 else c.reshape(v.shape[0], 3))
        else:
            albedo.append(torch.tensor(_PALETTE[i % len(_PALETTE)]).expand(v.shape[0], 3))
    vertices, faces, object_id = join_meshes(meshes)
    K = torch.as_tensor(K, dtype=torch.float32)
    with torch.no_grad():
        fragments = rasterize(vertices, faces, K, height, width, face_object_id=object_id)
        out = shade(
            fragments,
            vertices,
            faces,
            K,
            vertex_colors=torch.cat(albedo),
            light=light,
            background=0.0,
        )
    return composite(photo, out.rgb, out.alpha, opacity=opacity)


def save_png(path: str | os.PathLike, image: Tensor | np.ndarray) -> Path:
    """Write an image as PNG atomically (temporary file in the same folder, then rename).

    Accepts uint8 or ``[0, 1]`` float images, ``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)``,
    numpy or torch. A reader never sees a half-written file; an existing file is replaced.
    Returns the path written.
    """
    path = Path(path)
    array = to_uint8(image)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise InputError(f"cannot save an image of shape {array.shape} as PNG")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            Image.fromarray(np.ascontiguousarray(array)).save(handle, format="PNG")
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; an image is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _check_photo(photo: np.ndarray) -> np.ndarray:
    photo = np.asarray(photo)
    if photo.ndim != 3 or photo.shape[-1] != 3 or photo.dtype != np.uint8:
        raise InputError(f"photo must be an (H, W, 3) uint8 array, got {photo.shape} {photo.dtype}")
    return photo
