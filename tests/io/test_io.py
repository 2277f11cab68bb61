import numpy as np
import pytest

from handface.errors import OutputExistsError
from handface.io import atomic_output_dir, atomic_write_bytes, load_ply, save_ply


def test_ply_round_trip_with_colours(tmp_path):
    vertices = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    colors = np.array([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [0.5, 0.5, 0.5]])
    save_ply(tmp_path / "m.ply", vertices, faces, colors)
    v, f, c = load_ply(tmp_path / "m.ply")
    np.testing.assert_allclose(v, vertices)
    np.testing.assert_array_equal(f, faces)
    np.testing.assert_array_equal(c, [[255, 0, 0], [0, 255, 0], [0, 0, 255], [128, 128, 128]])


def test_atomic_output_dir_commits_only_on_success(tmp_path):
    out = tmp_path / "result"
    with pytest.raises(RuntimeError), atomic_output_dir(out) as staging:
        (staging / "partial.txt").write_text("x")
        raise RuntimeError("boom")
    assert not out.exists() and list(tmp_path.iterdir()) == []
    with atomic_output_dir(out) as staging:
        (staging / "a.txt").write_text("first")
    assert (out / "a.txt").read_text() == "first"
    with pytest.raises(OutputExistsError), atomic_output_dir(out):
        pass
    # a failed overwrite keeps the old result intact
    with pytest.raises(RuntimeError), atomic_output_dir(out, overwrite=True) as staging:
        raise RuntimeError("boom")
    assert (out / "a.txt").read_text() == "first"
    with atomic_output_dir(out, overwrite=True) as staging:
        (staging / "b.txt").write_text("second")
    assert sorted(p.name for p in out.iterdir()) == ["b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result"]


def test_atomic_write_bytes_replaces_whole_file(tmp_path):
    target = tmp_path / "sub" / "f.bin"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two" and len(list(target.parent.iterdir())) == 1


def test_atomic_outputs_are_readable_by_others(tmp_path):
    import stat

    from handface.io import atomic_output_dir, atomic_write_bytes

    with atomic_output_dir(tmp_path / "result") as staging:
        atomic_write_bytes(staging / "a.bin", b"x")
    assert stat.S_IMODE((tmp_path / "result").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "result" / "a.bin").stat().st_mode) == 0o644
