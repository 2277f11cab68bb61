"""``handface bench soak``: the memory figures come from real command runs (small here)."""

import math

import pytest

from handface import bench
from handface.errors import InputError
from handface.soak import BIG_JPEG_BOUND_MB, bench_soak


def test_soak_measures_three_real_runs():
    figures = bench_soak(num=3, minutes=0.05, big_size=(1600, 1200))
    # reconstruct of 3 photos in one call: all written, memory sampled while it ran
    assert figures["images"] == 3.0 and figures["s_per_image"] > 0
    assert figures["images_at_mark"] == 1.0  # a fifth of 3, at least one
    assert 100 < figures["rss_mb_at_mark"] < 20000 and 100 < figures["rss_mb_at_end"] < 20000
    assert figures["peak_rss_mb_at_mark"] >= figures["rss_mb_at_mark"] - 1
    assert figures["reconstruct_peak_rss_mb"] >= figures["rss_mb_at_end"] - 1
    assert math.isclose(figures["rss_growth_mb"],
                        figures["rss_mb_at_end"] - figures["rss_mb_at_mark"])  # fmt: skip
    assert math.isclose(
        figures["peak_rss_growth_mb"],
        figures["reconstruct_peak_rss_mb"] - figures["peak_rss_mb_at_mark"],
    )
    # the big photo's peak, reported beside the stated bound
    assert figures["big_jpeg_megapixels"] == pytest.approx(1.92)
    assert 100 < figures["big_jpeg_peak_rss_mb"] < BIG_JPEG_BOUND_MB
    # 3 s of 30 fps video, every 30th frame tracked
    assert figures["video_frames_tracked"] == 3 and figures["video_s"] > 0
    assert 100 < figures["video_peak_rss_mb"] < 20000


def test_soak_is_a_benchmark_and_checks_its_options():
    assert "soak" in bench.BENCHMARKS
    with pytest.raises(InputError, match="--num >= 1"):
        bench.run("soak", num=0)
    with pytest.raises(InputError, match="does not take --frames"):
        bench.run("soak", frames=3)
