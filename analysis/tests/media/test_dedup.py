import imagehash
import pytest

from analysis.media.dedup import NearDuplicateFilter

from .images import textured_scene, with_noise


def test_an_identical_frame_is_a_duplicate():
    f = NearDuplicateFilter()
    first = f.check_and_keep(textured_scene(1))
    assert first.is_duplicate is False and first.distance is None
    again = f.check(textured_scene(1))
    assert again == (True, first.hash_hex, 0)


def test_a_slightly_noisy_copy_is_a_duplicate():
    f = NearDuplicateFilter()
    f.check_and_keep(textured_scene(1))
    result = f.check(with_noise(textured_scene(1), amplitude=4))
    assert result.is_duplicate and result.distance <= f.max_distance


def test_a_different_scene_is_kept():
    f = NearDuplicateFilter()
    f.check_and_keep(textured_scene(1))
    result = f.check(textured_scene(2))
    assert not result.is_duplicate
    assert result.distance > 10


def test_check_does_not_remember_and_keep_does():
    f = NearDuplicateFilter()
    result = f.check(textured_scene(1))
    assert len(f) == 0
    assert not f.check(textured_scene(1)).is_duplicate
    f.keep(result.hash_hex)  # the hex string round-trips
    assert f.check(textured_scene(1)).is_duplicate
    f.keep(imagehash.hex_to_hash(result.hash_hex))
    assert len(f) == 2


def test_only_the_last_window_kept_frames_count():
    f = NearDuplicateFilter(window=2)
    f.check_and_keep(textured_scene(1))
    f.check_and_keep(textured_scene(2))
    assert f.check(textured_scene(1)).is_duplicate
    f.check_and_keep(textured_scene(3))  # pushes scene 1 out of the window
    assert not f.check(textured_scene(1)).is_duplicate
    f.reset()
    assert len(f) == 0


def test_max_distance_zero_only_drops_exact_hash_matches():
    f = NearDuplicateFilter(max_distance=0)
    f.check_and_keep(textured_scene(1))
    assert f.check(textured_scene(1)).is_duplicate


@pytest.mark.parametrize("kwargs", [{"max_distance": -1}, {"window": 0}])
def test_it_rejects_bad_settings(kwargs):
    with pytest.raises(ValueError):
        NearDuplicateFilter(**kwargs)
