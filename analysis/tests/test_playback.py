"""Playable copies through the real pipeline: a recording browsers cannot play gets an H.264
MP4 copy in the background with the same time base; a playable one gets none; a failed copy
is shown and leaves the recording's findings alone."""

from __future__ import annotations

import logging
import os

import pytest
from django.conf import settings as django_settings
from django.core.files import File

from analysis import playback
from analysis.media import playback_copy
from analysis.media.probe import probe_video
from analysis.media.sampler import sample_frames
from analysis.tests.test_pipeline import ColourAnalyzer, listen
from medvision.celery import app as celery_app
from procedures.models import PlaybackState, SessionStatus, Video, VideoState
from testing import videos as tv

pytestmark = pytest.mark.django_db(transaction=True)

SEGMENTS = (("red", 1.5), ("blue", 1.5))
CUT_S = tv.cut_times(SEGMENTS, fps=25)[0]


@pytest.fixture
def processing(settings, monkeypatch, media_root):
    settings.QUALITY_MIN_BLUR_SCORE = 0
    settings.DEDUP_WINDOW = 0
    settings.SAMPLING_SCENE_THRESHOLD = 0
    monkeypatch.setattr("analysis.analyzer.configured_analyzer", lambda: ColourAnalyzer())
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("playback")
    return {
        "ts": tv.make_recorder_video(folder / "tower", "mpeg2_ts", segments=SEGMENTS, interlaced=True),
        "mp4": tv.make_recorder_video(folder / "web", "h264_mp4", segments=SEGMENTS),
    }


def _recording(session, path) -> Video:
    info = probe_video(path)
    video = Video(session=session, sha256=os.urandom(32).hex(), duration_s=info.duration_s, codec=info.codec,
                  container=info.format_name[:64], fps=info.fps, width=info.width, height=info.height)
    with open(path, "rb") as fh:
        video.file.save("v.bin", File(fh), save=True)
    session.status = SessionStatus.PROCESSING
    session.save()
    return video


def _first_blue_s(path) -> float:
    with sample_frames(path, info=probe_video(path), interval_s=0.5, scene_threshold=0.3) as frames:
        for f in frames:
            r, _, b = f.image.reshape(-1, 3).mean(axis=0)
            if b > 150 and r < 80:
                return f.pts_s
    raise AssertionError("no blue frame")


def test_an_interlaced_mpegts_gets_a_playable_copy_with_the_same_times(session, clips, processing):
    from analysis.tasks import process_video

    video = _recording(session, clips["ts"])
    drain = listen(video.session_id)
    process_video.delay(str(video.pk))

    video.refresh_from_db()
    assert video.state == VideoState.DONE, video.error_message
    assert video.interlaced and video.start_time_s == pytest.approx(1.44, abs=0.05)
    assert video.playback_state == PlaybackState.READY, video.playback_error
    assert video.playback_file.name == f"videos/{session.pk}/{video.pk}.playback.mp4"
    copy = video.playback_file.path
    assert not os.path.exists(copy + ".part")
    info = probe_video(copy)
    assert info.codec == "h264" and info.pix_fmt == "yuv420p" and not info.interlaced
    assert tv.moov_before_mdat(copy) and info.height <= 720
    assert info.duration_s == pytest.approx(video.duration_s, abs=0.04)
    assert abs(_first_blue_s(copy) - CUT_S) < 0.04
    # The findings' times refer to the original and land on the same pictures in the copy.
    assert abs(_first_blue_s(video.file.path) - _first_blue_s(copy)) < 0.04
    states = [e["state"] for e in drain() if e["type"] == "playback"]
    assert states[0] == "pending" and states[-1] == "ready" and "making" in states


