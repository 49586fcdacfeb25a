"""Accepting a procedure recording: validated by probing, stored whole or not at all.

The checks run before anything is kept: size, duplicate (same bytes already uploaded to
this session), and ffmpeg probing (a video stream, duration and frame rate above zero,
dimensions within limits, not truncated). A refused upload leaves no file and no record,
and the session does not move to "processing".
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from contextlib import contextmanager

from django.conf import settings
from django.core.files import File
from django.db import IntegrityError, transaction

from medvision.audit import acting_as
from medvision.errors import RefusedInput
from procedures import access, workflow
from procedures.models import ProcedureSession, Video, VideoState

from . import dispatch
from .media.probe import InvalidVideo, ProbeError, probe_video

ACTIVE_STATES = (VideoState.UPLOADED, VideoState.PROBING, VideoState.SAMPLING, VideoState.ANALYSING,
                 VideoState.SUMMARISING)


class VideoRejected(RefusedInput):
    """The upload is refused; ``message`` tells the person what to do, ``code`` is stable."""

    def __init__(self, message: str, code: str):  # (message first, as its callers write it)
        super().__init__(code, message)


def _sha256(uploaded) -> str:
    digest = hashlib.sha256()
    uploaded.seek(0)
    for chunk in uploaded.chunks(1024 * 1024):
        digest.update(chunk)
    uploaded.seek(0)
    return digest.hexdigest()


@contextmanager
def _local_path(uploaded):
    """A filesystem path to the upload (ffmpeg needs one): Django's temporary file for
    large uploads, a private temporary copy for small in-memory ones."""
    if hasattr(uploaded, "temporary_file_path"):
        yield uploaded.temporary_file_path()
        return
    fd, path = tempfile.mkstemp(suffix=".upload")
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in uploaded.chunks():
                out.write(chunk)
        uploaded.seek(0)
        yield path
    finally:
        os.unlink(path)


def probe_upload(path: str):
    try:
        return probe_video(
            path,
            max_width=settings.VIDEO_MAX_WIDTH,
            max_height=settings.VIDEO_MAX_HEIGHT,
            max_duration_s=settings.VIDEO_MAX_DURATION_S,
        )
    except InvalidVideo as exc:
        raise VideoRejected(exc.message, exc.code) from None
    except ProbeError as exc:  # ffmpeg itself failed: not the uploader's fault
        raise VideoRejected(f"The video could not be checked right now ({exc}). Please try again.", "probe_failed") from None


def video_upload(*, actor, session: ProcedureSession, uploaded) -> Video:
    access.ensure_editable(actor, session)
    if uploaded.size == 0:
        raise VideoRejected("The file is empty. Choose the procedure recording and upload it again.", "empty")
    if uploaded.size > settings.VIDEO_MAX_UPLOAD_BYTES:
        limit_gb = settings.VIDEO_MAX_UPLOAD_BYTES / 1024**3
        raise VideoRejected(
            f"The file is {uploaded.size / 1024**3:.1f} GB; the limit is {limit_gb:.1f} GB. "
            "Trim the recording or ask an administrator to raise VIDEO_MAX_UPLOAD_BYTES.",
            "too_large",
        )
    sha256 = _sha256(uploaded)
    previous = Video.objects.filter(session=session, sha256=sha256).first()
    if previous is not None:
        raise VideoRejected(
            f"This recording was already uploaded to this session on {previous.created_at:%Y-%m-%d %H:%M} UTC.",
            "duplicate",
        )
    with _local_path(uploaded) as path:
        info = probe_upload(path)

    video = Video(
        session=session, original_name=os.path.basename(uploaded.name or "")[:255], sha256=sha256,
        container=info.format_name[:64], codec=info.codec[:64], duration_s=info.duration_s, fps=info.fps,
        width=info.width, height=info.height, size_bytes=uploaded.size, uploaded_by=actor,
    )
    stored = False
    try:
        with transaction.atomic(), acting_as(actor):
            locked = ProcedureSession.objects.select_for_update().get(pk=session.pk)
            access.ensure_editable(actor, locked)
            if locked.videos.filter(state__in=ACTIVE_STATES).exists():
                raise VideoRejected("Another recording of this session is still being processed; "
                                    "wait until it has finished.", "busy")
            uploaded.seek(0)
            video.file.save(f"{video.pk}.bin", File(uploaded), save=False)
            stored = True
            video.save()
            workflow.session_start_processing(locked)
            dispatch.send_after_commit(dispatch.PROCESS_VIDEO, str(video.pk))
    except IntegrityError:
        raise VideoRejected("This recording was already uploaded to this session.", "duplicate") from None
    finally:
        if stored and video._state.adding:  # the transaction failed after the file was written
            video.file.delete(save=False)
    return video

