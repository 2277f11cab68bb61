"""CPU rasterizer: hard z-buffer pass + differentiable, perspective-correct interpolation.

Typical use (differentiable depth and shading of a head and a hand)::

    from handface.render import Scene, rasterize, shade
    scene = Scene.from_meshes([(head_vertices, head_faces), (hand_vertices, hand_faces)])
    fragments = scene.rasterize(K, height, width)          # no grad: which face, which object
    out = shade(fragments, scene.vertices, scene.faces, K)  # grad to vertices, colours, texture
    out.rgb, out.depth, out.normals, fragments.object_id    # object_id: 0 head, 1 hand, -1 bg

Conventions: OpenCV camera (x right, y down, z forward), metres, pixel ``(col, row)`` centred
at ``(u, v) = (col, row)``; see :mod:`handface.geometry.camera`.
"""

from handface.render.interpolate import (
    PixelBarycentrics,
    interpolate_at_pixels,
    interpolate_face_attributes,
    interpolate_vertex_attributes,
    pixel_barycentrics,
    scatter_to_image,
)
from handface.render.overlay import (
    COLORMAPS,
    colormap,
    composite,
    overlay_meshes,
    save_png,
    to_uint8,
)
from handface.render.rasterizer import Fragments, Scene, join_meshes, rasterize
from handface.render.reference import rasterize_reference
from handface.render.shading import (
    DirectionalLight,
    RenderOutput,
    render,
    render_depth,
    render_mask,
    render_normals,
    sample_texture,
    shade,
    vertex_normals,
)

__all__ = [
    "COLORMAPS",
    "DirectionalLight",
    "Fragments",
    "PixelBarycentrics",
    "RenderOutput",
    "Scene",
    "colormap",
    "composite",
    "interpolate_at_pixels",
    "interpolate_face_attributes",
    "interpolate_vertex_attributes",
    "join_meshes",
    "overlay_meshes",
    "pixel_barycentrics",
    "rasterize",
    "rasterize_reference",
    "render",
    "render_depth",
    "render_mask",
    "render_normals",
    "sample_texture",
    "save_png",
    "scatter_to_image",
    "shade",
    "to_uint8",
    "vertex_normals",
]