def test_a_browser_playable_h264_mp4_gets_no_copy(session, clips, processing, monkeypatch):
    queued = []
    monkeypatch.setattr("analysis.dispatch.send", lambda name, *args: queued.append(name))
    video = _recording(session, clips["mp4"])
    from analysis import pipeline

    pipeline.video_sample(video.pk)
    video.refresh_from_db()
    assert video.playback_state == PlaybackState.NOT_NEEDED and not video.playback_file
    assert not video.interlaced and video.start_time_s == 0
    assert "analysis.tasks.make_playback_copy" not in queued
    assert "analysis.tasks.analyze_frames" in queued  # the recording itself went on


def test_copies_can_be_switched_off(session, clips, processing, settings):
    settings.PLAYBACK_COPY_ENABLED = False
    video = _recording(session, clips["ts"])
    assert not playback.queue_if_needed(video, probe_video(clips["ts"]))
    video.refresh_from_db()
    assert video.playback_state == PlaybackState.NOT_NEEDED and video.interlaced


def test_a_failed_copy_is_shown_logged_and_cleaned_up(session, clips, processing, monkeypatch, caplog):
    from analysis.tasks import process_video

    written = []

    def broken(src, dst, **kwargs):
        with open(dst, "wb") as fh:
            fh.write(b"half a copy")
        written.append(dst)
        raise playback_copy.CopyFailed("ffmpeg failed (exit status 1): Invalid data")

    monkeypatch.setattr(playback_copy, "make_copy", broken)
    video = _recording(session, clips["ts"])
    with caplog.at_level(logging.WARNING, logger="analysis.playback"):
        process_video.delay(str(video.pk))
    video.refresh_from_db()
    assert video.playback_state == PlaybackState.FAILED
    assert video.playback_error == "ffmpeg failed (exit status 1): Invalid data"
    assert written and not os.path.exists(written[0])  # the half-written copy is gone
    assert not video.playback_file
    assert video.state == VideoState.DONE  # findings still reviewable
    assert video.session.findings.exists()
    assert "No playable copy" in caplog.text


def test_the_task_does_nothing_for_a_copy_nobody_asked_for(session, clips, processing, monkeypatch):
    calls = []
    monkeypatch.setattr(playback_copy, "make_copy", lambda *a, **k: calls.append(a))
    video = _recording(session, clips["ts"])  # never queued: its copy is "not needed"
    playback.make_copy(video.pk)
    assert calls == []
    video.refresh_from_db()
    assert video.playback_state == PlaybackState.NOT_NEEDED


@pytest.mark.skipif(not django_settings.EMBEDDED, reason="embedded profile only")
def test_the_embedded_worker_makes_the_copy(session, clips, media_root, settings):
    import time

    from medvision.embedded_worker import start_embedded_worker, stop_embedded_worker

    settings.ANALYZER_WARM_UP = False  # no model needed: the copy is CPU work
    video = _recording(session, clips["ts"])
    start_embedded_worker()
    try:
        assert playback.queue_if_needed(video, probe_video(clips["ts"]))  # queued after commit
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            video.refresh_from_db()
            if video.playback_state in (PlaybackState.READY, PlaybackState.FAILED):
                break
            time.sleep(0.2)
    finally:
        stop_embedded_worker()
    assert video.playback_state == PlaybackState.READY, video.playback_error
    assert probe_video(video.playback_file.path).codec == "h264"


def test_a_copy_shorter_than_the_recording_is_refused(session, clips, processing, monkeypatch, media_root,
                                                      tmp_path):
    short = tv.make_recorder_video(tmp_path / "short", "h264_mp4", segments=(("red", 0.5),))

    def too_short(src, dst, **kwargs):
        with open(short, "rb") as fh, open(dst, "wb") as out:
            out.write(fh.read())

    monkeypatch.setattr(playback_copy, "make_copy", too_short)
    video = _recording(session, clips["ts"])
    assert playback.queue_if_needed(video, probe_video(clips["ts"]))  # eager: made at commit
    video.refresh_from_db()
    assert video.playback_state == PlaybackState.FAILED
    assert video.playback_error == "the copy lasts 0.5 s but the recording 3.0 s"
    assert not os.path.exists(os.path.join(media_root, f"videos/{session.pk}/{video.pk}.playback.mp4.part"))
