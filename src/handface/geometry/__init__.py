"""Pure tensor geometry: camera projection, distances to meshes, normals, alignment, and the
one definition of hand-face contact (:mod:`handface.geometry.contact`)."""

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
from handface.geometry.contact import (
    CONTACT_DISTANCE,
    contact_labels,
    contact_probability,
    penetration_depth,
    surface_signed_distance,
    touching,
)
from handface.geometry.distance import (
    ClosestPointResult,
    SignedDistanceResult,
    closest_point_on_triangles,
    faces_near,
    point_mesh_distance,
    signed_distance,
    solid_angles,
    winding_number,
)
from handface.geometry.mesh_sampling import (
    MeshSampling,
    compute_mesh_sampling,
    farthest_point_sampling,
    mirror_correspondence,
    mirror_label_permutation,
)
from handface.geometry.normals import face_normals, vertex_normals

__all__ = [
    "ClosestPointResult",
    "ProcrustesResult",
    "SignedDistanceResult",
    "apply_similarity",
    "chamfer_distance",
    "CONTACT_DISTANCE",
    "closest_point_on_triangles",
    "compute_mesh_sampling",
    "contact_labels",
    "contact_probability",
    "face_normals",
    "faces_near",
    "farthest_point_sampling",
    "intrinsics_from_fov",
    "invert_similarity",
    "look_at",
    "MeshSampling",
    "mirror_correspondence",
    "mirror_label_permutation",
    "nearest_neighbors",
    "penetration_depth",
    "point_mesh_distance",
    "procrustes",
    "project_points",
    "signed_distance",
    "solid_angles",
    "surface_signed_distance",
    "touching",
    "transform_points",
    "unproject_points",
    "vertex_normals",
    "winding_number",
]
