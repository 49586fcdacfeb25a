"""Live frames: validation and latest-frame-wins.

At most one live frame per session waits for the GPU. A newer frame replaces the waiting
one (which is marked skipped, "superseded", and loses its JPEG), so a slow model always
works on the freshest picture instead of a growing backlog. The GPU worker's scheduling
loop (analysis.scheduler) serves the waiting frames of every room in turn. Extra tasks are
harmless: one that finds nothing to claim ends at once.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from medvision.errors import RefusedInput
from procedures.models import ProcedureSession

from . import claims, dispatch, scheduler, selectors, services, wakeup
from .models import AnalysisState, Frame, FrameSource

HEADER = struct.Struct(">Q")  # 8-byte big-endian media timestamp in ms, then the JPEG
LIVE_CANCELLED = "Not analysed: the report was signed before the model reached this frame."
STREAM_STOPPED = "Not analysed: the stream stopped (its socket closed) before the model reached this frame."


class FrameRejected(RefusedInput, ValueError):
    """A live frame is refused; ``code`` is stable, the message is for the person/device."""


@dataclass
class ParsedFrame:
    timestamp_ms: int
    jpeg: bytes
    width: int
    height: int


def parse_live_frame(payload: bytes) -> ParsedFrame:
    from .media.jpeg import InvalidImage, check_jpeg

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
        width, height = check_jpeg(jpeg, max_pixels=settings.LIVE_FRAME_MAX_SIDE ** 2)
    except InvalidImage as exc:
        raise FrameRejected("bad_image", f"The frame is not a usable JPEG: {exc}.") from None
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
        superseded = claims.supersede(
            Frame.objects.filter(session=session, source=FrameSource.LIVE, analysis_state=AnalysisState.PENDING)
            .exclude(pk=stored.pk))
        # Once committed: wake a lingering loop, and if nothing was waiting (so no queued
        # task will pick this frame up) and no loop runs, queue one.
        transaction.on_commit(wakeup.notify)
        if superseded == 0:
            transaction.on_commit(lambda: _enqueue(session.pk))
    return stored, superseded


def _enqueue(session_id) -> None:
    # One seam for queueing the GPU loop for a room (tests replace it to drive the loop by hand).
    # A running loop claims the frame itself: a task per frame would pile up behind it
    # (each frame of every room, while one loop serves them all).
    if not scheduler.loop_running():
        dispatch.send(dispatch.ANALYZE_LIVE, str(session_id))


def live_stream_stopped(*, session_id) -> int:
    """The room's streaming socket closed: its frame still waiting is not analysed (nobody
    is watching for the result; the next stream starts with a fresh frame). Returns how
    many were dropped."""
    with transaction.atomic():
        return claims.supersede(Frame.objects.filter(session_id=session_id, source=FrameSource.LIVE,
                                                     analysis_state=AnalysisState.PENDING), reason=STREAM_STOPPED)


def live_frames_cancel(*, session: ProcedureSession) -> int:
    """At sign-off: live frames still waiting for (or on) the model are skipped, so a result
    that arrives later is ignored. Returns how many were cancelled."""
    return selectors.live_frames_in_flight(session=session).update(
        analysis_state=AnalysisState.SKIPPED, analysis_error=LIVE_CANCELLED)
