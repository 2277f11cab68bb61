"""The ``handface`` command line: one entry point, one subcommand per job (tyro).

Thin by design: every subcommand parses its options into a dataclass and calls library code.
User mistakes (:class:`handface.errors.HandfaceError`) are printed as one line on stderr with
exit code 2, never as a traceback.
"""

from __future__ import annotations

import json
import re
import signal
import sys
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import tyro

from handface import console, interrupt
from handface.errors import HandfaceError

DESCRIPTION = (
    "handface: 3D hand-face interaction capture (meshes, contact, deformation) on a CPU. "
    "Every command takes --verbose (before or after its name) to show the logs of MediaPipe, "
    "TFLite and other libraries, hidden by default."
)


@dataclass
class Bench:
    """Measure a speed or quality figure and print it (JSON with --json).

    Benchmarks: geometry (signed distance of a hand against the head), render (rasterizer
    forward + backward), landmarks (embedded landmarks against MediaPipe on held-out renders),
    synth (synthetic data speed, physics time, MediaPipe detection rates on contact samples),
    fit (single-image capture through the real detector on synthetic images, separate vs full),
    dice (DICE network size, speed against MediaPipe, training samples/s), methods (fit, dice
    and hybrid on the same fresh synthetic images through the real detector), track (per-frame
    reconstruct against track on fresh synthetic sequences: per-frame metrics, accel_err_mm,
    contact flips, speed), avatar (avatars of synthetic videos with known geometry: held-out
    PSNR/SSIM in the face region, face and deformation error, collisions, for four deformation
    variants; build minutes and render_fps), soak (memory under load: reconstruct of --num
    photos in one call, RSS and peak after 100 (a fifth of fewer than 500) and at the end; one
    12000x9000 JPEG's peak; track of a --minutes-long 1080p video, RSS over time).
    """

    name: tyro.conf.Positional[str]
    """Which benchmark to run: geometry, render, landmarks, synth, fit, dice, methods, photos,
    track, avatar or soak."""
    json: bool = False
    """Print one JSON object instead of a table."""
    num: int | None = None
    """fit, methods, track, avatar: number of synthetic samples (sequences) to render (default
    200, 300, 20, 1); soak: number of photos reconstructed in one call (default 500)."""
    seed: int | None = None
    """fit, methods, track, avatar: seed of the synthetic data (default 404, 777, 909, 2468:
    never used for training or tuning)."""
    data: Path | None = None
    """fit, methods, track: score an existing synthetic dataset instead of rendering one."""
    out: Path | None = None
    """fit, methods, track: keep the Capture folders here (default: a temporary folder);
    avatar: keep each avatar and its picture sheet (avatar_sheet0.png) here."""
    checkpoint: Path | None = None
    """methods, photos, track: DICE weights (default: the network shipped with handface)."""
    frames: int | None = None
    """track, avatar: frames per synthetic sequence (default 60, 100)."""
    method: Literal["fit", "dice", "hybrid"] | None = None
    """track: the method run per frame and tracked (default fit)."""
    minutes: float | None = None
    """soak: length of the synthetic 1080p video tracked (default 10)."""

    def main(self) -> None:
        from handface import bench

        options = {
            key: value
            for key, value in (
                ("num", self.num),
                ("seed", self.seed),
                ("data", self.data),
                ("out", self.out),
                ("checkpoint", self.checkpoint),
                ("frames", self.frames),
                ("method", self.method),
                ("minutes", self.minutes),
            )
            if value is not None
        }
        figures = bench.run(self.name, **options)
        if self.json:
            print(json.dumps(figures))
        else:
            width = max(len(key) for key in figures)
            for key, value in figures.items():
                print(
                    f"{key:<{width}}  {value:.4g}"
                    if isinstance(value, float)
                    else f"{key:<{width}}  {value}"
                )


