"""A deliberately simple reference rasterizer: one Python iteration per triangle.

Used as the test oracle of :func:`handface.render.rasterize` and as the baseline of its
``speedup_vs_reference`` bench figure. Each triangle is tested against the pixel centres of its
bounding box (vectorized with numpy over those pixels only) and written into a z-buffer where it
is strictly nearer, so ties keep the lower face index, as in the fast path. Edge functions are
written in their textbook form, independently of the fast path's canonical-edge formulation;
pixels exactly on an edge follow the same documented tie rule (the pixel belongs to the triangle
that contains ``p + (eps, eps^2)``).
"""

from __future__ import annotations

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor

from handface.render.rasterizer import Fragments


@torch.no_grad()
def rasterize_reference(
    vertices_cam: Float[Tensor, "V 3"],
    faces: Int[Tensor, "F 3"],
    K: Float[Tensor, "3 3"],
    height: int,
    width: int,
    *,
    face_object_id: Int[Tensor, " F"] | None = None,
    near: float = 1e-3,
) -> Fragments:
    """Z-buffer rasterization with a Python loop over triangles (unbatched, slow, obvious).

    Same inputs, conventions and outputs as :func:`handface.render.rasterize` for one mesh.
    Computes in the dtype of ``vertices_cam``.
    """
    v = vertices_cam.detach().cpu().numpy()
    f = faces.detach().cpu().numpy().astype(np.int64)
    k = K.detach().cpu().numpy().astype(v.dtype)
    dtype = v.dtype
    z = np.maximum(v[:, 2], 1e-8)
    u = (k[0, 0] * v[:, 0] + k[0, 1] * v[:, 1]) / z + k[0, 2]
    w = k[1, 1] * v[:, 1] / z + k[1, 2]
    zbuf = np.full((height, width), np.inf, dtype=dtype)
    face_index = np.full((height, width), -1, dtype=np.int64)
    bary = np.zeros((height, width, 3), dtype=dtype)

    for fi in range(f.shape[0]):
        ids = f[fi]
        if np.any(v[ids, 2] <= near):
            continue
        px, py, pz = u[ids], w[ids], v[ids, 2]
        area2 = (px[1] - px[0]) * (py[2] - py[0]) - (py[1] - py[0]) * (px[2] - px[0])
        if area2 == 0 or not np.all(np.isfinite(px)) or not np.all(np.isfinite(py)):
            continue
        c0 = max(int(np.ceil(px.min())), 0)
        c1 = min(int(np.floor(px.max())), width - 1)
        r0 = max(int(np.ceil(py.min())), 0)
        r1 = min(int(np.floor(py.max())), height - 1)
        if c0 > c1 or r0 > r1:
            continue
        cols, rows = np.meshgrid(
            np.arange(c0, c1 + 1, dtype=dtype), np.arange(r0, r1 + 1, dtype=dtype)
        )
        # Edge i runs from vertex i+1 to vertex i+2; its value is proportional to the
        # barycentric of vertex i, positive inside once multiplied by -sign(area2).
        s = -1.0 if area2 > 0 else 1.0
        inside = np.ones(cols.shape, dtype=bool)
        e = []
        for i in range(3):
            a, b = (i + 1) % 3, (i + 2) % 3
            dx, dy = s * (px[b] - px[a]), s * (py[b] - py[a])
            ei = (cols - px[a]) * dy - (rows - py[a]) * dx
            owns = dy > 0 or (dy == 0 and dx < 0)
            inside &= (ei > 0) | ((ei == 0) & owns)
            e.append(np.maximum(ei, 0))
        if not inside.any():
            continue
        e = np.stack(e, axis=-1)
        wgt = e / pz
        depth = e.sum(-1) / wgt.sum(-1)
        rr = rows.astype(np.int64)
        cc = cols.astype(np.int64)
        nearer = inside & (depth < zbuf[rr, cc])
        rr, cc = rr[nearer], cc[nearer]
        zbuf[rr, cc] = depth[nearer]
        face_index[rr, cc] = fi
        bary[rr, cc] = wgt[nearer] / wgt[nearer].sum(-1, keepdims=True)

    object_id = None
    if face_object_id is not None:
        labels = face_object_id.detach().cpu().numpy().astype(np.int64)
        object_id = torch.from_numpy(np.where(face_index >= 0, labels[face_index], -1))
    return Fragments(
        face_index=torch.from_numpy(face_index),
        zbuf=torch.from_numpy(zbuf),
        barycentrics=torch.from_numpy(bary),
        object_id=object_id,
    )
