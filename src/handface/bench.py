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
            hand_box = _box(_projected(frame.primary.keypoints, frame.K))
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


def bench_dice(image: Path | None = None) -> dict[str, float]:
    """Size and speed of the DICE network (``dice-small`` and the paper's ``dice``).

    On one photo (default: the first of ``examples/``, else a synthetic render) MediaPipe runs
    to frame the crop, as inference does; then, for ``dice-small``: ``params_m`` (millions),
    ``gflops`` (multiply-adds of one crop, the papers' "GFLOPs"), ``net_ms`` (median forward of
    the network alone at batch 1, parametric models included), ``predict_ms`` (what inference
    runs: the crop and its mirror in one batch of 2), ``detect_ms`` (MediaPipe on the same
    photo, same run), ``net_over_detect`` and ``predict_over_detect``; ``train_samples_per_s``
    (one full training step at batch 16 — network, objective, AdamW, discriminator step — on a
    fixed batch of crops, data loading excluded); for ``dice``: ``params_m``, ``gflops``,
    ``net_ms``; the same figures as ``dice-small`` for ``dice-small-cnn`` (the from-scratch CNN
    backbone). Untrained weights: speed does not depend on them.
    """
    import numpy as np
    import torch

    from handface.detect.images import load_image
    from handface.detect.mediapipe_detector import MediaPipeDetector
    from handface.dice.config import get_config
    from handface.dice.crops import CropConfig, crop_box
    from handface.dice.dataset import image_tensor
    from handface.dice.flops import count_flops
    from handface.dice.mirror import predict_both_hands
    from handface.dice.train import build_network

    if image is None:
        examples = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.jpg"))
        image = examples[0] if examples else None
    if image is None:  # an installed package without the repository's examples/
        import tempfile

        from handface.synth.generate import generate

        with tempfile.TemporaryDirectory() as tmp:
            data = generate(Path(tmp) / "data", num=1, seed=0, size=512, progress=False)
            rgb = load_image(data / "images" / "000000.png").rgb
    else:
        rgb = load_image(image).rgb
    detector = MediaPipeDetector()
    detections = detector(rgb)
    detect_ms = median_ms(lambda: detector(rgb), repeats=10)
    points = [f.landmarks for f in detections.faces] + [h.keypoints for h in detections.hands]
    height, width = rgb.shape[:2]
    if not points:  # nothing found: the centre square
        points = [np.array([[0.25 * width, 0.25 * height], [0.75 * width, 0.75 * height]])]
    figures: dict[str, float] = {"detect_ms": round(detect_ms, 2)}
    for name in ("dice-small", "dice-small-cnn", "dice"):
        config = get_config(name)
        net = build_network(config).eval()
        crop = crop_box(np.concatenate(points), CropConfig(size=config.input_size))
        x = image_tensor(crop.apply(rgb))[None]
        flops = count_flops(net, x)
        small = name != "dice"
        with torch.no_grad():
            net_ms = median_ms(lambda net=net, x=x: net(x), repeats=10 if small else 3)
        figures[f"{name}/params_m"] = round(flops.params / 1e6, 3)
        figures[f"{name}/gflops"] = round(flops.gmacs, 3)
        figures[f"{name}/net_ms"] = round(net_ms, 2)
        if small:
            with torch.no_grad():
                predict_ms = median_ms(lambda net=net, x=x: predict_both_hands(net, x), repeats=10)
            figures[f"{name}/predict_ms"] = round(predict_ms, 2)
            figures[f"{name}/net_over_detect"] = round(net_ms / detect_ms, 3)
            figures[f"{name}/predict_over_detect"] = round(predict_ms / detect_ms, 3)
            figures[f"{name}/train_samples_per_s"] = round(_train_rate(net, x), 2)
        del net
    return figures


