"""The tasks are thin, but they do the hand-overs: an analysed batch moves its recording
on, and work is queued by task name (analysis.dispatch) onto the same task objects."""

import pytest

from analysis import dispatch, services, tasks
from analysis.models import Frame
from analysis.tests.fakes import FakeAnalyzer, jpeg_bytes
from procedures.models import Video

pytestmark = pytest.mark.django_db


def test_a_recordings_last_analysed_frame_hands_it_to_summarising(session, monkeypatch, settings,
                                                                   django_capture_on_commit_callbacks):
    settings.ANALYZER_BATCH_SIZE = 1
    analyzer = FakeAnalyzer()
    monkeypatch.setattr("analysis.analyzer.configured_analyzer", lambda: analyzer)
    queued = []
    monkeypatch.setattr("analysis.tasks.summarise_video.delay", lambda video_id: queued.append(video_id))
    video = Video.objects.create(session=session, sha256="c" * 64, file="videos/z.bin", state="analysing")
    frames = [services.frame_create(session=session, source="video", video=video, timestamp_ms=ts,
                                    jpeg=jpeg_bytes(seed=ts), width=64, height=48) for ts in (0, 1000)]

    # The chunk's task runs the scheduling loop: its own frame first, then whatever else
    # waits (the recording's other frame), batch by batch.
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.analyze_frames(frame_ids=[str(frames[1].pk)]) == 2
    assert analyzer.calls == [1, 1]
    first_done = min(Frame.objects.filter(video=video), key=lambda f: f.analysed_at)
    assert first_done.pk == frames[1].pk
    video.refresh_from_db()
    assert video.state == "summarising" and video.progress_detail == {"done": 2, "total": 2}
    assert queued == [str(video.pk)]

    # The other chunk's task (or a redelivery) finds nothing left and ends at once.
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.analyze_frames(frame_ids=[str(frames[0].pk)]) == 0
    assert queued == [str(video.pk)] and analyzer.calls == [1, 1]


def test_dispatch_names_every_task_it_sends():
    for name in (dispatch.ANALYZE_FRAMES, dispatch.ANALYZE_LIVE, dispatch.SCHEDULE, dispatch.PROCESS_VIDEO,
                 dispatch.SUMMARISE_VIDEO):
        assert getattr(tasks, name.rsplit(".", 1)[1]).name == name


def test_dispatch_sends_after_commit_only(monkeypatch, django_capture_on_commit_callbacks):
    sent = []
    monkeypatch.setattr("analysis.tasks.analyze_live.delay", lambda *args: sent.append(args))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        dispatch.send_after_commit(dispatch.ANALYZE_LIVE, "session-id")
    assert sent == [] and len(callbacks) == 1
    callbacks[0]()
    assert sent == [("session-id",)]


def test_every_dispatched_name_is_a_task_a_web_process_knows():
    # A web server runs no worker, so Celery's autodiscovery never ran there; the app's
    # ready() registers the tasks (a daphne process once failed a live frame with KeyError).
    from medvision.celery import app

    for name in (dispatch.ANALYZE_FRAMES, dispatch.ANALYZE_LIVE, dispatch.SCHEDULE, dispatch.PROCESS_VIDEO,
                 dispatch.SUMMARISE_VIDEO):
        assert app.tasks[name].name == name