@dataclass
class Reconstruct:
    """Capture photos of hands touching faces: face and hand meshes, contact, deformation.

    Each image gets a folder OUT/<image name>/ with result.json (contact per hand, face
    regions touched, penetration, timings, warnings), face.ply (deformed, contact as colour),
    hand_left.ply / hand_right.ply, params.npz and overlay.png (the shaded meshes over the
    photo with the contact heat map and the verdict per hand; the scene from the side and from
    above, where a hand on the face and one a few cm in front look different; the face map of
    contact and of how far it was pressed in; a legend). Videos give one frame (the middle
    one); `handface track` is for videos.

    --method fit fits the models to MediaPipe's landmarks (optimisation); --method dice runs
    the DICE network (the trained network shipped with handface, or --checkpoint); --method
    hybrid lets DICE place the hands and decide contact, then fits (handface.hybrid).

    Each folder appears whole when its image is done: Ctrl-C or SIGTERM keeps the finished
    ones and nothing of the image under way, and the same command with --resume does the rest.
    """

    images: tyro.conf.Positional[tuple[Path, ...]]
    """Image files (JPEG, PNG, ...; RGB, RGBA, grayscale, EXIF-rotated, any size)."""
    out: Path
    """Output folder; one sub-folder per image."""
    method: Literal["fit", "dice", "hybrid"] = "fit"
    """fit: optimisation on the detected landmarks; dice: the DICE network; hybrid: DICE
    guides the fit (hand placement, contact decision and hands the detector missed)."""
    checkpoint: Path | None = None
    """DICE weights for --method dice|hybrid: model.pt (or checkpoint.pt) of a `handface
    train` run (default: the network shipped with handface)."""
    mode: Literal["full", "separate"] = "full"
    """fit and hybrid. full: joint interaction refinement (depth order, contact, collision)
    and deformation; separate: independent head and hand fits only (the baseline)."""
    focal: float | None = None
    """Focal length in pixels (default: from EXIF, else a 35 mm-equivalent of 35 mm)."""
    depth: Path | None = None
    """fit only. Aligned depth map for RGB-D input (one image only): .npy in metres or a 16-bit
    PNG. 0 means no depth; NaN, infinite and negative values are treated as 0 (with a warning
    in result.json)."""
    depth_scale: float = 0.001
    """Metres per unit of a 16-bit PNG depth map (0.001: millimetres)."""
    overwrite: bool = False
    """Replace existing result folders."""
    resume: bool = False
    """Skip the images whose folder in OUT is complete (an earlier, interrupted run's) and
    capture the rest."""

    def main(self) -> None:
        from tqdm import tqdm

        from handface.api import make_reconstructor
        from handface.fit.batch import reconstruct_files
        from handface.fit.single_image import ReconstructConfig

        def report(outcome) -> None:
            if outcome.error is not None:
                tqdm.write(f"handface: error: {outcome.error}", file=sys.stderr)
            else:
                seconds = f"{outcome.seconds:.2f} s"
                overlay = outcome.folder / "overlay.png"
                tqdm.write(f"{outcome.source}: {outcome.summary} ({seconds}); overlay: {overlay}")

        from handface.errors import InputError

        if self.method == "dice" and self.depth is not None:
            raise InputError("--depth is used by --method fit|hybrid; DICE takes RGB")
        if self.method == "fit" and self.checkpoint is not None:
            raise InputError("--checkpoint goes with --method dice or hybrid")
        from handface.io.files import output_lock

        config = ReconstructConfig(mode=self.mode, focal=self.focal)
        interrupt.resume_hint("rerun with --resume to skip the images already done")
        with output_lock(self.out):  # before the models load: a second run is refused at once
            reconstructor = make_reconstructor(self.method, checkpoint=self.checkpoint,
                                               focal=self.focal, mode=self.mode)  # fmt: skip
            result = reconstruct_files(
                self.images,
                self.out,
                reconstructor=reconstructor,
                config=config,
                overwrite=self.overwrite,
                depth=self.depth,
                depth_scale=self.depth_scale,
                report=report,
                resume=self.resume,
            )
        if result.failed:
            done = len(result.outcomes) - len(result.failed)
            if len(result.outcomes) > 1:  # one image: its error line says it all
                print(
                    f"handface: {len(result.failed)} of {len(result.outcomes)} images failed "
                    f"({done} written to {self.out})",
                    file=sys.stderr,
                )
            raise SystemExit(2)


@dataclass
class Train:
    """Train the DICE network on a synthetic dataset (`handface synth`); resumable, DDP-ready.

    Writes OUT/config.json, checkpoint.pt (every few minutes, atomically), model.pt (the
    network for `handface reconstruct --method dice --checkpoint OUT/model.pt`), log.jsonl and
    loss_curve.png. Ctrl-C finishes the current step and saves. Scale out with
    `torchrun --nproc_per_node=N -m handface train ...` (gloo on CPU, nccl on GPU; the global
    batch is split over the processes).
    """

    data: list[Path]
    """One or more synthetic datasets (written by `handface synth`), trained on as one."""
    out: Path
    """Run folder (created; must not hold a run unless --resume or --overwrite)."""
    wild: Path | None = None
    """Folder of unlabelled photos for weak supervision: MediaPipe 2D keypoints (detected once,
    cached in DIR/handface_keypoints.json), an optional <name>.depth.npy per photo, and the
    label-free touch, collision and adversarial terms."""
    config: Literal["dice", "dice-small", "dice-small-cnn"] = "dice-small"
    """Network preset: dice (the paper: HRNet-W64, 224 px), dice-small (for CPUs, on MediaPipe's
    pretrained hand network) or dice-small-cnn (the same on a CNN trained from scratch)."""
    resume: bool = False
    """Continue the run in --out from its checkpoint (bit for bit)."""
    init_from: Path | None = None
    """Fine-tune: start from the network weights of an earlier run (its model.pt or
    checkpoint.pt, same --config); heads it lacks start fresh. The schedule starts anew."""
    overwrite: bool = False
    """Start a new run in --out even if it holds one."""
    train_only: tuple[str, ...] | None = None
    """Train only these parts of the network, the rest keeps its weights (with --init-from):
    backbone, tokens, meshnet, interaction (contact and deformation), face_ik, hand_ik, camera,
    hand_presence, hand_touch."""
    contact_positive_weight: float = 1.0
    """Weight of the contact vertices in the contact BCE (the paper: 1); a few percent of the
    face touches, and a weight w makes a vertex pass 0.5 at a contact rate of 1/(1+w)."""
    epochs: int = 40
    """Passes over the data (the paper: 40)."""
    max_steps: int | None = None
    """Stop after this many optimisation steps (default: all epochs)."""
    batch_size: int = 16
    """Global batch size (the paper: 16)."""
    lr: float = 6e-4
    """AdamW learning rate (the paper: 6e-4), warm-up then cosine decay."""
    weight_decay: float = 1e-4
    """AdamW weight decay (the paper: 1e-4)."""
    seed: int = 0
    """Seed of initialisation, data order, augmentation and token masking."""
    no_augment: bool = False
    """Train on the plain crops (no random scale, rotation, colour, blur, noise, occluders)."""
    checkpoint_minutes: float = 5.0
    """Save the checkpoint at least this often."""
    num_workers: int = 0
    """DataLoader worker processes."""

    def main(self) -> None:
        from handface.dice.objective import LossWeights
        from handface.dice.train import TrainOptions, train
        from handface.dice.trainer import ScheduleConfig

        options = TrainOptions(
            data=self.data,
            out=self.out,
            wild=self.wild,
            config=self.config,
            resume=self.resume,
            init_from=self.init_from,
            overwrite=self.overwrite,
            train_only=self.train_only,
            seed=self.seed,
            weights=LossWeights(contact_positive=self.contact_positive_weight),
            augment=not self.no_augment,
            schedule=ScheduleConfig(
                epochs=self.epochs,
                batch_size=self.batch_size,
                lr=self.lr,
                weight_decay=self.weight_decay,
                max_steps=self.max_steps,
            ),
            checkpoint_minutes=self.checkpoint_minutes,
            num_workers=self.num_workers,
        )
        try:
            out = train(options)
        except (KeyboardInterrupt, interrupt.Terminated) as stop:
            # Ctrl-C and SIGTERM finish the running step and save it (handface.dice.trainer)
            if not (self.out / "checkpoint.pt").is_file():
                raise  # stopped before the first step: nothing to continue
            print(
                f"training stopped; the last completed step is saved in {self.out}: continue "
                "with the same command and --resume",
                file=sys.stderr,
            )
            terminated = isinstance(stop, interrupt.Terminated)
            raise SystemExit(128 + (signal.SIGTERM if terminated else signal.SIGINT)) from None
        print(f"training run in {out.resolve()}; weights: {out / 'model.pt'}")


