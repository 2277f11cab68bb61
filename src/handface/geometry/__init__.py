"""Pure tensor geometry: camera projection, distances to meshes, alignment."""

from handface.geometry.alignment import (
    ProcrustesResult,
    apply_similarity,
    chamfer_distance,
    invert_similarity,
    nearest_neighbors,
    procrustes,
)
from handface.geometry.camera import (
    intrinsics_from_fov,
    look_at,
    project_points,
    transform_points,
    unproject_points,
)
from handface.geometry.distance import (
    ClosestPointResult,
    SignedDistanceResult,
    closest_point_on_triangles,
    penetration_depth,
    point_mesh_distance,
    signed_distance,
    solid_angles,
    winding_number,
)

__all__ = [
    "ClosestPointResult",
    "ProcrustesResult",
    "SignedDistanceResult",
    "apply_similarity",
    "chamfer_distance",
    "closest_point_on_triangles",
    "intrinsics_from_fov",
    "invert_similarity",
    "look_at",
    "nearest_neighbors",
    "penetration_depth",
    "point_mesh_distance",
    "procrustes",
    "project_points",
    "signed_distance",
    "solid_angles",
    "transform_points",
    "unproject_points",
    "winding_number",
]