def _train_rate(net, crop_image, batch_size: int = 16, steps: int = 5) -> float:
    """Samples per second of full DICE training steps on a fixed batch (targets: the template)."""
    import torch

    from handface.dice.discriminator import DiceDiscriminators
    from handface.dice.objective import DiceObjective
    from handface.dice.train import DiceStep

    templates = net.templates
    num_face, num_hand = templates.face_vertices.shape[0], templates.hand_vertices.shape[0]
    b = batch_size
    batch = {
        "image": crop_image.expand(b, -1, -1, -1).clone(),
        "face_vertices": templates.face_vertices.expand(b, -1, -1).clone(),
        "face_vertices_deformed": templates.face_vertices.expand(b, -1, -1).clone(),
        "deformation": torch.zeros(b, num_face, 3),
        "face_contact": torch.zeros(b, num_face),
        "face_keypoints3d": templates.face_keypoints.expand(b, -1, -1).clone(),
        "face_keypoints2d": torch.zeros(b, 68, 2),
        "head_rotation": templates.face_rotation.expand(b, -1, -1).clone(),
        "face_params_valid": torch.ones(b),
        "head_expression": torch.zeros(b, len(net.head_model.expression_labels)),
        "head_shape": torch.full((b, len(net.head_model.shape_labels)), 0.5),
        "has_hand": torch.ones(b),
        "hand_vertices": templates.hand_vertices.expand(b, -1, -1).clone(),
        "hand_contact": torch.zeros(b, num_hand),
        "hand_keypoints3d": templates.hand_keypoints.expand(b, -1, -1).clone(),
        "hand_keypoints2d": torch.zeros(b, 21, 2),
        "hand_params_valid": torch.ones(b),
        "hand_rotation": templates.hand_rotation.expand(b, -1, -1).clone(),
        "hand_articulation": torch.zeros(b, 20),
        "hand_shape": torch.full((b, 6), 0.5),
    }
    discriminators = DiceDiscriminators(
        net.head_model, net.hand_model, net.config.discriminator_hidden
    )
    step = DiceStep(
        net,
        discriminators,
        DiceObjective(net),
        torch.optim.AdamW(net.parameters(), lr=1e-4),
        torch.optim.AdamW(discriminators.parameters(), lr=1e-4),
        grad_clip=1.0,
    )
    step(batch, 0)  # warm-up
    start = time.perf_counter()
    for i in range(steps):
        step(batch, i + 1)
    return steps * batch_size / (time.perf_counter() - start)


BENCHMARKS["dice"] = bench_dice


def bench_methods(
    num: int = 300,
    seed: int = 777,
    data: Path | None = None,
    out: Path | None = None,
    checkpoint: Path | None = None,
) -> dict[str, float]:
    """fit, dice and hybrid on the same fresh synthetic images, through the real detector.

    Renders ``num`` samples (512 px) with ``seed`` (never used in training or tuning: one and
    two hands, a quarter without contact), or scores the synthetic dataset ``data``; captures
    each image with every method (known intrinsics, as Decaf's evaluation) and scores them with
    ``handface eval``. Per method (``<method>_<figure>``): every figure of ``bench fit``,
    ``s_per_image`` (median capture + save time over all images), ``s_over_detect`` (that
    over MediaPipe's median time on the same images, same run), ``num_no_face``; for dice also
    ``network_images_per_s`` (the network alone, the mirrored pair of crops). ``checkpoint``:
    DICE weights (default: the shipped network).
    """
    import statistics
    import tempfile
    import time

    from handface.data.synth import read_meta
    from handface.detect.images import load_image
    from handface.dice.predictor import DicePredictor
    from handface.eval.folders import evaluate_folders
    from handface.fit.evaluation import REPORTED_KEYS, capture_dataset
    from handface.fit.single_image import Reconstructor
    from handface.hybrid import HybridReconstructor
    from handface.synth.generate import generate

    rendered = data is None
    figures: dict[str, float] = {"seed": seed, "num": num} if rendered else {}
    with tempfile.TemporaryDirectory(prefix="handface-bench-methods-") as tmp:
        if rendered:
            data = generate(Path(tmp) / "data", num=num, seed=seed, size=512, workers=2)
        data = Path(data)
        dice = DicePredictor(checkpoint)
        methods = {
            "fit": Reconstructor(detector=dice.detector),
            "dice": dice,
            "hybrid": HybridReconstructor(checkpoint, detector=dice.detector),
        }
        detect_times = []
        for item in read_meta(data)["items"]:
            rgb = load_image(data / "images" / f"{item['key']}.png").rgb
            start = time.perf_counter()
            dice.detector(rgb)
            detect_times.append(time.perf_counter() - start)
        detect_s = statistics.median(detect_times)
        figures["detect_s"] = round(detect_s, 4)
        root = Path(out) if out is not None else Path(tmp) / "pred"
        for name, method in methods.items():
            folder = root / name
            timing = capture_dataset(data, folder, name, reconstructor=method)
            scores = evaluate_folders(folder, data, allow_missing=True).figures
            for key in REPORTED_KEYS:
                figures[f"{name}_{key}"] = float(scores[key])
            figures[f"{name}_s_per_image"] = round(timing["s_per_image_all"], 4)
            figures[f"{name}_s_over_detect"] = round(timing["s_per_image_all"] / detect_s, 3)
            figures[f"{name}_num_no_face"] = float(timing["num_no_face"])
            figures[f"{name}_num_scored"] = float(scores["num_frames"])
            if name == "dice":
                figures["dice_network_images_per_s"] = round(1.0 / timing["network_s"], 2)
    return figures


