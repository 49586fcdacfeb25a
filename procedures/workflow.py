"""The session lifecycle: the only code that writes ``ProcedureSession.status`` and
``Video.state``.

Every change of either goes through a named transition below; a transition that the
current state does not allow raises ``NotAllowed`` (the one domain error: the API answers
it with 400/409, the pages with a message). Events for the pages are published through
``medvision.events`` after the change is committed.

Session::

    draft/review --start_live--> live          (frames arriving; other states are left as they are)
    any unsigned --start_processing--> processing   (a recording was accepted; mode becomes recorded)
    processing/draft/failed --finish_analysis--> review
    processing --fail--> failed
    unsigned, not processing --sign--> signed  (read-only for everybody from then on)
    signed --add an addendum-->                 (status stays signed)

Recording (Video.state)::

    uploaded/sampling --start_sampling--> sampling --finish_sampling--> analysing
    analysing --start_summarising--> summarising --finish--> done
    anything but done --fail--> failed

Playable copy (Video.playback_state), beside the state above: a recording that browsers
cannot play gets an H.264 MP4 copy in the background; its failure never fails the recording::

    not_needed/failed --playback_needed--> pending --playback_start--> making
    making --playback_progress--> making --playback_ready--> ready
    pending/making --playback_failed--> failed

Other apps take part through signals, so this module imports none of them:
``session_signing`` is sent inside the sign-off transaction, the session row locked, before
the status changes; a receiver refuses the sign-off by raising ``NotAllowed`` (analysis:
live frames still in flight are cancelled and undecided proposals refuse it).
"""

from __future__ import annotations

from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from medvision.audit import acting_as
from medvision.events import PlaybackProgress, RecordingProgress, StatusChanged, publish, publish_after_commit

from . import access
from .models import Addendum, PlaybackState, ProcedureSession, SessionMode, SessionStatus, Video, VideoState


class NotAllowed(Exception):
    """A rule of the workflow refuses this change; the message says why."""


# sender=ProcedureSession, session=<locked row>, actor=<user>
session_signing = Signal()

UNSIGNED = {SessionStatus.DRAFT, SessionStatus.LIVE, SessionStatus.PROCESSING, SessionStatus.REVIEW,
            SessionStatus.FAILED}


def _locked_session(session_id) -> ProcedureSession:
    return ProcedureSession.objects.select_for_update().get(pk=session_id)


def _set_status(session: ProcedureSession, status: str, *fields: str) -> None:
    session.status = status
    session.save(update_fields=["status", *fields, "updated_at"])


# --- sessions ----------------------------------------------------------------------------

def session_start_live(*, actor, session: ProcedureSession) -> ProcedureSession:
    """Frames are arriving from the live page or a capture box. A session that is
    processing a recording or failed keeps its status (its frames are still taken)."""
    with transaction.atomic(), acting_as(actor):
        session = _locked_session(session.pk)
        access.ensure_editable(actor, session)
        if session.status in (SessionStatus.DRAFT, SessionStatus.REVIEW):
            session.started_at = session.started_at or timezone.now()
            _set_status(session, SessionStatus.LIVE, "started_at")
    return session


def session_start_processing(session: ProcedureSession) -> None:
    """A recording was accepted (inside the upload's transaction, the row locked)."""
    if session.status not in UNSIGNED:
        raise NotAllowed("This session is signed and can no longer be changed.")
    session.mode = SessionMode.RECORDED
    _set_status(session, SessionStatus.PROCESSING, "mode")


def session_finish_analysis(session: ProcedureSession) -> None:
    """Its recording is analysed and summarised: the findings wait for review. (A live
    session that also had a recording stays live.)"""
    if session.status in (SessionStatus.PROCESSING, SessionStatus.DRAFT, SessionStatus.FAILED):
        _set_status(session, SessionStatus.REVIEW)


def session_fail(session: ProcedureSession) -> bool:
    """Its recording could not be processed. Returns whether the status changed."""
    if session.status != SessionStatus.PROCESSING:
        return False
    _set_status(session, SessionStatus.FAILED)
    return True


def session_sign(*, actor, session: ProcedureSession) -> ProcedureSession:
    """Sign the report: the session becomes read-only for everybody.

    Every AI proposal must have been decided first (the analysis app refuses through
    ``session_signing`` otherwise), so that nothing enters or leaves the signed report
    without a clinician's explicit decision.
    """
    with transaction.atomic(), acting_as(actor):
        session = _locked_session(session.pk)
        access.ensure_editable(actor, session)
        if session.status == SessionStatus.PROCESSING:
            raise NotAllowed("The recording is still being analysed; sign once processing has finished.")
        session_signing.send(sender=ProcedureSession, session=session, actor=actor)
        now = timezone.now()
        session.signed_by = actor
        session.signed_at = now
        session.ended_at = session.ended_at or now
        if session.started_at and session.ended_at < session.started_at:
            session.ended_at = session.started_at
        _set_status(session, SessionStatus.SIGNED, "signed_by", "signed_at", "ended_at")
    return session


def addendum_create(*, actor, session: ProcedureSession, text: str, finding=None) -> Addendum:
    """A correction after sign-off: only on a signed session, only by its clinician."""
    with transaction.atomic(), acting_as(actor):
        session = _locked_session(session.pk)
        if session.clinician_id != actor.pk:
            raise access.SessionReadOnly("Only the clinician who signed this session can add an addendum.")
        if session.status != SessionStatus.SIGNED:
            raise NotAllowed("Addenda are for signed reports; before signing, edit the findings or notes directly.")
        addendum = Addendum(session=session, author=actor, text=text, finding=finding)
        addendum.full_clean()
        addendum.save()
    return addendum


