"""Claiming frames for the GPU, and giving them back: what the scheduling loop
(analysis.scheduler) does to the database.

A frame goes from pending to analysing with ``claimed_at`` and a per-batch ``claimed_by``
token in one conditional UPDATE, so two workers (two GPUs, two machines) never analyse the
same frame: on PostgreSQL the candidates are read with ``SELECT ... FOR UPDATE SKIP
LOCKED``, so workers pick disjoint rows without waiting for each other; SQLite serialises
writers, and the conditional update is the guard there. A claim older than
``GPU_CLAIM_LEASE_S`` belongs to a worker that died mid-batch: any loop gives its frames
back (a live frame only if no newer one of its room is waiting), whatever the broker's
visibility timeout. Latest frame wins: a superseded live frame keeps its row (metadata) but
not its JPEG.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Q
from django.utils import timezone

from medvision.events import FrameChanged, publish_after_commit

from .models import AnalysisState, Frame, FrameSource
from .serializers import frame_event

logger = logging.getLogger(__name__)

SUPERSEDED = "Skipped: a newer frame arrived before the model was free (latest frame wins)."
RECLAIMED = "Given back: the worker that claimed it stopped before recording a result."

_NEVER = datetime(1970, 1, 1, tzinfo=dt_timezone.utc)  # a room never served sorts first


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _lockable(queryset):
    """Rows other workers have locked are passed over, not waited for (PostgreSQL)."""
    if connection.features.has_select_for_update_skip_locked:
        return queryset.select_for_update(skip_locked=True)
    return queryset


def drop_images(frame_ids) -> None:
    """Delete the JPEGs of frames that will never be analysed (superseded live frames), once
    the transaction that marked them has committed; the rows stay as metadata."""
    ids = [str(pk) for pk in frame_ids]
    if not ids:
        return

    def delete():
        for frame in Frame.objects.filter(pk__in=ids).exclude(image="").exclude(image__isnull=True).only("pk", "image"):
            frame.image.delete(save=False)
        Frame.objects.filter(pk__in=ids).update(image="")

    transaction.on_commit(delete)


def supersede(queryset, reason: str = SUPERSEDED) -> int:
    """Skip waiting live frames that will never be analysed (a newer one of the room wins,
    or ``reason``) and drop their JPEGs."""
    ids = list(queryset.values_list("pk", flat=True))
    if not ids:
        return 0
    count = Frame.objects.filter(pk__in=ids, analysis_state=AnalysisState.PENDING).update(
        analysis_state=AnalysisState.SKIPPED, analysis_error=reason)
    # Only the frames this update skipped lose their JPEG: one a worker claimed in between
    # is being analysed and needs it (skipped is final, so the set cannot change after this).
    drop_images(Frame.objects.filter(pk__in=ids, analysis_state=AnalysisState.SKIPPED,
                                     analysis_error=reason).values_list("pk", flat=True))
    return count


def _unclaim(frames, reason: str) -> int:
    """Claimed frames wait again (``reason`` on the frame), except a live one whose room has
    a newer frame waiting: that newer one wins and this is skipped. Returns how many."""
    count = 0
    for frame in frames:
        newer_waiting = frame.source == FrameSource.LIVE and Frame.objects.filter(
            session_id=frame.session_id, source=FrameSource.LIVE, analysis_state=AnalysisState.PENDING).exists()
        updated = Frame.objects.filter(pk=frame.pk, analysis_state=AnalysisState.ANALYSING).update(
            analysis_state=AnalysisState.SKIPPED if newer_waiting else AnalysisState.PENDING,
            analysis_error=SUPERSEDED if newer_waiting else reason, claimed_at=None, claimed_by="")
        count += updated
        if updated and newer_waiting:
            drop_images([frame.pk])
    return count


def reclaim_stale(now=None) -> int:
    """Give back the frames of claims older than the lease (their worker died)."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.GPU_CLAIM_LEASE_S)
    stale = Frame.objects.filter(analysis_state=AnalysisState.ANALYSING).filter(
        Q(claimed_at__lt=cutoff) | Q(claimed_at__isnull=True))
    with transaction.atomic():
        given_back = _unclaim(_lockable(stale).only("pk", "session_id", "source"), RECLAIMED)
    if given_back:
        logger.warning("Gave back %d frame(s) claimed more than %s s ago by a worker that stopped.",
                       given_back, settings.GPU_CLAIM_LEASE_S)
    return given_back