@dataclass
class Demo:
    """Render the Anny head with a right hand resting on its cheek; write the image and meshes."""

    out: Path = Path("outputs/demo")
    """Output folder (created; must not exist unless --overwrite)."""
    size: int = 512
    """Image width and height in pixels."""
    overwrite: bool = False
    """Replace the output folder if it already exists."""

    def main(self) -> None:
        from handface.demo import run_demo

        written = run_demo(self.out, size=self.size, overwrite=self.overwrite)
        print(f"demo written to {self.out.resolve()}:")
        for path in written:
            print(f"  {path}")


@dataclass
class Synth:
    """Generate synthetic hand-face interaction data: renders, depth, segmentation and labels.

    Each sample is a person (random head shape, expression and pose, with neck, shoulders,
    clothes and usually hair, before a cluttered or plain background) with one or, in a quarter
    of the samples, two hands in the interaction families (palm on cheek, fist under chin,
    fingertip on lips, ...), pressed 0-15 mm into the face and resolved by the soft-tissue
    solver. In a quarter of the samples no hand touches: the hands hover 8-25 mm off the skin
    (the hard negatives), stay 2.5-10 cm away, or hide part of the face from 4-15 cm in front.
    The layout is documented in handface.data.synth_layout and read by
    handface.data.SynthDataset. Output depends only on --seed (and --num with --shard), not on
    --workers or on how the run is split into shards.
    """

    out: Path
    """Output folder (created; must not exist unless --overwrite). With --shard, the folder the
    shards share. Ctrl-C or SIGTERM keeps the finished samples there (and no dataset yet: no
    meta.json); the same command again makes only the rest."""
    num: int
    """Number of samples, or of sequences with --frames > 1 (all shards together)."""
    seed: int = 0
    """Random seed; sample i is drawn from (seed, i)."""
    frames: int = 1
    """Frames per sequence; > 1 gives approach -> press -> hold -> release sequences."""
    size: int = 512
    """Image width and height in pixels."""
    workers: int = 1
    """Parallel worker processes (each uses one CPU thread)."""
    shard: str | None = None
    """Make only shard I/N (e.g. 3/8) of the --num items: run each I on its own machine or
    cluster array job with the same options and --out; the folder becomes a dataset (equal to
    one run's) when the last shard is in."""
    overwrite: bool = False
    """Replace the output folder (with --shard: this shard) if it already exists."""

    def main(self) -> None:
        from handface.synth import generate
        from handface.synth.generate import parse_shard

        shard = parse_shard(self.shard) if self.shard is not None else None
        if not self.overwrite:
            interrupt.resume_hint("the finished samples are kept: run the same command to continue")
        out = generate(
            self.out, num=self.num, seed=self.seed, frames=self.frames, size=self.size,
            workers=self.workers, overwrite=self.overwrite, shard=shard,
        )  # fmt: skip
        if shard is not None and not (out / "meta.json").exists():
            print(f"shard {shard[0]}/{shard[1]} written to {out.resolve()}")
            return
        print(f"synthetic dataset written to {out.resolve()}")


