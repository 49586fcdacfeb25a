"""Browser-playable copies of recordings, the Django side (the ffmpeg side is
``analysis.media.playback_copy``).

``queue_if_needed`` runs when a recording's sampling starts: it notes what the probe found
(interlaced, container start) and, when browsers cannot play the recording, marks the copy
pending and queues ``make_playback_copy`` on the CPU queue. ``make_copy`` is that task's
body: the copy is written next to the original as ``<id>.playback.mp4.part`` and renamed
when complete, so a half-written copy is never served; on failure the part file is removed
and the recording shows why (its sampling and findings are not affected). The original
stays the evidence; findings' times refer to it, and the copy has the same time base.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time

from django.conf import settings
from django.db import transaction

from procedures import workflow
from procedures.models import PlaybackState, Video, playback_copy_path

from . import dispatch

logger = logging.getLogger(__name__)

PROGRESS_EVERY_S = 1.0
# How far a copy's duration may be from the original's before the copy is refused.
DURATION_SLACK_S = 1.0
DURATION_SLACK_FRACTION = 0.01


def queue_if_needed(video: Video, info) -> bool:
    """Record ``info``'s interlacing and start time on ``video``; queue a playable copy when
    browsers cannot play it (and copies are on). Returns whether a copy was queued."""
    from .media.playback_copy import copy_reason

    video.interlaced = bool(info.interlaced)
    video.start_time_s = float(info.start_time_s or 0.0)
    video.save(update_fields=["interlaced", "start_time_s"])
    reason = copy_reason(info)
    if reason is None or not settings.PLAYBACK_COPY_ENABLED:
        return False
    with transaction.atomic():
        locked = Video.objects.select_for_update().get(pk=video.pk)
        if not workflow.video_playback_needed(locked):
            return False  # pending, being made or ready already (a redelivered task)
        logger.info("Recording %s needs a playable copy: %s", video.pk, reason)
        dispatch.send_after_commit(dispatch.MAKE_PLAYBACK_COPY, str(video.pk))
    video.refresh_from_db(fields=["playback_state", "playback_progress", "playback_error"])
    return True


def make_copy(video_id) -> None:
    """Make the playable copy of recording ``video_id`` (the task body; see the module doc)."""
    from .media.playback_copy import CopyFailed
    from .media.playback_copy import make_copy as run_copy
    from .media.probe import InvalidVideo, ProbeError, probe_video

    with transaction.atomic():
        video = Video.objects.select_for_update().filter(pk=video_id).first()
        if video is None or video.playback_state not in (PlaybackState.PENDING, PlaybackState.MAKING):
            return  # deleted, or nothing to do (ready, failed, not needed)
        workflow.video_playback_start(video)
    name = playback_copy_path(video, "")
    final = os.path.join(settings.MEDIA_ROOT, name)
    partial = final + ".part"
    started = time.monotonic()
    last = [0.0]

    def progress(fraction: float) -> None:
        if time.monotonic() - last[0] >= PROGRESS_EVERY_S:
            last[0] = time.monotonic()
            workflow.video_playback_progress(video, fraction)

    try:
        info = probe_video(video.file.path, verify=False, max_width=settings.VIDEO_MAX_WIDTH,
                           max_height=settings.VIDEO_MAX_HEIGHT, max_duration_s=settings.VIDEO_MAX_DURATION_S)
        os.makedirs(os.path.dirname(final), mode=0o700, exist_ok=True)
        run_copy(video.file.path, partial, info=info, max_height=settings.PLAYBACK_COPY_MAX_HEIGHT,
                 timeout_s=settings.PLAYBACK_COPY_TIMEOUT_S, on_progress=progress,
                 preset=settings.PLAYBACK_COPY_PRESET, crf=settings.PLAYBACK_COPY_CRF)
        _check_duration(partial, info.duration_s)
        os.replace(partial, final)
    except (CopyFailed, InvalidVideo, ProbeError, OSError) as exc:
        _remove(partial)
        reason = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        logger.warning("No playable copy of recording %s: %s", video.pk, reason)
        fail(video.pk, reason)
        return
    except BaseException:
        _remove(partial)
        raise
    with transaction.atomic():
        locked = Video.objects.select_for_update().filter(pk=video.pk).first()
        if locked is None or locked.playback_state != PlaybackState.MAKING:
            _remove(final)  # deleted meanwhile
            return
        workflow.video_playback_ready(locked, name)
    logger.info("Playable copy of recording %s made in %.1f s", video.pk, time.monotonic() - started)


def _check_duration(path: str, expected_s: float) -> None:
    """A copy that ends early (ffmpeg conceals a damaged stretch and carries on, or stops at
    a cut in the data) would put the player's timeline out of step with the findings."""
    from .media.playback_copy import CopyFailed
    from .media.probe import probe_video

    got = probe_video(path, verify=False).duration_s
    if abs(got - expected_s) > max(DURATION_SLACK_S, DURATION_SLACK_FRACTION * expected_s):
        raise CopyFailed(f"the copy lasts {got:.1f} s but the recording {expected_s:.1f} s")


def fail(video_id, reason: str) -> None:
    """Mark the copy failed (once; a copy already ready or not wanted is left alone)."""
    with transaction.atomic():
        video = Video.objects.select_for_update().filter(pk=video_id).first()
        if video is not None and video.playback_state in (PlaybackState.PENDING, PlaybackState.MAKING):
            workflow.video_playback_failed(video, reason)


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)
