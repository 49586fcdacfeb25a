"""Key frames of marked moments: the picture a paused player shows at the mark, taken from the
original recording on the sampler's clock (MPEG-TS starting at 1.4 s, interlaced captures)
and stored once; on a live session, the live frame nearest before the mark."""

from __future__ import annotations

import hashlib
import io
import os

import numpy as np
import pytest
from django.core.files import File
from django.core.files.base import ContentFile
from PIL import Image

from analysis import keyframes
from analysis.keyframes import key_frame_at
from analysis.media.probe import probe_video
from analysis.models import AnalysisState, Frame, FrameSource
from analysis.tests.factories import FrameFactory
from procedures.models import Video
from procedures.tests.factories import ProcedureSessionFactory
from testing import videos as tv

pytestmark = pytest.mark.django_db

# 75 frames of 40 ms: frame N is presented at N * 40 ms, and its picture says N.
CFR = ((75, 40),)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keyframes")
    paths = {"mp4": folder / "index.mp4", "ts": folder / "index.ts", "late": folder / "late.mp4"}
    tv.make_frame_index_video(paths["mp4"], segments=CFR)
    tv.make_frame_index_video(paths["ts"], segments=((50, 40),))  # MPEG-TS clocks start at 1.4 s
    tv.make_frame_index_video(paths["late"], segments=((50, 40),), start_ms=1500, audio_from_zero=True)
    paths["combed"] = tv.make_recorder_video(folder / "tower", "mpeg2_ts", segments=(("red", 1.0), ("blue", 1.0)),
                                             interlaced=True, combed=True)
    return paths


def _recording(session, path) -> Video:
    info = probe_video(path)
    video = Video(session=session, sha256=os.urandom(32).hex(), duration_s=info.duration_s, codec=info.codec,
                  container=info.format_name[:64], fps=info.fps, width=info.width, height=info.height,
                  interlaced=info.interlaced, start_time_s=info.start_time_s)
    with open(path, "rb") as fh:
        video.file.save("v.bin", File(fh), save=True)
    return video


def _picture(frame: Frame) -> np.ndarray:
    with frame.image.open("rb") as fh:
        return np.asarray(Image.open(io.BytesIO(fh.read())).convert("RGB"))


def _combing(image: np.ndarray) -> float:
    luma = image.astype(float).mean(axis=2)
    return float(np.abs(np.diff(luma, axis=0)).mean())


@pytest.mark.parametrize(("time_ms", "index"), [(0, 0), (999, 24), (1000, 25), (1010, 25), (2990, 74)])
def test_it_takes_the_picture_a_paused_player_shows_at_the_time(media_root, session, clips, time_ms, index):
    video = _recording(session, clips["mp4"])
    frame = key_frame_at(session=session, video=video, time_ms=time_ms)
    assert tv.read_frame_index(_picture(frame)) == index
    assert (frame.session, frame.video, frame.source, frame.timestamp_ms) == (session, video, FrameSource.VIDEO,
                                                                              time_ms)


def test_the_new_frame_is_stored_as_evidence_and_never_sent_to_the_model(media_root, session, clips):
    video = _recording(session, clips["mp4"])
    frame = key_frame_at(session=session, video=video, time_ms=1234)
    frame.refresh_from_db()
    assert frame.analysis_state == AnalysisState.SKIPPED
    with frame.image.open("rb") as fh:
        data = fh.read()
    assert data[:3] == b"\xff\xd8\xff" and frame.sha256 == hashlib.sha256(data).hexdigest()
    assert (frame.width, frame.height) == (video.width, video.height) == (160, 32)


def test_a_second_mark_at_the_same_time_reuses_the_stored_frame(media_root, session, clips):
    video = _recording(session, clips["mp4"])
    first = key_frame_at(session=session, video=video, time_ms=1500)
    again = key_frame_at(session=session, video=video, time_ms=1500)
    assert again.pk == first.pk
    assert Frame.objects.filter(video=video).count() == 1