BENCHMARKS["methods"] = bench_methods


def bench_photos(data: Path | None = None, checkpoint: Path | None = None) -> dict:
    """fit, dice and hybrid on labelled real photos: the contact verdict per photo and method.

    ``data``: a folder with ``labels.csv`` (columns ``file``, ``hand_face_contact`` — ``yes``,
    ``no``, ``borderline`` or ``no face`` — and ``notes``; default: ``../shared/media`` next
    to the repository). Per photo and method (``<photo>/<method>``): the verdict (``touching``
    with the touching sides, or ``no contact``), the hands found and by whom (``detector`` or
    ``network``), and the seconds; per method ``<method>_agree_yes`` / ``<method>_agree_no``:
    the share of ``yes`` photos called touching and of ``no`` photos called not touching.
    """
    import csv
    import time

    from handface.dice.predictor import DicePredictor
    from handface.errors import HandfaceError
    from handface.fit.single_image import Reconstructor
    from handface.hybrid import HybridReconstructor

    if data is None:
        data = Path(__file__).resolve().parents[3] / "shared" / "media"
    labels_file = Path(data) / "labels.csv"
    if not labels_file.is_file():
        from handface.errors import InputError

        raise InputError(f"{labels_file} is missing; give --data a folder with labels.csv")
    with labels_file.open() as handle:
        rows = list(csv.DictReader(handle))
    dice = DicePredictor(checkpoint)
    methods = {
        "fit": Reconstructor(detector=dice.detector),
        "dice": dice,
        "hybrid": HybridReconstructor(checkpoint, detector=dice.detector),
    }
    figures: dict = {}
    agree = {name: {"yes": [], "no": []} for name in methods}
    for row in rows:
        label = row["hand_face_contact"].strip()
        name = Path(row["file"]).stem.split("_")[0]
        for method_name, method in methods.items():
            start = time.perf_counter()
            try:
                capture = method(Path(data) / row["file"])
            except HandfaceError as error:
                figures[f"{name}/{method_name}"] = f"error: {error}"
                continue
            seconds = time.perf_counter() - start
            touching = sorted(side for side, hand in capture.hands.items() if hand.touching)
            found = ", ".join(
                f"{side} ({hand.found_by})" for side, hand in sorted(capture.hands.items())
            )
            verdict = f"touching {'+'.join(touching)}" if touching else "no contact"
            where = f" [{', '.join(capture.touched_regions)}]" if touching else ""
            figures[f"{name}/{method_name}"] = (
                f"{label}: {verdict}{where}; face {'yes' if capture.face else 'no'}; "
                f"hands: {found or 'none'}; {seconds:.1f} s"
            )
            if label in agree[method_name]:
                agree[method_name][label].append(bool(touching) == (label == "yes"))
    for method_name, votes in agree.items():
        for label, hits in votes.items():
            if hits:
                figures[f"{method_name}_agree_{label}"] = sum(hits) / len(hits)
    return figures


BENCHMARKS["photos"] = bench_photos


def _sequence_vertices(folder: Path, keys: list[str], name: str):
    """(T, N, 3) of array ``name`` from the saved captures ``folder/<key>/params.npz`` (NaN
    where a frame has no capture or no such part)."""
    import numpy as np

    rows, size = [], None
    for key in keys:
        path = folder / key / "params.npz"
        value = None
        if path.is_file():
            with np.load(path) as data:
                value = data[name] if name in data.files else None
        rows.append(value)
        size = size if value is None else value.shape
    if size is None:
        return np.full((len(keys), 0, 3), np.nan)
    return np.stack([np.full(size, np.nan) if r is None else r for r in rows])