@dataclass
class Eval:
    """Score results against a synthetic dataset with the metrics of Decaf / DICE (METHOD.md §2).

    --pred is another synthetic dataset, a folder of network predictions in the same layout
    (labels/<key>.npz), or a folder of Capture results (<key>/params.npz, as written by
    `handface reconstruct`). Prints DICE-style tables (Table 1: PVE, MPJPE, PA-MPJPE,
    collision distance, non-collision, touchness, F-score; Table 2: contact scores), with the
    published Decaf-test numbers beneath for reference.
    """

    pred: Path
    """Folder of predictions."""
    gt: Path
    """Synthetic dataset with the ground truth (written by `handface synth`)."""
    json: bool = False
    """Print one JSON object (pve_mm, mpjpe_mm, pa_mpjpe_mm, col_dist_mm, non_collision,
    touchness, f_score, contact_f1_face, contact_f1_hand, deform_err_mm, and details)."""
    allow_missing: bool = False
    """Score only the items that have a prediction instead of failing (the count is reported)."""

    def main(self) -> None:
        from handface.eval.folders import evaluate_folders
        from handface.eval.tables import PUBLISHED_DECAF_TEST, format_tables

        result = evaluate_folders(
            self.pred, self.gt, allow_missing=self.allow_missing, progress=not self.json
        )
        if self.json:
            print(json.dumps(result.figures))
        else:
            print(format_tables(result.figures, references=PUBLISHED_DECAF_TEST))
            if result.missing:
                print(f"{len(result.missing)} items had no prediction and were skipped")


@dataclass
class Pca:
    """Learn the PCA basis of hand-induced face deformation (METHOD.md §4) from synthetic data.

    Uses every frame with a deformation; whole sequences (every 10th sequence id) are held out
    and the share of their deformation energy the basis explains is reported.
    """

    data: Path
    """Synthetic dataset (written by `handface synth`)."""
    out: Path = Path("basis.npz")
    """Where to write the basis (.npz with components (K, V, 3) and explained variance)."""
    components: int = 30
    """Number of basis vectors."""
    heldout_every: int = 10
    """Hold out sequences whose id is a multiple of this (0: hold out nothing)."""
    overwrite: bool = False
    """Replace --out if it exists."""

    def main(self) -> None:
        from handface.avatar.deformation_basis import fit_basis, load_deformations
        from handface.errors import InputError
        from handface.io.files import refuse_existing

        if self.components < 1:
            raise InputError(f"--components must be at least 1, got {self.components}")
        refuse_existing(self.out, self.overwrite)
        train, heldout = load_deformations(self.data, heldout_every=self.heldout_every)
        basis = fit_basis(train, heldout, self.components)
        basis.save(self.out)
        k = basis.num_components
        print(f"basis of {k} components from {basis.num_train} frames -> {self.out}")
        print(f"explained on training frames: {100 * float(basis.train_explained[-1]):.2f}%")
        print(
            f"explained on {basis.num_heldout} held-out frames: "
            f"{100 * float(basis.heldout_explained[-1]):.2f}%"
        )


@dataclass
class Track:
    """Capture a video of someone touching their face: every frame's face and hand meshes,
    contact and deformation, temporally coherent (windows of frames solved jointly, one head
    shape for the clip, smooth motion, touching verdicts that change only on evidence, hands
    the detector loses on the face bridged across short gaps).

    OUT/ holds timeline.json (per frame: touching per hand, areas touched, detector status),
    sequence.npz (all per-frame parameters, contact, deformation), overlay.mp4 (the video with
    the meshes, contact heat map and the verdict per hand; side and top views of the scene; a
    legend), contact_timeline.png and, with --meshes,
    meshes/<frame>_face.ply ... Nothing is written if tracking fails or is interrupted.
    """

    video: tyro.conf.Positional[Path]
    """A video file (mp4, mov, mkv, webm, avi, ...) or a folder of numbered frames."""
    out: Path
    """Output folder (must not exist unless --overwrite)."""
    method: Literal["fit", "dice", "hybrid"] = "fit"
    """fit: the fit decides contact from the image and size priors; dice: the DICE network on
    every frame, its meshes smoothed over time and its touch verdicts made consistent; hybrid:
    the fit, with the network's touch verdicts and contact probabilities guiding every frame."""
    checkpoint: Path | None = None
    """DICE weights for --method dice|hybrid (default: the network shipped with handface)."""
    start: int = 0
    """First frame to track (0-based)."""
    end: int | None = None
    """Stop before this frame (default: the end of the video)."""
    stride: int = 1
    """Track every K-th frame."""
    depth: Path | None = None
    """RGB-D: a folder of per-frame depth maps (.npy in metres or 16-bit PNG), the i-th file
    for video frame i."""
    depth_scale: float = 0.001
    """Metres per unit of a 16-bit PNG depth map (0.001: millimetres)."""
    focal: float | None = None
    """Focal length in pixels (default: a 35 mm-equivalent of 35 mm)."""
    fps: float | None = None
    """Frame rate of a folder of frames (default 30; videos carry their own)."""
    meshes: bool = False
    """Also write every frame's meshes (PLY, contact as vertex colour) to OUT/meshes/."""
    overwrite: bool = False
    """Replace --out if it exists (only once the new result is complete)."""

    def main(self) -> None:
        from handface.track.run import track_video

        sequence = track_video(
            self.video,
            self.out,
            start=self.start,
            end=self.end,
            stride=self.stride,
            depth=self.depth,
            depth_scale=self.depth_scale,
            method=self.method,
            checkpoint=self.checkpoint,
            focal=self.focal,
            fps=self.fps,
            meshes=self.meshes,
            overwrite=self.overwrite,
        )
        frames = len(sequence)
        touching = {
            side: int(sequence.touching(side).sum())
            for side in sorted({s for f in sequence.frames for s in f.hands})
        }
        summary = ", ".join(f"{side} hand touching in {n}" for side, n in touching.items())
        print(
            f"{self.video}: {frames} frames ({summary or 'no hand'}) in "
            f"{sequence.timings.get('total_s', 0.0):.1f} s -> {self.out}"
        )


