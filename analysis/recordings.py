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
from django.db.models import Max

from medvision.audit import acting_as
from medvision.errors import RefusedInput
from procedures import access, workflow
from procedures.models import ProcedureSession, Video, VideoState, video_upload_path

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


def check_before_storing(*, session: ProcedureSession, size: int, sha256: str | None = None) -> None:
    """The checks every way of adding a recording makes first (size, then duplicate)."""
    if size == 0:
        raise VideoRejected("The file is empty. Choose the procedure recording and upload it again.", "empty")
    if size > settings.VIDEO_MAX_UPLOAD_BYTES:
        limit_gb = settings.VIDEO_MAX_UPLOAD_BYTES / 1024**3
        raise VideoRejected(
            f"The file is {size / 1024**3:.1f} GB; the limit is {limit_gb:.1f} GB. "
            "Trim the recording or ask an administrator to raise VIDEO_MAX_UPLOAD_BYTES.",
            "too_large",
        )
    if sha256 is None:
        return
    previous = Video.objects.filter(session=session, sha256=sha256).first()
    if previous is not None:
        raise VideoRejected(
            f"This recording was already uploaded to this session on {previous.created_at:%Y-%m-%d %H:%M} UTC "
            f"({previous.display_name}).",
            "duplicate",
        )


def video_upload(*, actor, session: ProcedureSession, uploaded) -> Video:
    """A recording sent in one request (multipart): checked, probed, stored, queued."""
    access.ensure_editable(actor, session)
    check_before_storing(session=session, size=uploaded.size)
    if uploaded.size > settings.VIDEO_SINGLE_REQUEST_MAX_BYTES:
        raise VideoRejected(f"One request may carry at most {settings.VIDEO_SINGLE_REQUEST_MAX_BYTES / 1024**2:.0f} MB; "
                            "send this recording with the resumable upload (the session page does).", "too_large")
    sha256 = _sha256(uploaded)
    check_before_storing(session=session, size=uploaded.size, sha256=sha256)
    with _local_path(uploaded) as path:
        info = probe_upload(path)

    def place(video: Video) -> None:
        uploaded.seek(0)
        video.file.save(f"{video.pk}.bin", File(uploaded), save=False)

    return store_recording(actor=actor, session=session, info=info, sha256=sha256, size=uploaded.size,
                           original_name=uploaded.name or "", place_file=place)


def video_from_file(*, actor, session: ProcedureSession, path: str, original_name: str, sha256: str) -> Video:
    """A recording already on disk under MEDIA_ROOT (a finished resumable upload): checked,
    probed, then *moved* into place (no copy of a multi-GB file). The caller deletes ``path``
    if this raises."""
    access.ensure_editable(actor, session)
    size = os.path.getsize(path)
    check_before_storing(session=session, size=size, sha256=sha256)
    info = probe_upload(path)

    def place(video: Video) -> None:
        name = video_upload_path(video, "")
        target = os.path.join(settings.MEDIA_ROOT, name)
        os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
        os.replace(path, target)
        video.file.name = name

    return store_recording(actor=actor, session=session, info=info, sha256=sha256, size=size,
                           original_name=original_name, place_file=place)


def store_recording(*, actor, session: ProcedureSession, info, sha256: str, size: int, original_name: str,
                    place_file) -> Video:
    """Keep a probed recording: numbered after the session's others, its file put in place by
    ``place_file(video)``, the session moved to processing and the pipeline queued, all in
    one transaction (a failure leaves no file and no row)."""
    video = Video(
        session=session, original_name=os.path.basename(original_name)[:255], sha256=sha256,
        container=info.format_name[:64], codec=info.codec[:64], duration_s=info.duration_s, fps=info.fps,
        width=info.width, height=info.height, size_bytes=size, uploaded_by=actor,
    )
    stored = False
    try:
        with transaction.atomic(), acting_as(actor):
            locked = ProcedureSession.objects.select_for_update().get(pk=session.pk)
            access.ensure_editable(actor, locked)
            if locked.videos.filter(state__in=ACTIVE_STATES).exists():
                raise VideoRejected("Another recording of this session is still being processed; "
                                    "wait until it has finished.", "busy")
            video.number = (locked.videos.aggregate(highest=Max("number"))["highest"] or 0) + 1
            place_file(video)
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