def test_it_returns_the_sampled_frame_stored_at_exactly_that_time(media_root, session, clips):
    video = _recording(session, clips["mp4"])
    sampled = FrameFactory(session=session, video=video, timestamp_ms=2000, analysis_state=AnalysisState.DONE)
    assert key_frame_at(session=session, video=video, time_ms=2000).pk == sampled.pk
    assert Frame.objects.filter(video=video).count() == 1


def test_an_mpegts_clock_starting_at_1_4_s_is_read_from_0(media_root, session, clips):
    video = _recording(session, clips["ts"])
    assert video.start_time_s == pytest.approx(1.4, abs=0.01)
    assert tv.read_frame_index(_picture(key_frame_at(session=session, video=video, time_ms=1000))) == 25
    assert tv.read_frame_index(_picture(key_frame_at(session=session, video=video, time_ms=1960))) == 49


def test_a_video_that_starts_after_its_audio_keeps_its_offset(media_root, session, clips):
    video = _recording(session, clips["late"])  # container at 0 (audio), first picture at 1.5 s
    assert tv.read_frame_index(_picture(key_frame_at(session=session, video=video, time_ms=2000))) == 12
    # before the first picture: the first one there is
    assert tv.read_frame_index(_picture(key_frame_at(session=session, video=video, time_ms=500))) == 0


def test_an_interlaced_recording_is_deinterlaced(media_root, session, clips):
    video = _recording(session, clips["combed"])
    assert video.interlaced
    frame = key_frame_at(session=session, video=video, time_ms=1200)
    assert _combing(_picture(frame)) < 10  # the raw fields alternate white and black lines (> 100)


def test_it_works_with_the_imageio_ffmpeg_build(media_root, session, clips, monkeypatch):
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    monkeypatch.setattr(keyframes, "ffmpeg_exe", imageio_ffmpeg.get_ffmpeg_exe)
    video = _recording(session, clips["ts"])
    assert tv.read_frame_index(_picture(key_frame_at(session=session, video=video, time_ms=1010))) == 25


def test_it_refuses_a_time_after_the_end_of_the_recording(media_root, session, clips):
    video = _recording(session, clips["mp4"])  # 3.0 s
    with pytest.raises(ValueError, match=r"0:05 is after the end of Recording 1 \(0:03 long\)"):
        key_frame_at(session=session, video=video, time_ms=5000)
    with pytest.raises(ValueError, match="before the start"):
        key_frame_at(session=session, video=video, time_ms=-1)
    assert not Frame.objects.filter(video=video).exists()


def test_it_refuses_a_recording_of_another_session(media_root, session, clips):
    video = _recording(ProcedureSessionFactory(), clips["mp4"])
    with pytest.raises(ValueError, match="does not belong to this procedure"):
        key_frame_at(session=session, video=video, time_ms=1000)


def _live(session, time_ms, image=True):
    frame = FrameFactory(session=session, source=FrameSource.LIVE, timestamp_ms=time_ms)
    if image:
        frame.image.save(f"{frame.pk}.jpg", ContentFile(b"\xff\xd8\xff live"), save=True)
    return frame


def test_on_a_live_session_it_picks_the_latest_frame_at_or_before_the_time(media_root, session):
    _live(session, 1000)
    at_mark = _live(session, 4000)
    _live(session, 4500, image=False)  # never stored a picture
    _live(session, 9000)
    _live(ProcedureSessionFactory(), 4200)  # another session's
    assert key_frame_at(session=session, video=None, time_ms=4400) == at_mark
    assert key_frame_at(session=session, video=None, time_ms=4000) == at_mark


def test_on_a_live_session_a_mark_before_the_first_frame_takes_the_first(media_root, session):
    first = _live(session, 3000)
    _live(session, 5000)
    assert key_frame_at(session=session, video=None, time_ms=100) == first


def test_on_a_live_session_without_frames_there_is_none(media_root, session):
    _live(session, 1000, image=False)
    assert key_frame_at(session=session, video=None, time_ms=1000) is None
