import itertools

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from testing import videos as tv


@given(st.integers(0, (1 << tv.INDEX_BITS) - 1))
def test_frame_index_pictures_read_back(n):
    assert tv.read_frame_index(tv.index_frame(n)) == n


def test_frame_index_pictures_survive_scaling_to_rgb():
    from PIL import Image

    img = Image.fromarray(tv.index_frame(613)).convert("RGB").resize((97, 23), Image.Resampling.BILINEAR)
    assert tv.read_frame_index(np.asarray(img)) == 613


def test_consecutive_index_pictures_differ_in_one_cell():
    a, b = tv.index_frame(41), tv.index_frame(42)
    assert 0 < np.count_nonzero(a != b) <= a.size // tv.INDEX_BITS


def test_cut_times_land_on_the_frame_grid():
    assert tv.cut_times([("red", 1.0), ("blue", 1.3), ("green", 1)], fps=25) == [1.0, 2.32]


def test_frame_index_video_reports_its_frame_times(tmp_path):
    times = tv.make_frame_index_video(tmp_path / "tiny.mp4", segments=((3, 40), (2, 100)), start_ms=20)
    assert times == [20, 60, 100, 140, 240]


def test_benchmark_storyboard_covers_the_whole_video_with_cuts_off_the_grid():
    sections = tv.benchmark_sections(60)
    assert sections[0].start_s == 0 and sections[-1].end_s == 60
    assert all(a.end_s == b.start_s for a, b in itertools.pairwise(sections))
    assert all(s.start_s % 1 == 0.5 for s in sections[1:])
    assert {s.expect for s in sections} == {"ok", "duplicate", "blurry", "too_dark", "blown_out"}