def _temporal_figures(folder: Path, data, keys: list[str]) -> dict[str, float]:
    """accel_err_mm (face and each true hand, pooled per part), and the touching verdicts."""
    import json

    import numpy as np
    import torch

    from handface.eval.temporal import acceleration_error, contact_flips_per_100

    samples = [data[data.index_of(key)] for key in keys]

    def error(name: str, gt: np.ndarray) -> float:
        pred = _sequence_vertices(folder, keys, name)
        if not pred.shape[1]:
            return float("nan")
        valid = torch.as_tensor(np.isfinite(pred).all(axis=(1, 2)))
        return acceleration_error(torch.as_tensor(np.nan_to_num(pred)), torch.as_tensor(gt), valid)

    errors = [
        error(
            "face_vertices_deformed", np.stack([s.face_vertices_deformed.numpy() for s in samples])
        )
    ]
    flips_pred, flips_gt = [], []
    for side in sorted(samples[0].hands):
        errors.append(
            error(
                f"hand_{side}_vertices", np.stack([s.hands[side].vertices.numpy() for s in samples])
            )
        )
        truth = np.array([bool(s.hands[side].contact.max() > 0.5) for s in samples])
        said = []
        for key in keys:
            path = folder / key / "result.json"
            hands = json.loads(path.read_text())["hands"] if path.is_file() else {}
            said.append(bool(hands.get(side, {}).get("touching", False)))
        flips_pred.append(contact_flips_per_100(np.array(said)))
        flips_gt.append(contact_flips_per_100(truth))
    finite = [e for e in errors if np.isfinite(e)]
    return {
        "accel_err_mm": 1000.0 * float(np.mean(finite)) if finite else float("nan"),
        "contact_flips_per_100": float(np.mean(flips_pred)) if flips_pred else float("nan"),
        "gt_contact_flips_per_100": float(np.mean(flips_gt)) if flips_gt else float("nan"),
    }