@dataclass
class Avatar:
    """Learn a head avatar with hand contacts from one monocular video (METHOD.md §4): track the
    video, fit a UV texture and spherical-harmonics lighting to the face pixels the hands leave
    visible, simulate presses on this person's own head to make a deformation basis (or use
    --basis from `handface pca`), and train per-frame codes with the contact loss so the face
    gives way where the hands press. Re-render it with `handface avatar render AVATAR`.

    OUT/ holds avatar.json (camera, lighting, figures, what each file is), head.obj + head.mtl +
    texture.png (opens in Blender), basis.npz, frames.npz and decoder.pt. Nothing is written if
    the build fails or is interrupted.
    """

    video: tyro.conf.Positional[Path]
    """A video file (mp4, mov, ...) or a folder of numbered frames."""
    out: Path
    """Output folder (must not exist unless --overwrite)."""
    basis: Path | None = None
    """A deformation basis from `handface pca` (default: one simulated on this person's head,
    pressed where the video's hands come near the face)."""
    method: Literal["fit", "dice", "hybrid"] = "hybrid"
    """How the video is tracked (as `handface track --method`): hybrid, the default, fits the
    meshes with DICE's touch verdicts, which put touching hands on the face; fit's own contact
    gate often leaves them centimetres away, and then the face never deforms."""
    checkpoint: Path | None = None
    """DICE weights for --method dice|hybrid (default: the network shipped with handface)."""
    size: int = 256
    """Long side of the avatar's frames in pixels (the paper: 256)."""
    start: int = 0
    """First frame to use (0-based)."""
    end: int | None = None
    """Stop before this frame (default: the end of the video)."""
    stride: int = 1
    """Use every K-th frame."""
    focal: float | None = None
    """Focal length in pixels (default: a 35 mm-equivalent of 35 mm)."""
    fps: float | None = None
    """Frame rate of a folder of frames (default 30; videos carry their own)."""
    appearance_steps: int = 300
    """Adam steps of the texture and lighting fit."""
    photometric_steps: int = 200
    """Steps of the photometric refinement of every frame's pose with the texture (0: keep
    the tracked poses)."""
    presses: int = 96
    """Simulated presses for the subject-specific basis."""
    deformation_steps: int = 300
    """Adam steps of the deformation codes."""
    overwrite: bool = False
    """Replace --out if it exists (only once the new avatar is complete)."""

    def main(self) -> None:
        from dataclasses import replace

        from handface.avatar.build import AvatarConfig, build_avatar
        from handface.avatar.deformation_basis import DeformationBasis
        from handface.avatar.folder import save_avatar
        from handface.errors import InputError
        from handface.io.files import output_lock, refuse_existing
        from handface.models import default_head_model

        with output_lock(self.out):  # for the whole build: a second run is refused at once
            refuse_existing(self.out, self.overwrite)
            if self.size < 32:
                raise InputError(f"--size must be at least 32 pixels, got {self.size}")
            for name in ("appearance_steps", "presses", "deformation_steps"):
                if getattr(self, name) < 1:
                    raise InputError(f"--{name.replace('_', '-')} must be at least 1")
            if self.photometric_steps < 0:
                raise InputError("--photometric-steps must be 0 (off) or more")
            basis = DeformationBasis.load(self.basis) if self.basis is not None else None
            config = AvatarConfig(size=self.size)
            config.appearance = replace(config.appearance, iterations=self.appearance_steps)
            config.refine_poses = self.photometric_steps > 0
            config.photometric = replace(config.photometric, iterations=self.photometric_steps)
            config.subject_basis = replace(config.subject_basis, presses=self.presses)
            config.hand_deformation = replace(config.hand_deformation,
                                              iterations=self.deformation_steps)  # fmt: skip
            head_model = default_head_model()
            if self.checkpoint is not None and self.method == "fit":
                raise InputError("--checkpoint goes with --method dice or hybrid")
            avatar = build_avatar(self.video, config=config, basis=basis, start=self.start,
                                  end=self.end, stride=self.stride, focal=self.focal, fps=self.fps,
                                  method=self.method, checkpoint=self.checkpoint,
                                  head_model=head_model)  # fmt: skip
            save_avatar(avatar, self.out, head_model, overwrite=self.overwrite)
        figures = avatar.figures
        print(
            f"{self.video}: avatar of {len(avatar)} frames ({figures['frames_with_hand_near_face']}"
            f" with a hand near the face; {avatar.basis_kind} basis) -> {self.out}"
        )


@dataclass
class AvatarRender:
    """Re-render an avatar's frames (the textured head with its hand deformation, and the
    hands, under the avatar's lighting) as an MP4 video; with --hand-pose, with hands placed
    anew and the deformation they cause; with --expression, with new expressions."""

    avatar: tyro.conf.Positional[Path]
    """An avatar folder (written by `handface avatar VIDEO --out AVATAR`)."""
    out: Path
    """The video to write (.mp4)."""
    start: int = 0
    """First avatar frame to render."""
    end: int | None = None
    """Stop before this avatar frame (default: the last)."""
    stride: int = 1
    """Render every K-th frame."""
    no_deformation: bool = False
    """Render the head without its hand deformation (for comparison)."""
    hand_pose: Path | None = None
    """A hand pose file (JSON, hands in the head's frame; `handface avatar hands` writes the
    avatar's own as a start) whose hands replace the frames': one pose per rendered frame, or
    one for all. Their deformation is computed anew (see --placement), not taken from a stored
    frame."""
    expression: Path | None = None
    """An expression file (JSON: per rendered frame, or one for all, the expression
    coefficients to set by name, e.g. {"jawOpen": 0.6}; the others keep the frame's own)."""
    placement: Literal["physics", "contact"] = "physics"
    """How --hand-pose hands deform the face: physics (the soft-tissue solver on this person's
    head; the skin ends outside the hands) or contact (the avatar paper's way: a code optimised
    with the contact loss through the avatar's decoder and basis; weaker, a deep hand stays
    partly inside)."""
    overwrite: bool = False
    """Replace --out if it exists."""

    def main(self) -> None:
        from handface.avatar.render import render_video

        count, seconds = render_video(
            self.avatar, self.out, start=self.start, end=self.end, stride=self.stride,
            deformed=not self.no_deformation, hand_poses=self.hand_pose,
            placement=self.placement, expressions=self.expression, overwrite=self.overwrite,
        )  # fmt: skip
        print(f"{self.avatar}: {count} frames rendered in {seconds:.1f} s -> {self.out}")


