import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from analysis.media.quality import QualityThresholds, assess_quality, laplacian_variance, luma

from .images import blurred, checkerboard, scope_mask, solid


def test_a_sharp_checkerboard_is_ok():
    report = assess_quality(checkerboard())
    assert report.verdict == "ok" and report.ok
    assert report.blur_score > 1000
    assert report.mean_luma == pytest.approx(127.5, abs=0.5)


def test_the_same_checkerboard_blurred_is_blurry():
    sharp, soft = assess_quality(checkerboard()), assess_quality(blurred(checkerboard(), radius=4))
    assert soft.verdict == "blurry"
    assert soft.blur_score < QualityThresholds().min_blur_score < sharp.blur_score


def test_a_black_frame_is_too_dark_not_blurry():
    report = assess_quality(solid(0))
    assert report.verdict == "too_dark"
    assert report.dark_fraction == 1.0 and report.blur_score == 0.0


def test_a_uniformly_dim_frame_is_too_dark():
    dim = (checkerboard(low=14, high=24)).astype(np.uint8)  # texture, but nothing visible
    assert assess_quality(dim).verdict == "too_dark"


def test_a_white_frame_is_blown_out():
    report = assess_quality(solid(255))
    assert report.verdict == "blown_out" and report.bright_fraction == 1.0


def test_a_frame_with_a_large_clipped_area_is_blown_out():
    image = checkerboard()
    image[: image.shape[0] // 2] = 255
    assert assess_quality(image).verdict == "blown_out"


def test_the_scope_mask_edge_does_not_make_a_blurry_frame_sharp():
    framed = scope_mask(blurred(checkerboard(), radius=4))
    assert assess_quality(framed).verdict == "blurry"
    # Without the mask exclusion the circle's edge alone would pass the frame:
    assert assess_quality(framed, QualityThresholds(mask_luma=None)).verdict == "ok"
    # and a sharp frame in the same mask is still sharp.
    assert assess_quality(scope_mask(checkerboard())).verdict == "ok"


def test_thresholds_are_configurable():
    soft = blurred(checkerboard(), radius=1.5)
    score = assess_quality(soft).blur_score
    assert assess_quality(soft, QualityThresholds(min_blur_score=score - 1)).verdict == "ok"
    assert assess_quality(soft, QualityThresholds(min_blur_score=score + 1)).verdict == "blurry"


def test_it_accepts_gray_images_and_rejects_other_shapes():
    assert luma(np.zeros((4, 5), np.uint8)).shape == (4, 5)
    with pytest.raises(ValueError, match="RGB"):
        assess_quality(np.zeros((4, 5, 2), np.uint8))


def test_laplacian_variance_of_a_known_impulse():
    # One bright pixel in a flat field: responses -4v at the centre and +v at 4 neighbours.
    gray = np.zeros((5, 5), np.float32)
    gray[2, 2] = 10
    values = np.array([-40, 10, 10, 10, 10] + [0] * 4, dtype=np.float64)
    assert laplacian_variance(gray) == pytest.approx(values.var())


@settings(max_examples=40, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 24), st.integers(1, 24), st.just(3))))
def test_measures_stay_in_range_for_any_image(image):
    report = assess_quality(image)
    assert report.blur_score >= 0
    assert 0 <= report.dark_fraction <= 1 and 0 <= report.bright_fraction <= 1
    assert 0 <= report.mean_luma <= 255
    assert report.verdict in {"ok", "blurry", "too_dark", "blown_out"}