def bench_track(
    num: int = 20,
    seed: int = 909,
    data: Path | None = None,
    out: Path | None = None,
    frames: int = 60,
    method: str = "fit",
    checkpoint: Path | None = None,
) -> dict[str, float]:
    """Per-frame ``reconstruct`` against ``track`` on the same fresh synthetic sequences.

    Renders ``num`` approach -> press -> hold -> release sequences of ``frames`` frames (384 px,
    ``seed`` never used for training or tuning), or scores the sequence dataset ``data``; each
    frame is captured by the fit on its own, and each sequence by the tracker (known
    intrinsics, as Decaf's evaluation). Per method (``frame_*``, ``track_*``): every figure of
    ``bench fit`` (scored by ``handface eval``), ``accel_err_mm`` (face and hand vertices),
    ``contact_flips_per_100`` (with the ground truth's own as ``gt_contact_flips_per_100``),
    ``s_per_frame`` (capture time, saving excluded), ``fps`` and ``s_over_detect`` (that over
    MediaPipe's time per frame in the same run). ``method`` (fit, dice or hybrid; DICE weights
    ``checkpoint``, default the shipped network) is both the per-frame capture and the tracker.
    """
    import tempfile
    import time

    import numpy as np
    import torch
    from tqdm import tqdm

    from handface.data.synth import SynthDataset, read_meta
    from handface.errors import HandfaceError, InputError
    from handface.eval.folders import evaluate_folders
    from handface.fit.evaluation import REPORTED_KEYS
    from handface.io.capture_folder import save_capture
    from handface.synth.generate import generate

    rendered = data is None
    if method not in ("fit", "dice", "hybrid"):
        raise InputError(f"bench track --method {method}: choose fit, dice or hybrid")
    figures: dict[str, float] = {"seed": seed, "num": num, "frames": frames} if rendered else {}
    figures["method"] = method
    with tempfile.TemporaryDirectory(prefix="handface-bench-track-") as tmp:
        if rendered:
            data = generate(Path(tmp) / "data", num=num, seed=seed, frames=frames, size=384,
                            workers=2)  # fmt: skip
        data = Path(data)
        dataset = SynthDataset(data)
        sequences: dict[int, list[str]] = {}
        for item in read_meta(data)["items"]:
            sequences.setdefault(int(item["sequence"]), []).append(item["key"])
        root = Path(out) if out is not None else Path(tmp) / "pred"
        timing = {"frame": [0.0, 0.0, 0], "track": [0.0, 0.0, 0]}  # seconds, detect s, frames
        reconstructor, make_tracker = _track_bench_methods(method, checkpoint)

        temporal: dict[str, list[dict[str, float]]] = {"frame": [], "track": []}
        for keys in tqdm(list(sequences.values()), desc="bench track", unit="sequence"):
            keys = sorted(keys)
            K = torch.as_tensor(dataset[dataset.index_of(keys[0])].K, dtype=torch.float64)
            # per frame: the single-image fit
            for key in keys:
                start = time.perf_counter()
                try:
                    capture = reconstructor(data / "images" / f"{key}.png", K=K)
                except HandfaceError:
                    continue
                timing["frame"][0] += time.perf_counter() - start
                timing["frame"][1] += capture.timings.get("detect_s", 0.0)
                timing["frame"][2] += 1
                if capture.face is not None:
                    save_capture(capture, root / "frame" / key, overwrite=True)
            # the tracker, over the sequence
            saving = [0.0]
            by_index = {int(key.split("_")[1]): key for key in keys}

            def sink(frame, capture, status, saving=saving, by_index=by_index) -> None:
                tick = time.perf_counter()
                if capture.face is not None:
                    save_capture(capture, root / "track" / by_index[frame.index], overwrite=True)
                saving[0] += time.perf_counter() - tick

            paths = [data / "images" / f"{key}.png" for key in keys]
            start = time.perf_counter()
            try:
                sequence = make_tracker().run(
                    _frames_of(paths, 30.0), fps=30.0, K=K, sink=sink, progress=False
                )
            except HandfaceError:
                continue
            timing["track"][0] += time.perf_counter() - start - saving[0]
            timing["track"][1] += sequence.timings["detect_s_per_frame"] * len(sequence)
            timing["track"][2] += len(sequence)
            for method in ("frame", "track"):
                temporal[method].append(_temporal_figures(root / method, dataset, keys))
        for method in ("frame", "track"):
            scores = evaluate_folders(root / method, data, allow_missing=True).figures
            for key in REPORTED_KEYS:
                figures[f"{method}_{key}"] = float(scores[key])
            figures[f"{method}_num_scored"] = float(scores["num_frames"])
            for key in ("accel_err_mm", "contact_flips_per_100", "gt_contact_flips_per_100"):
                values = [t[key] for t in temporal[method] if np.isfinite(t[key])]
                figures[f"{method}_{key}"] = round(float(np.mean(values)), 3) if values else None
            seconds, detect, count = timing[method]
            per_frame = seconds / max(count, 1)
            figures[f"{method}_s_per_frame"] = round(per_frame, 4)
            figures[f"{method}_fps"] = round(1.0 / per_frame, 3) if per_frame > 0 else None
            figures[f"{method}_s_over_detect"] = round(seconds / max(detect, 1e-9), 3)
    return figures


def _track_bench_methods(method: str, checkpoint: Path | None):
    """The per-frame capture of ``method`` and a factory of its tracker (one per sequence:
    MediaPipe's video mode tracks across the frames it is given)."""
    from handface.detect.mediapipe_detector import MediaPipeDetector
    from handface.track.tracker import TrackConfig, Tracker

    if method == "fit":
        from handface.fit.single_image import Reconstructor

        return Reconstructor(), lambda: Tracker(
            TrackConfig(), detector=MediaPipeDetector(video_mode=True)
        )
    from handface.dice.predictor import DicePredictor

    predictor = DicePredictor(checkpoint)
    if method == "dice":
        from handface.track.dice_track import DiceTracker

        return predictor, lambda: DiceTracker(
            predictor=predictor, detector=MediaPipeDetector(video_mode=True)
        )
    from handface.hybrid import HybridReconstructor, dice_guide

    return HybridReconstructor(checkpoint), lambda: Tracker(
        TrackConfig(), guide=dice_guide(predictor), detector=MediaPipeDetector(video_mode=True)
    )