@dataclass
class AvatarHands:
    """Write an avatar's own hand poses, moved into the head's frame, as a hand pose file: the
    format `handface avatar render --hand-pose` reads. Edit it to place hands anew (e.g. move a
    hand's "transl" a few millimetres into the cheek)."""

    avatar: tyro.conf.Positional[Path]
    """An avatar folder."""
    out: Path
    """The hand pose file to write (.json)."""
    start: int = 0
    """First avatar frame."""
    end: int | None = None
    """Stop before this avatar frame (default: the last)."""
    stride: int = 1
    """Every K-th frame."""
    overwrite: bool = False
    """Replace --out if it exists."""

    def main(self) -> None:
        from handface.avatar.folder import load_avatar
        from handface.avatar.hand_poses import avatar_hand_poses, write_hand_poses
        from handface.errors import InputError
        from handface.io.files import refuse_existing

        if self.out.suffix.lower() != ".json":
            raise InputError(f"{self.out}: hand poses are written as .json; name it so")
        refuse_existing(self.out, self.overwrite)
        if self.stride < 1:
            raise InputError(f"--stride must be at least 1, got {self.stride}")
        avatar = load_avatar(self.avatar)
        frames = range(len(avatar))[self.start : self.end : self.stride]
        if not len(frames):
            raise InputError(f"no avatar frame in {self.start}:{self.end}:{self.stride} (it has "
                             f"{len(avatar)})")  # fmt: skip
        poses = avatar_hand_poses(avatar, frames)
        write_hand_poses(self.out, poses)
        with_hands = sum(bool(p) for p in poses)
        print(f"{self.avatar}: hand poses of {len(poses)} frames ({with_hands} with hands) -> "
              f"{self.out}")  # fmt: skip


@dataclass
class AvatarExport:
    """Export an avatar as a binary glTF file (opens in Blender, three.js, model viewers): the
    textured head at rest, or with --frame, that frame's head (expression and hand
    deformation) and hands in their colours, seen from the video's camera."""

    avatar: tyro.conf.Positional[Path]
    """An avatar folder."""
    out: Path
    """The file to write (.glb)."""
    frame: int | None = None
    """Avatar frame to export posed, with its hands (default: the head at rest)."""
    overwrite: bool = False
    """Replace --out if it exists."""

    def main(self) -> None:
        from handface.avatar.export import export_avatar_glb
        from handface.avatar.folder import load_avatar
        from handface.errors import InputError
        from handface.io.files import refuse_existing
        from handface.models import AnnyHandModel, default_head_model

        if self.out.suffix.lower() != ".glb":
            raise InputError(f"{self.out}: the export is binary glTF; name it .glb")
        refuse_existing(self.out, self.overwrite)
        avatar = load_avatar(self.avatar)
        if self.frame is not None and not 0 <= self.frame < len(avatar):
            raise InputError(f"--frame {self.frame} is outside the avatar's {len(avatar)} frames")
        hand_models = {side: AnnyHandModel(side) for side in avatar.hands}
        export_avatar_glb(avatar, default_head_model(), hand_models, self.out, self.frame)
        what = "head at rest" if self.frame is None else f"frame {self.frame}"
        print(f"{self.avatar}: {what} -> {self.out}")


@dataclass
class View:
    """Look at a result in 3D in the browser (viser): a Capture folder (`handface
    reconstruct`), a Sequence folder (`handface track`: frame slider and Play), an avatar
    folder (`handface avatar`: the textured head, its hand deformation per frame) or a
    synthetic dataset (`handface synth`: sample --index's ground truth).

    The panel switches the colours (contact, plain, the deformation |D| heat map with its mm
    scale), prediction vs ground truth (--gt), each mesh and the camera with its photo. Serves
    until Ctrl-C at http://HOST:PORT; the default host 127.0.0.1 keeps the results on this
    machine, any other (0.0.0.0) exposes them to the network.
    """

    path: tyro.conf.Positional[Path]
    """A Capture, Sequence, avatar or synthetic dataset folder."""
    host: str = "127.0.0.1"
    """Address to serve on; anything but 127.0.0.1 makes the results reachable from the
    network."""
    port: int = 8080
    """Port to serve on (the next free one if taken; the printed address says which)."""
    index: int = 0
    """Sample of a synthetic dataset (PATH's, or --gt's; with a Sequence: --gt's sequence)."""
    gt: Path | None = None
    """A synthetic dataset whose ground truth is shown with a Capture or Sequence folder."""

    def main(self) -> None:
        from handface.view import serve

        serve(self.path, host=self.host, port=self.port, index=self.index, gt=self.gt)


