"""WebSocket consumers of the analysis app."""

from __future__ import annotations

import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from medvision import safe_json
from medvision.broadcast import session_group
from medvision.notices import AI_DISCLAIMER  # the not-for-clinical-use and MedGemma terms notice
from medvision.rate_limit import allow_in_shared_window
from medvision.ws_auth import CLOSE_NOT_FOUND, refuse, signed_in_user

# Wall-clock time, so every web process agrees on the rate-limit window (tests move it).
_wall_clock = time.time

NOT_SIGNED_IN = "Sign in (or send an API token) to open this session's feed."
NOT_FOUND = "No such procedure session, or it is not yours."


@database_sync_to_async
def _resolve_session(user, session_id, audit_as):
    """(session, report_only) for a user who may see the session, else (None, False).
    ``report_only``: the user sees the signed report only (an EHR connector)."""
    from procedures import access
    from procedures.selectors import session_get

    try:
        session = session_get(user=user, session_id=session_id, audit_as=audit_as)
    except access.SessionNotFound:
        return None, False
    return session, access.sees_report_only(user, session)


async def _admit(consumer, audit_as: str):
    """(user, session) for a user who may see the session; else None, the socket turned
    away (4401 not signed in, 4404 no such session or not theirs). Sets ``report_only``."""
    user = await signed_in_user(consumer, NOT_SIGNED_IN)
    if user is None:
        return None
    session, consumer.report_only = await _resolve_session(
        user, consumer.scope["url_route"]["kwargs"]["session_id"], audit_as)
    if session is None:
        await refuse(consumer, CLOSE_NOT_FOUND, NOT_FOUND)
        return None
    return user, session


def visible_event(event: dict, report_only: bool) -> dict | None:
    """The event as this viewer may see it: a connector gets what the API shows it - the
    signed report's findings, no frames and no proposals (None: not for this viewer)."""
    if not report_only:
        return event
    if event.get("type") == "frame":
        return None
    if event.get("type") == "finding":
        from .selectors import REPORT_STATUSES

        return event if event["finding"].get("review_status") in REPORT_STATUSES else None
    return event


class SessionEventsConsumer(AsyncJsonWebsocketConsumer):
    """Read-only feed of a session's events (progress, frames, findings) for its pages."""

    async def connect(self):
        admitted = await _admit(self, "ws:events")
        if admitted is None:
            return
        _, session = admitted
        self.group = session_group(session.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "hello", "session": str(session.pk), "status": session.status,
                              "notice": AI_DISCLAIMER})

    async def disconnect(self, code):
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    @classmethod
    async def decode_json(cls, text_data):
        try:
            return safe_json.loads(text_data)
        except ValueError:
            return None  # whatever it was, the answer is the same: this feed is read-only

    async def receive_json(self, content, **kwargs):
        await self.send_json({"type": "error", "code": "read_only", "message": "This feed is read-only."})

    async def session_event(self, message):
        event = visible_event(message["event"], self.report_only)
        if event is not None:
            await self.send_json(event)


@database_sync_to_async
def _snapshot(user, session_id):
    """The findings so far, as ``user`` may see them (the report only, for a connector)."""
    from django.conf import settings

    from procedures import access

    from .selectors import finding_list_for
    from .serializers import finding_event

    session = access.get_visible_session(user, session_id)
    findings = finding_list_for(user=user, session=session)[: settings.LIVE_SNAPSHOT_MAX]
    return [finding_event(f) for f in findings]


@database_sync_to_async
def _submit(user, session_id, payload: bytes):
    from medvision.audit import acting_as
    from procedures import access
    from procedures.models import ProcedureSession
    from procedures.workflow import session_start_live

    from .live import live_frame_submit, parse_live_frame

    parsed = parse_live_frame(payload)  # FrameRejected on bad input, before any write
    session = ProcedureSession.objects.get(pk=session_id)
    access.ensure_editable(user, session)  # signed since the socket opened? refuse now
    if session.status != "live":
        session = session_start_live(actor=user, session=session)
    with acting_as(user):  # the frame (and the ones it supersedes) are the streaming clinician's
        frame, superseded = live_frame_submit(session=session, frame=parsed)
    return str(frame.pk), superseded


class LiveFramesConsumer(AsyncJsonWebsocketConsumer):
    """``/ws/procedures/<id>/live/``: the owner streams frames; the owner and QA watch.

    Client -> server: binary = 8-byte big-endian media timestamp (ms) + JPEG; text JSON
    ``{"type": "ping"}`` or ``{"type": "sync"}`` (resend the findings snapshot).
    Server -> client: ``hello``, ``snapshot``, ``finding``, ``frame``, ``progress``, ``status``
    (with the ``dropped`` count), ``error`` (bad frame; the socket stays open).
    """

    async def connect(self):
        from procedures import access

        admitted = await _admit(self, "ws:live")
        if admitted is None:
            return
        user, session = admitted
        may_send = access.edit_refusal(user, session) is None
        self.session_id = session.pk
        self.may_send = may_send
        self.dropped = 0
        self.received = 0
        self.group = session_group(session.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "hello", "session": str(session.pk), "status": session.status,
                              "procedure_type": session.procedure_type, "can_send_frames": may_send,
                              "notice": AI_DISCLAIMER})
        await self.send_json({"type": "snapshot", "findings": await _snapshot(user, session.pk)})

    async def disconnect(self, code):
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)
        if getattr(self, "received", 0):
            # The streaming socket closed: the room stops being scheduled. Its frame still
            # waiting is dropped (one already on the model finishes and is recorded).
            from .live import live_stream_stopped

            await database_sync_to_async(live_stream_stopped)(session_id=self.session_id)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        if bytes_data is not None:
            await self._frame(bytes_data)
            return
        try:
            content = safe_json.loads(text_data or "")
        except ValueError:
            await self._error("bad_json", "Control messages are JSON objects like {\"type\": \"ping\"}.")
            return
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "ping":
            await self.send_json({"type": "pong"})
        elif kind == "sync":
            await self.send_json({"type": "snapshot", "findings": await _snapshot(self.scope["user"], self.session_id)})
        else:
            await self._error("unsupported", f"Unknown message type {kind!r}; frames are binary messages.")

    async def _frame(self, payload: bytes):
        from django.conf import settings

        from procedures.access import SessionReadOnly

        from .live import FrameRejected

        if not self.may_send:
            await self._error("read_only", "You can watch this session but not send frames to it.")
            return
        if not await allow_in_shared_window(f"live:{self.session_id}", settings.LIVE_MAX_FPS, _wall_clock()):
            self.dropped += 1
            await self._error("rate_limited", f"More than {settings.LIVE_MAX_FPS:g} frames per second; "
                                              "this frame was dropped. Lower the capture rate.")
            return
        try:
            frame_id, superseded = await _submit(self.scope["user"], self.session_id, payload)
        except FrameRejected as exc:
            await self._error(exc.code, exc.message)
            return
        except SessionReadOnly as exc:
            self.may_send = False
            await self._error("read_only", str(exc))
            return
        self.received += 1
        self.dropped += superseded
        await self.send_json({"type": "status", "accepted": frame_id, "received": self.received,
                              "dropped": self.dropped})

    async def _error(self, code: str, message: str):
        await self.send_json({"type": "error", "code": code, "message": message})

    async def session_event(self, message):
        event = visible_event(message["event"], self.report_only)
        if event is not None:
            await self.send_json(event)
