"""Resumable recording uploads (tus 1.0): bytes straight to disk, in bounded memory.

An upload is a ``ResumableUpload`` row and a file ``MEDIA_ROOT/uploads/<id>.part``. Each
PATCH appends one chunk at the stored offset (the route's body limit, TUS_MAX_CHUNK_BYTES,
keeps every request small, so the web process's memory does not depend on the file's
size). A chunk is kept only whole and, when the client sends a checksum, only when it
matches; otherwise the file is cut back to the previous offset. When the last byte is in,
the upload is handed to a background task (``upload_finish``) that hashes, probes and
stores it as the session's next recording, or refuses it with a reason and deletes the
file. Abandoned uploads expire and are deleted with their file.

Concurrency: a PATCH holds an exclusive lock on the ``.part`` file while it compares
offsets and writes, so a client's retry that overlaps its first attempt cannot write the
same range twice (the loser gets 409). The lock is per machine: web processes on several
machines must share the upload folder on storage with working ``flock`` or route an
upload's requests to one machine (README).
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from medvision.audit import acting_as
from procedures import access
from procedures.models import ProcedureSession

from . import dispatch
from .models import ResumableUpload, UploadState
from .recordings import VideoRejected, video_from_file
from .tus_protocol import CHECKSUM_MISMATCH, TusError

logger = logging.getLogger(__name__)

READ_BLOCK = 1024 * 1024  # how much of a chunk is held in memory at once
DISK_RESERVE_BYTES = 1024**3  # never fill the disk to the last gigabyte


def part_path(upload: ResumableUpload) -> Path:
    return Path(settings.MEDIA_ROOT) / upload.part_name


def _expiry():
    return timezone.now() + timedelta(hours=settings.TUS_UPLOAD_EXPIRY_HOURS)


def delete_part_file(sender, instance: ResumableUpload, **kwargs) -> None:
    """post_delete: an upload's row is gone, so are its bytes (once the delete commits)."""
    path = part_path(instance)  # (now: the instance loses its pk once deleted)
    transaction.on_commit(lambda: path.unlink(missing_ok=True))


def _delete_part(upload: ResumableUpload) -> None:
    part_path(upload).unlink(missing_ok=True)


# --- create -------------------------------------------------------------------------------