def _live_candidates(size: int) -> list:
    """The newest waiting frame of each live room, rooms served least recently first."""
    waiting = list(
        _lockable(Frame.objects.filter(source=FrameSource.LIVE, analysis_state=AnalysisState.PENDING))
        .order_by("session_id", "-created_at").only("pk", "session_id", "created_at")
    )
    newest: dict = {}
    older = []
    for frame in waiting:
        if frame.session_id in newest:
            older.append(frame.pk)
        else:
            newest[frame.session_id] = frame
    if older:
        supersede(Frame.objects.filter(pk__in=older))
    if len(newest) <= size:  # every waiting room fits in this batch: no turn to decide
        return [f.pk for f in sorted(newest.values(), key=lambda f: f.created_at)]
    last_served = dict(
        Frame.objects.filter(session_id__in=list(newest), source=FrameSource.LIVE, claimed_at__isnull=False)
        .values("session_id").annotate(last=Max("claimed_at")).values_list("session_id", "last")
    )
    rooms = sorted(newest.values(), key=lambda f: (last_served.get(f.session_id) or _NEVER, f.created_at))
    return [f.pk for f in rooms[:size]]


def _recorded_candidates(size: int, prefer=()) -> list:
    if size <= 0:
        return []
    waiting = Frame.objects.filter(source=FrameSource.VIDEO, analysis_state=AnalysisState.PENDING)
    chosen = []
    if prefer:  # a task's own frames first (its recording), then the oldest others
        chosen = list(_lockable(waiting.filter(pk__in=list(prefer))).order_by("timestamp_ms")
                      .values_list("pk", flat=True)[:size])
    if len(chosen) < size:
        chosen += list(_lockable(waiting.exclude(pk__in=chosen)).order_by("created_at", "timestamp_ms")
                       .values_list("pk", flat=True)[:size - len(chosen)])
    return chosen


def claim_batch(*, size: int | None = None, prefer=()) -> list:
    """Claim the next batch (live first, then recorded); returns the claimed frame ids."""
    size = size or settings.ANALYZER_BATCH_SIZE
    token = f"{worker_name()}:{uuid.uuid4().hex[:12]}"
    with transaction.atomic():
        ids = _live_candidates(size)
        ids += _recorded_candidates(size - len(ids), prefer)
        if not ids:
            return []
        claimed = Frame.objects.filter(pk__in=ids, analysis_state=AnalysisState.PENDING).update(
            analysis_state=AnalysisState.ANALYSING, claimed_at=timezone.now(), claimed_by=token)
    if claimed == len(ids):  # all of them (always on PostgreSQL: the rows were locked for us)
        return ids
    # Only what this token got: a concurrent claimer took some first (SQLite).
    return list(Frame.objects.filter(claimed_by=token, analysis_state=AnalysisState.ANALYSING)
                .values_list("pk", flat=True))


def give_back(frame_ids) -> None:
    """Give claimed frames back (the analyzer is unavailable; the task will retry). A live
    frame waits again unless a newer one of its room is waiting, which then wins."""
    with transaction.atomic():
        _unclaim(Frame.objects.filter(pk__in=list(frame_ids), analysis_state=AnalysisState.ANALYSING), "")


def fail(frame_ids, exc: Exception) -> None:
    message = f"Analysis failed ({type(exc).__name__}: {exc})"[:500] + "; later frames are analysed as usual."
    with transaction.atomic():
        for frame in Frame.objects.filter(pk__in=list(frame_ids), analysis_state=AnalysisState.ANALYSING):
            frame.analysis_state, frame.analysis_error = AnalysisState.FAILED, message
            frame.save(update_fields=["analysis_state", "analysis_error"])
            publish_after_commit(frame.session_id, FrameChanged(frame_event(frame)))


def in_flight() -> bool:
    return Frame.objects.filter(analysis_state=AnalysisState.ANALYSING).exists()


def waiting() -> bool:
    # One indexed EXISTS: cheap enough to poll every few milliseconds while lingering.
    return Frame.objects.filter(analysis_state=AnalysisState.PENDING).exists()
