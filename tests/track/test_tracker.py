"""Tracking: the head stage over windows, the Sequence folder, and a synthetic clip end to end."""

from __future__ import annotations

import subprocess
import sys

import av
import numpy as np
import pytest
import torch

from handface.fit.head_fit import HeadFitConfig, fit_layout, landmark_weights, layout_landmarks
from handface.geometry.camera import project_points
from handface.models.base import HeadParams
from handface.track.head_track import HeadTrack, HeadTrackConfig, track_head

K = torch.tensor([[500.0, 0.0, 160.0], [0.0, 500.0, 160.0], [0.0, 0.0, 1.0]], dtype=torch.float64)


def _moving_head_landmarks(model, frames: int, jitter_px: float = 0.0, seed: int = 0):
    """478 landmarks of the average head turning slowly in front of the camera (+ noise)."""
    generator = np.random.default_rng(seed)
    t = torch.arange(frames, dtype=torch.float64)
    yaw = 0.02 * t
    rotvec = torch.stack([torch.zeros_like(yaw), yaw, torch.zeros_like(yaw)], 1)
    transl = torch.stack([0.002 * t, -0.1 + 0 * t, 0.6 + 0.001 * t], 1)
    with torch.no_grad():
        out = model(HeadParams(global_orient=rotvec.float(), transl=transl.float()))
        landmarks = layout_landmarks(model, out).double()
    uv = project_points(landmarks, K).numpy()
    uv = uv + generator.normal(0.0, jitter_px, uv.shape)
    return uv, transl.numpy()


def _centres(model, track: HeadTrack) -> np.ndarray:
    with torch.no_grad():
        shape = track.shape.expand(len(track.transl), -1).float()
        out = model(HeadParams(expression=track.expression.float(), shape=shape))
    canonical = out.extras["canonical_vertices"].double()
    return ((canonical @ track.rotation.transpose(1, 2)) + track.transl[:, None]).mean(1).numpy()


def test_smoothness_removes_landmark_jitter_and_windows_match_one_window(head_model):
    frames = 10
    uv, _ = _moving_head_landmarks(head_model, frames, jitter_px=1.5)
    weights = np.stack([landmark_weights(f, None, HeadFitConfig(), fit_layout(head_model))
                        for f in uv])  # fmt: skip
    fit = HeadFitConfig(iterations=80)
    config = HeadTrackConfig(iterations=60)
    whole = track_head(head_model, uv, None, weights, K, fit=fit, config=config)
    free = track_head(head_model, uv, None, weights, K, fit=fit,
                      config=HeadTrackConfig(iterations=60, smoothness_weight=0.0))  # fmt: skip
    accel = lambda x: np.linalg.norm(x[2:] - 2 * x[1:-1] + x[:-2], axis=-1).mean()  # noqa: E731
    # the true motion has zero acceleration: smoothing brings the estimate closer to it
    assert accel(_centres(head_model, whole)) < 0.5 * accel(_centres(head_model, free))
    # two windows (the second anchored to the first's last two frames, the shape fixed) give
    # the first window's frames and nearly the same later ones
    first = track_head(head_model, uv[:6], None, weights[:6], K, fit=fit, config=config)
    second = track_head(head_model, uv[6:], None, weights[6:], K, fit=fit, config=config,
                        shape=first.shape, anchors=first.anchors())  # fmt: skip
    windowed = np.concatenate([_centres(head_model, first), _centres(head_model, second)])
    assert np.abs(windowed - _centres(head_model, whole)).max() < 0.004  # metres
    assert torch.equal(second.shape, first.shape)


