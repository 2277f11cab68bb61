import subprocess
import sys

import numpy as np
import pytest

from handface.cli import entrypoint
from handface.io import load_ply


def test_unknown_benchmark_is_a_one_line_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        entrypoint(["bench", "nonsense"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown benchmark 'nonsense'" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_demo_writes_images_and_meshes_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "demo"
    entrypoint(["demo", "--out", str(out), "--size", "192"])
    assert sorted(p.name for p in out.iterdir()) == [
        "contact.png",
        "face.ply",
        "hand_right.ply",
        "render.png",
    ]
    from PIL import Image

    image = np.asarray(Image.open(out / "render.png"))
    assert image.shape == (192, 192, 3) and image.std() > 10
    face_v, face_f, face_c = load_ply(out / "face.ply")
    hand_v, _, hand_c = load_ply(out / "hand_right.ply")
    assert face_v.shape == (4538, 3) and face_f.shape == (9014, 3) and hand_v.shape == (1609, 3)
    # the hand rests on the cheek: some face and hand vertices are coloured as in contact (red)
    red = lambda c: (c[:, 0] > 150) & (c[:, 1] < 120)
    assert red(face_c).sum() > 5 and red(hand_c).sum() > 5
    before = (out / "render.png").read_bytes()
    with pytest.raises(SystemExit) as exit_info:
        entrypoint(["demo", "--out", str(out)])
    assert exit_info.value.code == 2
    assert "already exists" in capsys.readouterr().err
    assert (out / "render.png").read_bytes() == before


def test_python_dash_m_entry_point_prints_help():
    result = subprocess.run(
        [sys.executable, "-m", "handface", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "bench" in result.stdout and "demo" in result.stdout


BOX_UNICODE = """╭─ Required options ──────────────────────────╮
│ Missing from /venv/bin/handface synth:       │
│     --out PATH                               │
│         Output folder (created; must not     │
│         exist unless --overwrite). With      │
│         --shard, the folder the shards share.│
│     --num INT                                │
│         Number of samples. (required)        │
│ ──────────────────────────────────────────── │
│ Unrecognized options:                        │
│     --nmu                                    │
│ ──────────────────────────────────────────── │
│ For full helptext, run:                      │
│     /venv/bin/handface synth --help          │
╰──────────────────────────────────────────────╯
"""


def test_a_boxed_parse_error_condenses_to_its_options_without_their_help():
    from handface.cli import condense_parse_error

    expected = ("Missing from handface synth: --out PATH, --num INT; Unrecognized options: "
                "--nmu; see handface synth --help")  # fmt: skip
    assert condense_parse_error(BOX_UNICODE, "synth") == expected
    ascii_box = BOX_UNICODE.translate(str.maketrans("╭╮╰╯│─", "++++|-"))
    assert condense_parse_error(ascii_box, "synth") == expected
    assert condense_parse_error(BOX_UNICODE, "sinth").endswith("; see handface --help")