@dataclass
class Export:
    """Export a result's meshes as one file for Blender, three.js or MeshLab.

    PATH is a Capture folder (`handface reconstruct`): the deformed face and the hands,
    coloured by contact probability (grey, orange, red), in the camera's frame. Or a Sequence
    folder (`handface track`): one animated .glb that Blender and three.js play, the face and
    each hand changing every frame (a morph target per frame, stepped at the video's times; a
    hand hidden where it was not tracked), coloured by each mesh's maximum contact over the
    clip. Or an avatar folder (`handface avatar`): the textured head, as `handface avatar
    export`.
    """

    path: tyro.conf.Positional[Path]
    """A Capture folder (holds result.json), a Sequence folder (holds timeline.json and
    sequence.npz; exports as .glb only) or an avatar folder (holds avatar.json)."""
    out: Path
    """The file to write; its suffix gives the format unless --format is given."""
    format: Literal["glb", "obj", "ply"] | None = None
    """glb (binary glTF: Y up, one named node per mesh, vertex colours), obj (one object per
    mesh, colours as the `v x y z r g b` extension) or ply (one coloured mesh). Default: the
    suffix of --out."""
    overwrite: bool = False
    """Replace --out if it exists."""
    stride: int = 1
    """Sequence only: keep every n-th tracked frame (a smaller file)."""
    start: int | None = None
    """Sequence only: the first video frame to export (`frame` in timeline.json)."""
    end: int | None = None
    """Sequence only: the video frame to stop before (default: to the end)."""

    def main(self) -> None:
        from handface.errors import InputError
        from handface.io.files import refuse_existing
        from handface.io.folders import folder_kind

        kind = folder_kind(self.path, ("capture", "sequence", "avatar"))
        if kind != "sequence" and (self.stride, self.start, self.end) != (1, None, None):
            raise InputError(f"{self.path} is not a Sequence folder: --stride, --start and --end "
                             "apply only to one (from `handface track`)")  # fmt: skip
        file_format = self.format or self.out.suffix.lower().lstrip(".")
        if file_format not in ("glb", "obj", "ply"):
            raise InputError(f"{self.out}: give --format glb|obj|ply or name the file so")
        if self.out.suffix.lower() != f".{file_format}":
            raise InputError(f"{self.out}: a {file_format} file should end in .{file_format}")
        refuse_existing(self.out, self.overwrite)
        if kind == "avatar":
            if file_format != "glb":
                raise InputError(f"{self.path} is an avatar: it exports as .glb (its folder "
                                 "already holds head.obj)")  # fmt: skip
            from handface.avatar.export import export_avatar_glb
            from handface.avatar.folder import load_avatar
            from handface.models import default_head_model

            export_avatar_glb(load_avatar(self.path), default_head_model(), {}, self.out)
        elif kind == "sequence":
            if file_format != "glb":
                raise InputError(f"{self.path} is a sequence: it exports as one animated .glb "
                                 f"(give --out {self.out.with_suffix('.glb').name})")  # fmt: skip
            from handface.export.sequence import export_sequence
            from handface.io.sequence_folder import load_sequence

            export_sequence(load_sequence(self.path), self.out, start=self.start, end=self.end,
                            stride=self.stride)  # fmt: skip
        else:
            from handface.export.capture import export_capture
            from handface.io.capture_folder import load_capture

            export_capture(load_capture(self.path), self.out, file_format)
        print(f"{self.path} -> {self.out}")


@dataclass
class ExportModel:
    """Export the DICE network for another engine: ONNX (onnxruntime, TensorRT, ...) or
    TorchScript (torch.jit.load, LibTorch).

    One input, `image`: (B, 3, S, S) float32 RGB in [0, 1], the square crop around the face
    and hands (S = 224; the normalisation is inside the graph). Named outputs: the deformed and
    undeformed face, its deformation and per-vertex contact probability, the right hand and its
    contact, the head and hand parameters, hand presence and touch probabilities, the
    weak-perspective camera. The file is run once on fresh random crops and must match
    PyTorch (the largest difference is printed) before it is written; OUT.json next to it
    lists the inputs, outputs, shapes and the preprocessing. The ONNX file takes any batch
    size; a TorchScript file only --batch-size crops per call.
    """

    out: Path
    """The file to write (.onnx or .pt); OUT.json is written next to it."""
    format: Literal["onnx", "torchscript"] | None = None
    """onnx (opset 18, dynamic batch) or torchscript (traced). Default: from the suffix of
    --out (.onnx, .pt)."""
    checkpoint: Path | None = None
    """DICE weights: model.pt (or checkpoint.pt) of a `handface train` run. Default: the
    network shipped with handface."""
    overwrite: bool = False
    """Replace --out (and OUT.json) if they exist."""
    batch_size: int = 2
    """Crops per call when tracing and checking; a TorchScript file accepts only this many
    (2: a crop and its mirror, as the predictor runs it)."""

    def main(self) -> None:
        from handface.export.model import export_dice_model, model_format
        from handface.io.files import refuse_existing

        file_format = model_format(self.out, self.format)
        refuse_existing(self.out, self.overwrite)
        report = export_dice_model(
            self.out, file_format, self.checkpoint, overwrite=self.overwrite,
            batch_size=self.batch_size,
        )  # fmt: skip
        size_mb = report.file_bytes / 1e6
        print(f"{report.path} ({report.file_format}, {size_mb:.1f} MB, + {report.sidecar.name}): "
              f"max |difference| to PyTorch {report.max_diff:.2g}")  # fmt: skip


