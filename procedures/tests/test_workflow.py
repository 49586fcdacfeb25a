"""The session lifecycle (procedures.workflow): the transitions, what each refuses, and
that nothing else writes a session's status or a recording's state."""

import ast
from pathlib import Path

import pytest
from django.core.files.base import ContentFile

from procedures import workflow
from procedures.models import PlaybackState, SessionStatus, Video, VideoState
from procedures.tests.factories import ProcedureSessionFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def a_video(session, state=VideoState.UPLOADED) -> Video:
    video = Video(session=session, sha256="0" * 64, size_bytes=1, state=state)
    video.file.save("v.bin", ContentFile(b"x"), save=False)
    video.save()
    return video


def test_a_recording_moves_through_its_stages_in_order(session, media_root, monkeypatch):
    published = []
    monkeypatch.setattr("medvision.broadcast.broadcast", lambda session_id, message: published.append(message))
    video = a_video(session)
    workflow.video_start_sampling(video)
    workflow.video_record_progress(video, 0.5, {"sampled": 10, "kept": 4})
    workflow.video_finish_sampling(video, progress=0.0, detail={"done": 0, "total": 4}, gate_counts={"kept": 4})
    workflow.video_start_summarising(video)
    workflow.video_finish(video, {"findings": 0})
    video.refresh_from_db()
    assert video.state == VideoState.DONE and video.summary == {"findings": 0} and video.sampling_finished_at
    assert [(m["type"], m["stage"]) for m in published] == [
        ("progress", "sampling"), ("progress", "sampling"), ("progress", "analysing"),
        ("progress", "summarising"), ("progress", "done"),
    ]
    assert published[1] == {"type": "progress", "video": str(video.pk), "stage": "sampling", "progress": 0.5,
                            "sampled": 10, "kept": 4}


@pytest.mark.parametrize(("state", "transition"), [
    (VideoState.UPLOADED, workflow.video_start_summarising),
    (VideoState.DONE, workflow.video_start_sampling),
    (VideoState.SUMMARISING, workflow.video_start_summarising),
    (VideoState.ANALYSING, lambda v: workflow.video_finish(v, {})),
])
def test_a_recording_cannot_skip_or_repeat_a_stage(session, media_root, state, transition):
    video = a_video(session, state)
    with pytest.raises(workflow.NotAllowed, match=f"cannot go from {state}"):
        transition(video)
    video.refresh_from_db()
    assert video.state == state


def test_a_failed_recording_fails_a_processing_session_with_the_reason(session, media_root, monkeypatch):
    published = []
    monkeypatch.setattr("medvision.broadcast.broadcast", lambda session_id, message: published.append(message))
    session.status = SessionStatus.PROCESSING
    session.save()
    video = a_video(session, VideoState.SAMPLING)
    workflow.video_fail(video.pk, "Not a video.")
    video.refresh_from_db()
    session.refresh_from_db()
    assert video.state == VideoState.FAILED and video.error_message == "Not a video."
    assert session.status == SessionStatus.FAILED
    assert published[-1] == {"type": "status", "status": "failed", "message": "Not a video."}


def test_a_finished_recording_does_not_fail_afterwards(session, media_root):
    video = a_video(session, VideoState.DONE)
    workflow.video_fail(video.pk, "late error")
    video.refresh_from_db()
    assert video.state == VideoState.DONE and video.error_message == ""


def test_live_frames_start_a_draft_session_and_leave_a_processing_one(clinician):
    draft = ProcedureSessionFactory(clinician=clinician, status=SessionStatus.DRAFT)
    assert workflow.session_start_live(actor=clinician, session=draft).status == SessionStatus.LIVE
    busy = ProcedureSessionFactory(clinician=clinician, status=SessionStatus.PROCESSING)
    assert workflow.session_start_live(actor=clinician, session=busy).status == SessionStatus.PROCESSING


def test_analysis_finishing_puts_the_session_into_review(clinician):
    for before, after in ((SessionStatus.PROCESSING, SessionStatus.REVIEW), (SessionStatus.FAILED, SessionStatus.REVIEW),
                          (SessionStatus.LIVE, SessionStatus.LIVE)):
        session = ProcedureSessionFactory(clinician=clinician, status=before)
        workflow.session_finish_analysis(session)
        session.refresh_from_db()
        assert session.status == after, before


def test_a_signed_session_cannot_start_processing(clinician):
    from django.utils import timezone

    signed = ProcedureSessionFactory(clinician=clinician, status=SessionStatus.SIGNED, signed_by=clinician,
                                     signed_at=timezone.now())
    with pytest.raises(workflow.NotAllowed, match="signed"):
        workflow.session_start_processing(signed)


