"""The console: third-party native logs hidden unless --verbose."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from handface import console

THIRD_PARTY = re.compile(
    r"^([IWEF]\d{4} \d\d:\d\d|INFO: Created TensorFlow|WARNING: All log messages before absl)"
)
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "hand_touching_ear.jpg"


def test_native_writes_to_descriptor_2_are_hidden_unless_verbose(capfd):
    with console.native_logs_silenced():
        os.write(2, b"W0000 native warning\n")
        print("handface's own line", flush=True)
    os.write(2, b"after\n")
    captured = capfd.readouterr()
    assert "native warning" not in captured.err and "after" in captured.err
    assert "handface's own line" in captured.out
    console.set_verbose(True)
    try:
        with console.native_logs_silenced():
            os.write(2, b"W0000 shown\n")
    finally:
        console.set_verbose(False)
    assert "shown" in capfd.readouterr().err


def _reconstruct(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "handface", "reconstruct", str(EXAMPLE), "--out",
         str(tmp_path / "out"), *extra],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip


@pytest.mark.parametrize("verbose", [False, True])
def test_cli_stderr_has_no_third_party_lines_unless_verbose(tmp_path, verbose):
    result = _reconstruct(tmp_path, *(["--verbose"] if verbose else []))
    assert result.returncode == 0, result.stderr[-2000:]
    foreign = [line for line in result.stderr.splitlines() if THIRD_PARTY.match(line)]
    if verbose:
        assert foreign  # MediaPipe does log: the default's silence is not an accident
    else:
        assert foreign == [], foreign
        assert (tmp_path / "out" / EXAMPLE.stem / "result.json").is_file()


def test_a_detector_logs_nothing_after_it_is_built():
    """MediaPipe opens its graphs' calculators on worker threads after construction returns;
    their log lines must still land inside the silenced construction, not on the console a
    moment later (seen in `handface reconstruct` of the first photo)."""
    code = (
        "import sys, time\n"
        "from handface.detect.mediapipe_detector import MediaPipeDetector\n"
        "detector = MediaPipeDetector(segment_person=True)\n"
        "time.sleep(1.5)\n"
        "print('built', file=sys.stderr, flush=True)\n"
        "detector.close()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert "built" in result.stderr
    foreign = [line for line in result.stderr.splitlines() if THIRD_PARTY.match(line)]
    assert foreign == [], foreign