def _frames_of(paths: list[Path], fps: float):
    """The frames of one sequence of a dataset: its images, in order."""
    from handface.detect.images import load_image
    from handface.detect.video import VideoFrame

    for index, path in enumerate(paths):
        yield VideoFrame(index=index, time_s=index / fps, rgb=load_image(path).rgb)


BENCHMARKS["track"] = bench_track


def bench_avatar(
    num: int = 1,
    seed: int = 2468,
    frames: int = 100,
    data: Path | None = None,
    basis_samples: int = 60,
    avatar_config=None,
    out: Path | None = None,
) -> dict[str, float]:
    """The avatar on synthetic videos with known geometry (METHOD.md §4's evaluation).

    Renders ``num`` sequences of ``frames`` frames at 256² (seed ``seed``; or scores the
    sequence dataset ``data``), builds an avatar from each with known intrinsics, holding out
    every 5th frame's pixels, and scores four variants of its hand deformation: ``none``,
    ``pca_tracked`` (the tracker's soft-tissue deformation projected on the dataset basis: PCA
    without the contact loss), ``full`` (codes trained with the contact loss on a dataset
    basis, the paper's recipe, learned here from ``basis_samples`` fresh synthetic contact
    samples) and ``full_subject`` (the subject-specific basis, the default). Per variant:
    ``psnr`` and ``ssim`` in the true face region of the held-out frames, ``face_err_mm`` (face
    vertices against the true deformed face), ``deform_err_mm`` (where the true deformation
    exceeds 0.5 mm), ``col_dist_mm`` and ``non_collision`` (the avatar's hands against its
    deformed face); and ``minutes`` (build time per sequence), ``render_fps``.
    ``avatar_config`` (an :class:`~handface.avatar.build.AvatarConfig`) replaces the defaults.
    ``out``: keep each avatar (``out/avatar0``, ...) and its picture sheet
    (``out/avatar_sheet0.png``: held-out frames against the truth, true and learned
    deformation; :mod:`handface.viz.avatar_sheet`).
    """
    import tempfile
    import time

    import numpy as np
    import torch

    from handface.avatar.build import AvatarConfig, build_avatar
    from handface.avatar.deformation_basis import fit_basis, load_deformations
    from handface.avatar.hand_deformation import fit_hand_deformation
    from handface.data.synth import SynthDataset, read_meta
    from handface.errors import InputError
    from handface.models import AnnyHandModel, default_head_model
    from handface.synth.generate import generate

    if frames < 10 and data is None:
        raise InputError(f"bench avatar needs at least 10 frames per sequence, got {frames}")
    figures: dict[str, float] = {}
    config = avatar_config or AvatarConfig()
    head_model = default_head_model()
    hand_models = {side: AnnyHandModel(side) for side in ("left", "right")}
    with tempfile.TemporaryDirectory(prefix="handface-bench-avatar-") as tmp:
        root = Path(tmp)
        if data is None:
            data = generate(root / "data", num=num, seed=seed, frames=frames, size=256,
                            workers=2, progress=False)  # fmt: skip
            figures.update({"seed": seed, "num": num, "frames": frames})
        pool = generate(root / "basis", num=basis_samples, seed=seed + 1, size=128, workers=2,
                        progress=False)  # fmt: skip
        train, _ = load_deformations(pool, heldout_every=0, progress=False)
        dataset_basis = fit_basis(train, torch.zeros(0, *train.shape[1:]), 30)
        dataset = SynthDataset(Path(data))
        sequences: dict[int, list[str]] = {}
        for item in read_meta(Path(data))["items"]:
            sequences.setdefault(int(item["sequence"]), []).append(item["key"])
        scores: dict[str, dict[str, list[float]]] = {}
        minutes, render_seconds, rendered = [], 0.0, 0
        for number, keys in enumerate(sorted(sequences.values())):
            keys = sorted(keys)
            folder = root / f"frames{number}"
            folder.mkdir()
            for i, key in enumerate(keys):
                (folder / f"{i:05d}.png").symlink_to(Path(data) / "images" / f"{key}.png")
            K = dataset[dataset.index_of(keys[0])].K.numpy()
            tick = time.perf_counter()
            avatar = build_avatar(
                folder, config=config, K=K, fps=30.0, heldout_every=5, progress=False,
                head_model=head_model,
            )  # fmt: skip
            minutes.append((time.perf_counter() - tick) / 60.0)
            contact = avatar.contact_frames(head_model, hand_models)
            with_dataset = fit_hand_deformation(
                contact, head_model.faces, dataset_basis, config.hand_deformation
            )
            tracked = torch.as_tensor(avatar.tracked_deformation)
            variants = {
                "none": torch.zeros_like(tracked),
                "pca_tracked": dataset_basis.apply(dataset_basis.project(tracked)),
                "full": with_dataset.displacements().float(),
                "full_subject": avatar.deformation.displacements().float(),
            }
            for name, deltas in variants.items():
                part = scores.setdefault(name, {})
                for key, value in _avatar_frame_scores(
                    avatar, deltas, dataset, keys, head_model, hand_models
                ).items():
                    part.setdefault(key, []).extend(value)
            if out is not None:
                from handface.avatar.folder import save_avatar

                Path(out).mkdir(parents=True, exist_ok=True)
                save_avatar(avatar, Path(out) / f"avatar{number}", head_model, overwrite=True)
                _avatar_sheet(avatar, dataset, keys, head_model, hand_models).save(
                    Path(out) / f"avatar_sheet{number}.png"
                )
            tick = time.perf_counter()
            for t in range(len(avatar)):
                avatar.render(head_model, hand_models, t)
            render_seconds += time.perf_counter() - tick
            rendered += len(avatar)
    for name, part in scores.items():
        for key, values in part.items():
            finite = [v for v in values if np.isfinite(v)]
            figures[f"{name}_{key}"] = round(float(np.mean(finite)), 4) if finite else None
    figures["minutes"] = round(float(np.mean(minutes)), 3)
    figures["render_fps"] = round(rendered / max(render_seconds, 1e-9), 2)
    return figures


