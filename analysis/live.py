"""Live frames: validation, latest-frame-wins scheduling and the GPU loop.

At most one live frame per session waits for the GPU. A newer frame replaces the waiting
one (which is marked skipped, "superseded"), so a slow model always works on the freshest
picture instead of a growing backlog. The GPU task claims the newest waiting frame,
analyses it, and repeats until none is waiting. Extra tasks are harmless: one that finds
nothing to claim ends at once.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from medvision.events import FrameChanged, publish_after_commit
from procedures.models import ProcedureSession

from . import dispatch, selectors, services
from .engine.errors import AnalyzerUnavailable
from .models import AnalysisState, Frame, FrameSource
from .serializers import frame_event

logger = logging.getLogger(__name__)

HEADER = struct.Struct(">Q")  # 8-byte big-endian media timestamp in ms, then the JPEG
SUPERSEDED = "Skipped: a newer frame arrived before the model was free (latest frame wins)."
LIVE_CANCELLED = "Not analysed: the report was signed before the model reached this frame."


class FrameRejected(ValueError):
    """A live frame is refused; ``code`` is stable, the message is for the person/device."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class ParsedFrame:
    timestamp_ms: int
    jpeg: bytes
    width: int
    height: int


def parse_live_frame(payload: bytes) -> ParsedFrame:
    from .media.jpeg import InvalidImage, decode_jpeg

    if len(payload) > settings.LIVE_FRAME_MAX_BYTES + HEADER.size:
        raise FrameRejected("too_large", f"Frame is {len(payload)} bytes; at most {settings.LIVE_FRAME_MAX_BYTES} "
                                         "are accepted. Lower the JPEG quality or the capture size.")
    if len(payload) <= HEADER.size:
        raise FrameRejected("malformed", "A frame is an 8-byte big-endian timestamp in ms followed by JPEG bytes.")
    (timestamp_ms,) = HEADER.unpack_from(payload)
    if timestamp_ms > 48 * 3600 * 1000:
        raise FrameRejected("bad_timestamp", f"Timestamp {timestamp_ms} ms is beyond 48 hours; send media time in ms.")
    jpeg = payload[HEADER.size:]
    try:
        image = decode_jpeg(jpeg, max_pixels=settings.LIVE_FRAME_MAX_SIDE ** 2)
    except InvalidImage as exc:
        raise FrameRejected("bad_image", f"The frame is not a usable JPEG: {exc}.") from None
    height, width = image.shape[:2]
    if max(width, height) > settings.LIVE_FRAME_MAX_SIDE or min(width, height) < settings.LIVE_FRAME_MIN_SIDE:
        raise FrameRejected("bad_dimensions", f"Frame is {width}x{height}; sides must be between "
                                              f"{settings.LIVE_FRAME_MIN_SIDE} and {settings.LIVE_FRAME_MAX_SIDE} px.")
    return ParsedFrame(timestamp_ms=timestamp_ms, jpeg=jpeg, width=width, height=height)


def live_frame_submit(*, session: ProcedureSession, frame: ParsedFrame) -> tuple[Frame, int]:
    """Store the frame and make it the one waiting for the GPU. Returns (frame, number of
    waiting frames it replaced)."""
    with transaction.atomic():
        stored = services.frame_create(session=session, source=FrameSource.LIVE, timestamp_ms=frame.timestamp_ms,
                                       jpeg=frame.jpeg, width=frame.width, height=frame.height)
        superseded = (
            Frame.objects.filter(session=session, source=FrameSource.LIVE, analysis_state=AnalysisState.PENDING)
            .exclude(pk=stored.pk)
            .update(analysis_state=AnalysisState.SKIPPED, analysis_error=SUPERSEDED)
        )
        if superseded == 0:
            # Nothing was waiting, so no queued task will pick this frame up: queue one.
            transaction.on_commit(lambda: _enqueue(session.pk))
    return stored, superseded


def _enqueue(session_id) -> None:
    # One seam for queueing a room's analysis (tests replace it to drive the loop by hand).
    dispatch.send(dispatch.ANALYZE_LIVE, str(session_id))


def _claim_newest(session_id) -> Frame | None:
    with transaction.atomic():
        waiting = list(
            Frame.objects.select_for_update()
            .filter(session_id=session_id, source=FrameSource.LIVE, analysis_state=AnalysisState.PENDING)
            .order_by("-created_at")
        )
        if not waiting:
            return None
        newest, older = waiting[0], waiting[1:]
        if older:
            Frame.objects.filter(pk__in=[f.pk for f in older]).update(
                analysis_state=AnalysisState.SKIPPED, analysis_error=SUPERSEDED)
        newest.analysis_state = AnalysisState.ANALYSING
        newest.save(update_fields=["analysis_state"])
        return newest


def live_frames_cancel(*, session: ProcedureSession) -> int:
    """At sign-off: live frames still waiting for (or on) the model are skipped, so a result
    that arrives later is ignored. Returns how many were cancelled."""
    return selectors.live_frames_in_flight(session=session).update(
        analysis_state=AnalysisState.SKIPPED, analysis_error=LIVE_CANCELLED)


def _release(frame: Frame) -> None:
    """Give a claimed frame back (the analyzer is unavailable; the task will retry): it
    waits again, unless a newer frame is waiting already, which then wins."""
    with transaction.atomic():
        newer_waiting = Frame.objects.filter(session_id=frame.session_id, source=FrameSource.LIVE,
                                             analysis_state=AnalysisState.PENDING).exists()
        Frame.objects.filter(pk=frame.pk, analysis_state=AnalysisState.ANALYSING).update(
            analysis_state=AnalysisState.SKIPPED if newer_waiting else AnalysisState.PENDING,
            analysis_error=SUPERSEDED if newer_waiting else "")


def _fail(frame: Frame, exc: Exception) -> None:
    message = f"Analysis failed ({type(exc).__name__}: {exc})"[:500] + "; later frames are analysed as usual."
    with transaction.atomic():
        updated = Frame.objects.filter(pk=frame.pk, analysis_state=AnalysisState.ANALYSING).update(
            analysis_state=AnalysisState.FAILED, analysis_error=message)
        if updated:
            frame.refresh_from_db()
            publish_after_commit(frame.session_id, FrameChanged(frame_event(frame)))


def live_analyze_pending(*, session_id, max_frames: int = 10_000) -> int:
    """GPU loop for one session: analyse the newest waiting frame until none waits.

    A claimed frame never stays "being analysed" when its analysis raises: it goes back to
    waiting if the analyzer is unavailable (the task retries), else it is recorded as
    failed with the reason and the loop goes on with the next frame (a live stream must
    not stall on one bad frame).
    """
    analysed = 0
    while analysed < max_frames:
        frame = _claim_newest(session_id)
        if frame is None:
            break
        try:
            services.frames_analyze(frame_ids=[frame.pk], states=(AnalysisState.ANALYSING,))
        except AnalyzerUnavailable:
            _release(frame)
            raise
        except Exception as exc:  # noqa: BLE001 - recorded on the frame and logged; the stream goes on
            logger.exception("Live frame %s of session %s could not be analysed", frame.pk, session_id)
            _fail(frame, exc)
        analysed += 1
    return analysed