def test_a_receiver_of_session_signing_can_refuse_the_sign_off(clinician):
    from reporting.tests.factories import complete_report

    session = ProcedureSessionFactory(clinician=clinician, status=SessionStatus.REVIEW)
    complete_report(session, actor=clinician)  # the structured report is not what refuses here

    def refuse(sender, *, session, actor, **kwargs):
        raise workflow.NotAllowed("Not today.")

    workflow.session_signing.connect(refuse, dispatch_uid="test-refuse")
    try:
        with pytest.raises(workflow.NotAllowed, match="Not today."):
            workflow.session_sign(actor=clinician, session=session)
    finally:
        workflow.session_signing.disconnect(dispatch_uid="test-refuse")
    session.refresh_from_db()
    assert session.status == SessionStatus.REVIEW and session.signed_at is None


def _writes_of(attribute: str, path: Path) -> list[int]:
    """Lines of ``path`` that assign ``<something>.<attribute> = ...`` or pass
    ``<attribute>=`` to ``.update(...)``."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            lines += [node.lineno for t in targets if isinstance(t, ast.Attribute) and t.attr == attribute]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "update":
            lines += [node.lineno for kw in node.keywords if kw.arg == attribute]
    return lines


def test_only_the_workflow_writes_a_session_status_or_a_recording_state():
    writers = {}
    for app in ("procedures", "analysis", "voice", "exports", "portal", "medvision"):
        for path in (ROOT / app).rglob("*.py"):
            if "tests" in path.parts or "migrations" in path.parts or path.name == "workflow.py":
                continue
            source = path.read_text()
            # "status"/"state" of another model (a frame's, a grammar matcher's) are not ours;
            # "playback_state" is only a recording's.
            attributes = ["playback_state"]
            if "SessionStatus" in source or "VideoState" in source:
                attributes += ["status", "state"]
            for attribute in attributes:
                for line in _writes_of(attribute, path):
                    writers.setdefault(str(path.relative_to(ROOT)), []).append(line)
    assert not writers, f"status/state/playback_state written outside procedures/workflow.py: {writers}"


def test_the_write_finder_sees_a_playback_state_write(tmp_path):
    sample = tmp_path / "bad.py"
    sample.write_text("video.playback_state = 'ready'\nVideo.objects.filter(pk=1).update(playback_state='failed')\n")
    assert _writes_of("playback_state", sample) == [1, 2]


def test_the_playable_copy_moves_through_its_states(session, media_root, monkeypatch,
                                                   django_capture_on_commit_callbacks):
    published = []
    monkeypatch.setattr("medvision.broadcast.broadcast", lambda _sid, event: published.append(event))
    video = a_video(session)
    with django_capture_on_commit_callbacks(execute=True):
        assert workflow.video_playback_needed(video) and video.playback_state == PlaybackState.PENDING
        assert not workflow.video_playback_needed(video)  # a redelivered task: already pending
    with django_capture_on_commit_callbacks(execute=True):
        workflow.video_playback_start(video)
    workflow.video_playback_progress(video, 0.5)  # published at once: progress is not a transition
    with django_capture_on_commit_callbacks(execute=True):
        workflow.video_playback_ready(video, f"videos/{session.pk}/{video.pk}.playback.mp4")
    video.refresh_from_db()
    assert video.playback_state == PlaybackState.READY and video.playback_progress == 1.0
    assert video.playback_file.name.endswith(".playback.mp4")
    assert [(e["type"], e["state"], e["progress"]) for e in published] == [
        ("playback", "pending", 0.0), ("playback", "making", 0.0), ("playback", "making", 0.5),
        ("playback", "ready", 1.0)]
    with pytest.raises(workflow.NotAllowed):
        workflow.video_playback_failed(video, "too late")  # a ready copy stays ready


def test_a_failed_copy_keeps_its_reason_and_leaves_the_recording_alone(session, media_root):
    video = a_video(session, VideoState.ANALYSING)
    workflow.video_playback_needed(video)
    workflow.video_playback_start(video)
    workflow.video_playback_failed(video, "ffmpeg failed")
    video.refresh_from_db()
    assert video.playback_state == PlaybackState.FAILED and video.playback_error == "ffmpeg failed"
    assert video.state == VideoState.ANALYSING
    with pytest.raises(workflow.NotAllowed):
        workflow.video_playback_progress(video, 0.3)
    assert workflow.video_playback_needed(video)  # it may be tried again