Command = (
    Annotated[Reconstruct, tyro.conf.subcommand("reconstruct")]
    | Annotated[Track, tyro.conf.subcommand("track")]
    | Annotated[Avatar, tyro.conf.subcommand("avatar")]
    | Annotated[AvatarRender, tyro.conf.subcommand("avatar-render")]
    | Annotated[AvatarHands, tyro.conf.subcommand("avatar-hands")]
    | Annotated[AvatarExport, tyro.conf.subcommand("avatar-export")]
    | Annotated[Export, tyro.conf.subcommand("export")]
    | Annotated[ExportModel, tyro.conf.subcommand("export-model")]
    | Annotated[View, tyro.conf.subcommand("view")]
    | Annotated[Synth, tyro.conf.subcommand("synth")]
    | Annotated[Eval, tyro.conf.subcommand("eval")]
    | Annotated[Pca, tyro.conf.subcommand("pca")]
    | Annotated[Train, tyro.conf.subcommand("train")]
    | Annotated[Bench, tyro.conf.subcommand("bench")]
    | Annotated[Demo, tyro.conf.subcommand("demo")]
)


def parse_arguments(argv: list[str]) -> Command:
    """tyro's parse of ``argv``; its boxed error becomes one line on stderr (exit 2).

    ``--help`` prints to stdout and exits 0 as tyro does.
    """
    import contextlib
    import io

    boxed = io.StringIO()
    try:
        with contextlib.redirect_stderr(boxed):
            command = tyro.cli(Command, args=argv, description=DESCRIPTION)
        sys.stderr.write(boxed.getvalue())  # what tyro says of a successful parse stays seen
        return command
    except SystemExit as exit_:
        if exit_.code in (0, None):  # --help
            sys.stderr.write(boxed.getvalue())
            raise
        name = next((a for a in argv if not a.startswith("-")), None)
        print(f"handface: error: {condense_parse_error(boxed.getvalue(), name)}",
              file=sys.stderr)  # fmt: skip
        raise SystemExit(2) from None


def condense_parse_error(boxed: str, command: str | None) -> str:
    """One line from tyro's boxed parse error: the first part of every section but the help
    pointers, option help text dropped, then where the full help is.

    Example:
        >>> box = "╭─ Value error ─╮\\n│ Error parsing --num: bad. │\\n│ ─── │\\n"
        >>> box += "│ For full helptext, run x --help │\\n╰──╯"
        >>> condense_parse_error(box, "synth")
        'Error parsing --num: bad; see handface synth --help'
    """
    sections: list[list[str]] = [[]]
    for raw in boxed.splitlines():  # rich draws the box in Unicode, or in ASCII (+-|)
        line = raw.strip().strip("│╭╮╰╯|+").rstrip()
        bare = line.strip()
        if bare and (set(bare) <= set("─- ") or bare.startswith(("─ ", "- "))):
            sections.append([])  # a rule between sections, or the box's title
        elif line.strip():
            sections[-1].append(line)
    parts: list[str] = []
    for section in sections:
        if not section or section[0].strip().startswith(("For full helptext", "Argument help")):
            continue
        indents = [len(line) - len(line.lstrip()) for line in section]
        deeper = [indent for indent in indents[1:] if indent > indents[0]]
        if deeper:  # a heading, its items (options), each item's help text (dropped: --help)
            lines = list(zip(section, indents, strict=True))
            items = [line.strip() for line, indent in lines[1:] if indent == min(deeper)]
            heads = [line.strip() for line, indent in lines if indent < min(deeper)]
            part = " ".join(heads) + " " + ", ".join(items)
        else:
            part = " ".join(line.strip() for line in section)
        part = re.sub(r"\S*(?:/handface|__main__\.py)\b", "handface", part)
        parts.append(re.sub(r"\s+", " ", part).strip().rstrip("."))
    known = command in subcommand_names()
    where = f"handface {command} --help" if known else "handface --help"
    return "; ".join(part for part in parts if part) + f"; see {where}"


def subcommand_names() -> tuple[str, ...]:
    """The subcommands of :data:`Command` as typed on the command line."""
    return tuple(typing.get_args(choice)[1].name for choice in typing.get_args(Command))


def entrypoint(argv: list[str] | None = None) -> None:
    """Run the CLI (``handface ...`` and ``python -m handface ...``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    console.set_verbose("--verbose" in argv)
    argv = [a for a in argv if a != "--verbose"]
    console.quiet_python_warnings()
    if argv[:1] == ["avatar"] and argv[1:2] in (["render"], ["hands"], ["export"]):
        argv = [f"avatar-{argv[1]}", *argv[2:]]  # `handface avatar render AVATAR` as documented
    command = parse_arguments(argv)
    # Ctrl-C and SIGTERM unwind (outputs staged in .partial folders are removed) and exit with
    # one line and 128 + the signal number; the request is recorded for loops that check it
    interrupt.install()
    interrupt.resume_hint(None)
    try:
        command.main()
    except HandfaceError as error:
        print(f"handface: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except OSError as error:  # a full disk, a path through a file, ...: one line (io.files)
        from handface.io.files import os_error_message

        message = os_error_message(error, getattr(command, "out", None))
        if message is None:
            raise
        print(f"handface: error: {message}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print(interrupt.message(signal.SIGINT), file=sys.stderr)
        raise SystemExit(130) from None
    except interrupt.Terminated:
        print(interrupt.message(signal.SIGTERM), file=sys.stderr)
        raise
