"""Generated media shared by the media tests (made once per test session, a few KB each)."""

from __future__ import annotations

import pytest

from testing import videos as tv

# 25 frames of 40 ms (25 fps) then 20 frames of 100 ms (10 fps): a variable frame rate.
VFR_SEGMENTS = ((25, 40), (20, 100))


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def video_with_audio(media_dir):
    return tv.make_test_video(media_dir / "with_audio.mp4", seconds=3, with_audio=True)


@pytest.fixture(scope="session")
def faststart_video(media_dir):
    return tv.make_test_video(media_dir / "faststart.mp4", seconds=3, faststart=True)


@pytest.fixture(scope="session")
def long_video(media_dir):
    """Long enough that ffmpeg is certainly still running after the first frame."""
    return tv.make_test_video(media_dir / "long.mp4", seconds=20, size=(160, 120), pattern="testsrc")


@pytest.fixture(scope="session")
def cfr_index_video(media_dir):
    path = media_dir / "index_cfr.mp4"
    return path, tv.make_frame_index_video(path, segments=((75, 40),))


@pytest.fixture(scope="session")
def vfr_index_video(media_dir):
    path = media_dir / "index_vfr.mkv"
    return path, tv.make_frame_index_video(path, segments=VFR_SEGMENTS)


@pytest.fixture(scope="session")
def late_video_index_video(media_dir):
    """Audio from 0 s, first video frame at 1.5 s."""
    path = media_dir / "index_late_video.mp4"
    return path, tv.make_frame_index_video(path, segments=((50, 40),), start_ms=1500, audio_from_zero=True)


@pytest.fixture(scope="session")
def mpegts_index_video(media_dir):
    """MPEG-TS starts its clock at 1.4 s; sample times must still be 0-based."""
    path = media_dir / "index.ts"
    return path, tv.make_frame_index_video(path, segments=((50, 40),))


SCENE_SEGMENTS = (("testsrc2", 1.3), ("smptebars", 1.4), ("0x2050a0", 1.1))


@pytest.fixture(scope="session")
def scene_video(media_dir):
    return tv.make_scene_change_video(media_dir / "scenes.mp4", segments=SCENE_SEGMENTS)