def test_sequence_arrays_round_trip(tmp_path):
    from handface.io.sequence_folder import load_sequence, write_sequence_files
    from handface.sequence import FrameHand, Sequence, SequenceFrame, SparseRows

    frames = []
    for t in range(4):
        hands = {}
        if t != 2:
            hands["right"] = FrameHand(
                status="bridged" if t == 1 else "detected",
                params={
                    "global_orient": np.full(3, 0.1 * t, np.float32),
                    "transl": np.array([0.0, 0.0, 0.5 + t], np.float32),
                    "articulation": np.full(20, t, np.float32),
                },  # fmt: skip
                touching=t == 3,
                min_distance_mm=3.0 - t,
                regions=["chin"] if t == 3 else [],
                contact=SparseRows(np.array([4, 9], np.int32), np.array([0.5, 0.75], np.float32)),
            )
        frames.append(
            SequenceFrame(
                index=10 + 2 * t,
                time_s=t / 15,
                face_detected=t != 0,
                head={
                    "global_orient": np.zeros(3, np.float32),
                    "transl": np.array([0, 0, 0.6], np.float32),
                    "expression": np.full(52, 0.01 * t, np.float32),
                },
                hands=hands,
                face_contact=SparseRows(np.array([t], np.int32), np.array([0.25], np.float32)),
                deformation=SparseRows(
                    np.array([t, t + 1], np.int32), np.full((2, 3), 0.001 * t, np.float32)
                ),
                touched_regions=["chin"] if t == 3 else [],
            )  # fmt: skip
        )
    sequence = Sequence(
        image_size=(320, 240), K=K.numpy(), camera_source="given", fps=15.0, method="fit",
        head_shape=np.full(9, 0.5, np.float32), frames=frames,
        hand_shapes={"right": np.full(9, 0.5, np.float32)}, source="clip.mp4",
    )  # fmt: skip
    write_sequence_files(sequence, tmp_path)
    loaded = load_sequence(tmp_path)
    assert loaded.timeline() == sequence.timeline()
    assert loaded.touching("right").tolist() == [False, False, False, True]
    assert [f.hand_status("right") for f in loaded.frames] == [
        "detected", "bridged", "missing", "detected"
    ]  # fmt: skip
    for a, b in zip(loaded.frames, sequence.frames, strict=True):
        assert np.array_equal(a.deformation.to_dense(8), b.deformation.to_dense(8))
        assert np.array_equal(a.face_contact.to_dense(8), b.face_contact.to_dense(8))
        for name in ("global_orient", "transl", "expression"):
            assert np.array_equal(a.head[name], b.head[name])
        if "right" in b.hands:
            assert np.array_equal(a.hands["right"].params["articulation"],
                                  b.hands["right"].params["articulation"])  # fmt: skip
            assert np.allclose(a.hands["right"].contact.to_dense(12),
                               b.hands["right"].contact.to_dense(12))  # fmt: skip
    assert (tmp_path / "contact_timeline.png").stat().st_size > 1000


def test_a_synthetic_clip_end_to_end(clip, tmp_path):
    from handface.data.synth import SynthDataset
    from handface.io.sequence_folder import load_sequence
    from handface.track.run import track_video
    from handface.track.tracker import TrackConfig

    data = SynthDataset(clip)
    truth_side = sorted(data[0].hands)[0]
    out = tmp_path / "track"
    # two windows (5 frames, 3 solved again), so the anchors and bridging history are used
    focal = float(data[0].K[0, 0])
    config = TrackConfig(window=5, overlap=3, max_gap=2, focal=focal)
    sequence = track_video(clip / "images", out, fps=10.0, meshes=True, progress=False,
                           config=config)  # fmt: skip
    assert len(sequence) == 8
    assert sorted(p.name for p in out.iterdir()) == [
        "contact_timeline.png", "meshes", "overlay.mp4", "sequence.npz", "timeline.json"
    ]  # fmt: skip
    with av.open(str(out / "overlay.mp4")) as video:
        assert sum(1 for _ in video.decode(video=0)) == 8
    assert len(list((out / "meshes").glob("*_face.ply"))) == 8
    loaded = load_sequence(out)
    assert loaded.timeline() == sequence.timeline()
    assert [f["time_s"] for f in loaded.timeline()] == pytest.approx([t / 10 for t in range(8)])
    # the hand of the clip is found in most frames, it is called touching while it touches
    # (8 frames of approach, press and release are too fast for the verdict to follow frame by
    # frame: it lags by one or two), and every verdict agrees with the meshes (within 5 mm of
    # the deformed face)
    truth = np.array([bool(data[t].hands[truth_side].contact.max() > 0.5) for t in range(8)])
    found = np.array([truth_side in f.hands for f in sequence.frames])
    assert found.mean() >= 0.75
    tracked = sequence.touching(truth_side)
    assert (tracked & truth).any() and not tracked[:2].any()
    for frame in sequence.frames:
        for hand in frame.hands.values():
            assert hand.touching == (hand.min_distance_mm <= 5.0)
    # an existing folder is never overwritten without --overwrite, and nothing else is written
    before = sorted(p.name for p in out.iterdir())
    from handface.errors import OutputExistsError

    with pytest.raises(OutputExistsError):
        track_video(clip / "images", out, progress=False)
    assert sorted(p.name for p in out.iterdir()) == before