BENCHMARKS["avatar"] = bench_avatar


def bench_soak(num: int = 500, minutes: float = 10.0) -> dict[str, float]:
    """Memory under load (:mod:`handface.soak`): ``reconstruct`` of ``num`` photos in one
    call, one 12000 x 9000 JPEG, ``track`` of a ``minutes``-long 1080p video."""
    from handface.soak import bench_soak as soak

    return soak(num=num, minutes=minutes)


BENCHMARKS["soak"] = bench_soak


def _true_face_region(truth, face_triangles):
    """(H, W) bool: the pixels where the true face (skin, lips, nose, eyes) is visible."""
    from handface.render.rasterizer import Scene

    meshes = [(truth.face_vertices_deformed.float(), truth.face_faces)]
    meshes += [(h.vertices.float(), h.faces) for h in truth.hands.values()]
    height, width = truth.image.shape[:2]
    fragments = Scene.from_meshes(meshes).rasterize(truth.K.float(), height, width)
    # object 0 is the face, whose triangles come first in the joined scene
    triangle = fragments.face_index.clamp(0, len(face_triangles) - 1)
    return (fragments.object_id == 0) & face_triangles[triangle]


def _avatar_sheet(avatar, dataset, keys, head_model, hand_models):
    """Three held-out frames (photo, re-render, error) and the two frames of deepest true
    deformation (photo, true and learned |D|) of one avatar."""
    import numpy as np
    import torch

    from handface.eval.image_metrics import masked_psnr
    from handface.models.regions import load_face_regions
    from handface.viz.avatar_sheet import avatar_sheet, error_panel, square_box
    from handface.viz.deformation_maps import heatmap_view

    face = load_face_regions().mask("face_skin", "lips", "nose", "eyes")
    face_triangles = face[head_model.faces].all(dim=1)
    truths = [dataset[dataset.index_of(keys[int(i)])] for i in avatar.frame_index]
    held = [t for t in range(len(avatar)) if int(avatar.frame_index[t]) % 5 == 0]
    chosen = [held[i] for i in np.linspace(0, len(held) - 1, min(3, len(held))).round().astype(int)]
    rows = []

    def face_box(truth):
        points = truth.face_vertices_deformed.double() @ truth.K.double().T
        return square_box((points[:, :2] / points[:, 2:]).numpy())

    for t in dict.fromkeys(chosen):
        truth = truths[t]
        photo = (truth.image.clamp(0, 1).numpy() * 255).round().astype(np.uint8)
        rendered = avatar.render(head_model, hand_models, t)
        region = _true_face_region(truth, face_triangles)
        psnr = masked_psnr(torch.as_tensor(rendered).float() / 255, truth.image.float(), region)
        caption = (f"frame {int(avatar.frame_index[t])}, held out: photo, avatar, colour error "
                   f"in the face region (black 0 to white 0.25); {psnr:.1f} dB")  # fmt: skip
        panels = [photo, rendered, error_panel(rendered, photo, region.numpy())]
        rows.append({"panels": panels, "caption": caption, "crop": face_box(truth)})
    depth = [float(truth.deformation.norm(dim=-1).max()) for truth in truths]
    size = avatar.image_size[0]
    for t in sorted(np.argsort(depth)[::-1][:2].tolist()):
        if depth[t] <= 0.0:
            continue
        truth = truths[t]
        scale = max(1.0, 1000.0 * depth[t])
        learned = avatar.deformation.displacement(t)
        learned_mm = 1000.0 * float(learned.norm(dim=-1).max())
        head = avatar.head_vertices(head_model, t)
        hands = [(v, f) for _, v, f in avatar.hand_meshes(hand_models, t)]
        true_hands = [(h.vertices, h.faces) for h in truth.hands.values()]
        rows.append({
            "panels": [
                (truth.image.clamp(0, 1).numpy() * 255).round().astype(np.uint8),
                heatmap_view(truth.face_vertices_deformed, truth.face_faces, truth.deformation,
                             true_hands, truth.K, size, scale),
                heatmap_view(head, head_model.faces, learned, hands,
                             torch.as_tensor(avatar.K), size, scale),
            ],
            "caption": f"frame {int(avatar.frame_index[t])}: photo, true |D|, the avatar's |D| "
                       f"(0 to {scale:.1f} mm; the avatar's largest {learned_mm:.1f} mm)",
            "crop": face_box(truth),
        })  # fmt: skip
    return avatar_sheet(rows, size)