# --- recordings ----------------------------------------------------------------------------

def _move_video(video: Video, state: str, allowed_from: set, *, progress: float, detail: dict | None,
                **fields) -> None:
    if video.state not in allowed_from:
        raise NotAllowed(f"A recording cannot go from {video.state} to {state}.")
    video.state = state
    video.progress = max(0.0, min(1.0, progress))
    if detail is not None:
        video.progress_detail = detail
    for name, value in fields.items():
        setattr(video, name, value)
    video.save(update_fields=["state", "progress", "progress_detail", *fields])
    _announce(video)


def _announce(video: Video) -> None:
    publish(video.session_id, RecordingProgress(video=str(video.pk), stage=video.state, progress=video.progress,
                                                detail=dict(video.progress_detail)))


def video_start_sampling(video: Video) -> None:
    """From uploaded, or again from sampling when a redelivered task resumes it."""
    _move_video(video, VideoState.SAMPLING, {VideoState.UPLOADED, VideoState.PROBING, VideoState.SAMPLING},
                progress=0.0, detail={"sampled": 0, "kept": 0},
                processing_started_at=video.processing_started_at or timezone.now())


def video_record_progress(video: Video, progress: float, detail: dict) -> None:
    """Progress within the current stage (the state does not change)."""
    video.progress = max(0.0, min(1.0, progress))
    video.progress_detail = detail
    video.save(update_fields=["progress", "progress_detail"])
    _announce(video)


def video_finish_sampling(video: Video, *, progress: float, detail: dict, gate_counts: dict) -> None:
    _move_video(video, VideoState.ANALYSING, {VideoState.SAMPLING}, progress=progress, detail=detail,
                gate_counts=gate_counts, sampling_finished_at=timezone.now())


def video_start_summarising(video: Video) -> None:
    _move_video(video, VideoState.SUMMARISING, {VideoState.ANALYSING}, progress=0.0, detail=video.progress_detail)


def video_finish(video: Video, summary: dict) -> None:
    _move_video(video, VideoState.DONE, {VideoState.SUMMARISING}, progress=1.0, detail={}, summary=summary,
                processing_finished_at=timezone.now())


def video_fail(video_id, message: str) -> None:
    """The recording could not be processed: it and (if it was processing) its session
    fail, with the reason for the pages. A recording already done stays done."""
    with transaction.atomic():
        video = Video.objects.select_for_update().get(pk=video_id)
        if video.state == VideoState.DONE:
            return
        _move_video(video, VideoState.FAILED, set(VideoState.values) - {VideoState.DONE},
                    progress=0.0, detail={"error": message}, error_message=message,
                    processing_finished_at=timezone.now())
        session_fail(_locked_session(video.session_id))
    publish(video.session_id, StatusChanged(SessionStatus.FAILED, message))


# --- playable copies -------------------------------------------------------------------------

def _move_playback(video: Video, state: str, allowed_from: set, *, progress: float, error: str = "",
                   **fields) -> None:
    if video.playback_state not in allowed_from:
        raise NotAllowed(f"A recording's playable copy cannot go from {video.playback_state} to {state}.")
    video.playback_state = state
    video.playback_progress = max(0.0, min(1.0, progress))
    video.playback_error = error
    for name, value in fields.items():
        setattr(video, name, value)
    video.save(update_fields=["playback_state", "playback_progress", "playback_error", *fields])
    _announce_playback(video, after_commit=True)


def _announce_playback(video: Video, *, after_commit: bool) -> None:
    event = PlaybackProgress(video=str(video.pk), state=video.playback_state, progress=video.playback_progress,
                             error=video.playback_error)
    (publish_after_commit if after_commit else publish)(video.session_id, event)


def video_playback_needed(video: Video) -> bool:
    """Browsers cannot play the recording as recorded: a copy is waiting to be made. Returns
    whether it changed (a redelivered sampling task finds it pending, making or ready)."""
    if video.playback_state not in (PlaybackState.NOT_NEEDED, PlaybackState.FAILED):
        return False
    _move_playback(video, PlaybackState.PENDING, {PlaybackState.NOT_NEEDED, PlaybackState.FAILED}, progress=0.0)
    return True


def video_playback_start(video: Video) -> None:
    """The copy task begins (again, when a worker died while making it)."""
    _move_playback(video, PlaybackState.MAKING, {PlaybackState.PENDING, PlaybackState.MAKING}, progress=0.0)


def video_playback_progress(video: Video, progress: float) -> None:
    """How far the copy has got (0..1 of the recording's duration); the state stays making."""
    if video.playback_state != PlaybackState.MAKING:
        raise NotAllowed(f"A recording's playable copy is {video.playback_state}, not being made.")
    video.playback_progress = max(0.0, min(1.0, progress))
    video.save(update_fields=["playback_progress"])
    _announce_playback(video, after_commit=False)


def video_playback_ready(video: Video, file_name: str) -> None:
    """The copy is complete at ``file_name`` (relative to MEDIA_ROOT)."""
    video.playback_file.name = file_name
    _move_playback(video, PlaybackState.READY, {PlaybackState.MAKING}, progress=1.0, playback_file=video.playback_file)


def video_playback_failed(video: Video, message: str) -> None:
    """No copy could be made: the page says why and offers the original for download. The
    recording itself (sampling, findings) goes on as before."""
    _move_playback(video, PlaybackState.FAILED, {PlaybackState.PENDING, PlaybackState.MAKING}, progress=0.0,
                   error=message[:2000])