def test_a_broken_video_is_one_line_and_writes_nothing(tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_text("not a video")
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "handface", "track", str(video), "--out", str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("handface")]
    assert len(lines) == 1 and "clip.mp4" in lines[0] and "Traceback" not in result.stderr
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]


def test_method_options_that_do_not_go_together_are_one_line_errors(tmp_path):
    from handface.errors import InputError
    from handface.track.run import track_video

    video = tmp_path / "clip.mp4"  # never opened: the options are checked first
    with pytest.raises(InputError, match="tracking supports fit, dice and hybrid"):
        track_video(video, method="avatar")
    with pytest.raises(InputError, match="--checkpoint goes with --method dice or hybrid"):
        track_video(video, method="fit", checkpoint=tmp_path / "model.pt")
    with pytest.raises(InputError, match="DICE takes RGB"):
        track_video(video, method="dice", depth=tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("signal_number", [15, 2])
def test_sigterm_or_ctrl_c_mid_track_leaves_nothing(clip, tmp_path, signal_number):
    import shutil
    import time

    frames = tmp_path / "frames"
    frames.mkdir()
    for repeat in range(6):  # a 48-frame clip: long enough to interrupt mid-run
        for i, image in enumerate(sorted((clip / "images").glob("*.png"))):
            shutil.copy(image, frames / f"{repeat * 8 + i:04d}.png")
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "handface", "track", str(frames), "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".out.*.partial")) and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    time.sleep(1.0)  # into the tracking itself
    process.send_signal(signal_number)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal_number
    assert "Traceback" not in stderr and "no partial output was kept" in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]


def test_the_window_keeps_person_masks_as_bytes_and_gives_back_probabilities():
    from handface.detect.mediapipe_detector import Detections
    from handface.detect.video import VideoFrame
    from handface.track.tracker import _Observed, probability_bytes

    probability = np.random.default_rng(0).random((108, 192)).astype(np.float32)
    probability[0, :4] = [0.0, 0.4990, 0.5020, 1.0]
    stored = probability_bytes(probability)
    assert stored.dtype == np.uint8 and stored.nbytes == probability.nbytes // 4
    assert stored[0, :4].tolist() == [0, 127, 128, 255]
    frame = VideoFrame(index=0, time_s=0.0, rgb=np.zeros((108, 192, 3), np.uint8))
    observed = _Observed(frame=frame, face=None, hands={}, person_bytes=stored, detect_s=0.0)
    back = observed.person_mask
    assert back.dtype == np.float32 and np.abs(back - probability).max() <= 0.5 / 255 + 1e-7
    # the person pixels (> 0.5) are those of probability >= 0.5 (127.5 / 255 rounds up)
    assert np.array_equal(back > 0.5, probability * np.float32(255) > 127.5)
    assert isinstance(observed.detections(), Detections)
    assert _Observed(frame, None, {}, None, 0.0).person_mask is None
    assert probability_bytes(None) is None