def _avatar_frame_scores(avatar, deltas, dataset, keys, head_model, hand_models):
    """Per-frame figures of one deformation variant (see :func:`bench_avatar`)."""
    import torch

    from handface.eval.image_metrics import masked_psnr, masked_ssim
    from handface.eval.metrics import collision_distance, deformation_error
    from handface.geometry.contact import COLLISION_DEPTH, penetration_depth
    from handface.models.regions import load_face_regions

    face = load_face_regions().mask("face_skin", "lips", "nose", "eyes")
    face_triangles = face[head_model.faces].all(dim=1)
    out: dict[str, list[float]] = {k: [] for k in ("psnr", "ssim", "face_err_mm", "deform_err_mm",
                                                   "col_dist_mm", "non_collision")}  # fmt: skip
    for t in range(len(avatar)):
        index = int(avatar.frame_index[t])
        truth = dataset[dataset.index_of(keys[index])]
        delta = deltas[t]
        head = avatar.head_vertices(head_model, t, displacement=delta)
        error = (head.double() - truth.face_vertices_deformed.double()).norm(dim=-1)[face]
        out["face_err_mm"].append(1000.0 * float(error.mean()))
        region = truth.deformation.norm(dim=-1) > 0.0005
        if bool(region.any()):
            out["deform_err_mm"].append(
                1000.0
                * float(deformation_error(delta.double(), truth.deformation.double(), region))
            )
        hands = avatar.hand_meshes(hand_models, t)
        if hands:
            depths = torch.cat([penetration_depth(v.double(), head.double(), head_model.faces)
                                for _, v, _ in hands])  # fmt: skip
            out["col_dist_mm"].append(1000.0 * float(collision_distance(depths)))
            out["non_collision"].append(100.0 * float(not bool((depths > COLLISION_DEPTH).any())))
        if index % 5 == 0:  # held out of the appearance and pose fits
            in_face = _true_face_region(truth, face_triangles)
            if bool(in_face.any()):
                image = avatar.render(head_model, hand_models, t, displacement=delta)
                rendered = torch.as_tensor(image).float() / 255.0
                target = truth.image.float()
                out["psnr"].append(masked_psnr(rendered, target, in_face))
                out["ssim"].append(masked_ssim(rendered, target, in_face))
    return out