def upload_create(*, actor, session: ProcedureSession, length: int, metadata: dict) -> ResumableUpload:
    access.ensure_editable(actor, session)
    if length == 0:
        raise TusError(400, "empty", "The file is empty. Choose the procedure recording and upload it again.")
    if length > settings.VIDEO_MAX_UPLOAD_BYTES:
        raise TusError(413, "too_large",
                       f"The file is {length / 1024**3:.2f} GB; the limit is "
                       f"{settings.VIDEO_MAX_UPLOAD_BYTES / 1024**3:.2f} GB. Trim the recording or ask an "
                       "administrator to raise VIDEO_MAX_UPLOAD_BYTES.")
    uploads_expire()
    open_uploads = ResumableUpload.objects.filter(created_by=actor, state=UploadState.RECEIVING,
                                                  expires_at__gt=timezone.now()).count()
    if open_uploads >= settings.TUS_MAX_OPEN_UPLOADS_PER_USER:
        raise TusError(429, "too_many_uploads",
                       f"You have {open_uploads} unfinished uploads; finish or cancel one before starting another.")
    root = Path(settings.MEDIA_ROOT)
    (root / "uploads").mkdir(parents=True, exist_ok=True, mode=0o700)
    free = shutil.disk_usage(root / "uploads").free
    if free < length + DISK_RESERVE_BYTES:
        raise TusError(507, "no_space", "The server does not have room for this recording right now; "
                                        "tell an administrator (the media disk is nearly full).")
    upload = ResumableUpload(session=session, created_by=actor, length=length, expires_at=_expiry(),
                             filename=os.path.basename(metadata.get("filename") or metadata.get("name") or "")[:255])
    fd = os.open(part_path(upload), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    try:
        with acting_as(actor):
            upload.save()
    except BaseException:
        _delete_part(upload)
        raise
    return upload


# --- find ---------------------------------------------------------------------------------


def upload_get(*, actor, session_id, upload_id) -> ResumableUpload:
    """The caller's own upload to a session they can still change. Anyone else's upload,
    or one of a session they cannot see, is "not found" (404); an expired one is 410."""
    session = access.get_visible_session(actor, session_id)
    try:
        upload = ResumableUpload.objects.select_related("session").get(pk=upload_id, session=session,
                                                                       created_by=actor)
    except (ResumableUpload.DoesNotExist, ValueError):
        raise TusError(404, "not_found", "No such upload (it does not exist, or it is not yours).") from None
    if upload.state == UploadState.RECEIVING and upload.expires_at <= timezone.now():
        upload_expire_one(upload)
        raise TusError(410, "expired", "This upload expired before it was finished and was deleted; "
                                       "upload the recording again.")
    return upload


def _ensure_receiving(actor, upload: ResumableUpload) -> None:
    access.ensure_editable(actor, upload.session)
    if upload.state == UploadState.REFUSED:
        raise TusError(410, "refused", f"This upload was refused: {upload.error_message}")
    if upload.state != UploadState.RECEIVING:
        raise TusError(409, "finished", "This upload is complete; it takes no more bytes.")


# --- append -------------------------------------------------------------------------------


class _Locked:
    """An exclusive lock on the upload's .part file for one PATCH."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        try:
            self.file = open(self.path, "r+b")
        except FileNotFoundError:
            raise TusError(410, "gone", "This upload's data is gone (it expired or was cancelled); "
                                        "upload the recording again.") from None
        fcntl.flock(self.file, fcntl.LOCK_EX)  # a retry overlapping its first attempt waits here
        return self.file

    def __exit__(self, *exc):
        fcntl.flock(self.file, fcntl.LOCK_UN)
        self.file.close()


def upload_append(*, actor, upload: ResumableUpload, offset: int, body, declared_length: int | None,
                  checksum=None) -> ResumableUpload:
    """Write one PATCH body at ``offset``. ``body`` is read in READ_BLOCK pieces; the
    offset moves only after the whole body arrived (and matched ``checksum``)."""
    _ensure_receiving(actor, upload)
    with _Locked(part_path(upload)) as out:
        stored = ResumableUpload.objects.get(pk=upload.pk)  # the offset as of holding the lock
        if stored.state != UploadState.RECEIVING:
            raise TusError(409, "finished", "This upload is complete; it takes no more bytes.")
        if offset != stored.offset:
            raise TusError(409, "offset_mismatch",
                           f"Upload-Offset is {offset} but the server holds {stored.offset} bytes; send a HEAD "
                           "request and continue from the server's offset.")
        room = stored.length - stored.offset
        if declared_length is not None and declared_length > room:
            raise TusError(413, "beyond_length",
                           f"This chunk ({declared_length} bytes) would go past the upload's declared length "
                           f"({stored.length} bytes; {room} to go).")
        out.seek(offset)
        written = 0
        try:
            while True:
                block = body.read(READ_BLOCK)
                if not block:
                    break
                written += len(block)
                if written > room:
                    raise TusError(413, "beyond_length", f"The chunk goes past the upload's declared length "
                                                         f"({stored.length} bytes).")
                if checksum is not None:
                    checksum[0].update(block)
                out.write(block)
            if checksum is not None and checksum[0].digest() != checksum[1]:
                raise TusError(CHECKSUM_MISMATCH, "checksum_mismatch",
                               "The chunk's checksum does not match what arrived; it was discarded. Send it again.")
            out.flush()
            os.fsync(out.fileno())
        except BaseException:
            out.truncate(offset)  # keep only whole, verified chunks
            raise
        new_offset = offset + written
        complete = new_offset == stored.length
        fields = {"offset": new_offset, "expires_at": _expiry(), "updated_at": timezone.now()}
        if complete:
            fields["state"] = UploadState.CHECKING
        with transaction.atomic(), acting_as(actor):
            ResumableUpload.objects.filter(pk=upload.pk).update(**fields)
            if complete:
                stored.state = UploadState.CHECKING
                stored.save(update_fields=["state"])  # (an audited change: the upload is complete)
                dispatch.send_after_commit(dispatch.FINISH_UPLOAD, str(upload.pk))
    upload.refresh_from_db()
    return upload


# --- finish -------------------------------------------------------------------------------


class SessionBusy(Exception):
    """The session is still processing another recording: try again later."""


def upload_finish(upload_id) -> ResumableUpload:
    """A complete upload becomes a recording (hashed, probed, moved into place) or is refused
    with a reason and its file deleted. Raises SessionBusy while another recording of the
    session is processing (the task tries again later; the bytes wait on disk)."""
    from .media.probe import sha256_file

    upload = ResumableUpload.objects.select_related("session", "created_by").get(pk=upload_id)
    if upload.state != UploadState.CHECKING:
        return upload  # a redelivered task: already finished
    path = part_path(upload)
    try:
        video = video_from_file(actor=upload.created_by, session=upload.session, path=str(path),
                                original_name=upload.filename, sha256=sha256_file(path))
    except VideoRejected as exc:
        if exc.code == "busy" and upload.expires_at > timezone.now():
            raise SessionBusy() from None
        return _refuse(upload, exc.code, exc.message)
    except access.SessionReadOnly as exc:
        return _refuse(upload, "read_only", str(exc))
    except FileNotFoundError:
        return _refuse(upload, "gone", "The uploaded file disappeared before it could be checked; upload it again.")
    with acting_as(upload.created_by):
        upload.state, upload.video = UploadState.DONE, video
        upload.save(update_fields=["state", "video", "updated_at"])
    return upload


def _refuse(upload: ResumableUpload, code: str, message: str) -> ResumableUpload:
    _delete_part(upload)
    with acting_as(upload.created_by):
        upload.state, upload.error_code, upload.error_message = UploadState.REFUSED, code[:40], message
        upload.save(update_fields=["state", "error_code", "error_message", "updated_at"])
    logger.info("Upload %s refused (%s): %s", upload.pk, code, message)
    return upload


# --- terminate and expire -----------------------------------------------------------------


def upload_terminate(*, actor, upload: ResumableUpload) -> None:
    """The tus termination extension: the client gives the upload up; file and row go."""
    access.ensure_editable(actor, upload.session)
    if upload.state == UploadState.CHECKING:
        raise TusError(409, "checking", "This upload is complete and being checked; it can no longer be cancelled.")
    with acting_as(actor):
        upload.delete()  # the file goes with the row (delete_part_file)


def upload_expire_one(upload: ResumableUpload) -> None:
    upload.delete()  # with its file; audited by django-auditlog as a deletion by the system


def uploads_expire(now=None) -> int:
    """Delete uploads still receiving past their expiry (with their files). A complete
    upload still "checking" past its expiry lost its task (a broker or worker gone): it is
    queued again, and is then stored or refused with a reason, never left on disk."""
    now = now or timezone.now()
    expired = list(ResumableUpload.objects.filter(state=UploadState.RECEIVING, expires_at__lte=now))
    for upload in expired:
        upload_expire_one(upload)
    for upload_id in ResumableUpload.objects.filter(state=UploadState.CHECKING, expires_at__lte=now).values_list(
            "pk", flat=True):
        dispatch.send_after_commit(dispatch.FINISH_UPLOAD, str(upload_id))
    return len(expired)
