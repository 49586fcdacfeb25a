"""WebSocket consumers of the analysis app."""

from __future__ import annotations

import json
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from medvision.rate_limit import allow_in_shared_window
from procedures.api import AI_DISCLAIMER  # the not-for-clinical-use and MedGemma terms notice

from .broadcast import register_server_loop, session_group

# Wall-clock time, so every web process agrees on the rate-limit window (tests move it).
_wall_clock = time.time

# Close codes: 4401 not authenticated, 4404 not found (also: not yours).
CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404


@database_sync_to_async
def _resolve_session(user, session_id):
    from procedures import access
    from procedures.selectors import session_get

    try:
        return session_get(user=user, session_id=session_id, audit_as="ws:events")
    except access.SessionNotFound:
        return None


class SessionEventsConsumer(AsyncJsonWebsocketConsumer):
    """Read-only feed of a session's events (progress, frames, findings) for its pages."""

    async def connect(self):
        register_server_loop()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        session = await _resolve_session(user, self.scope["url_route"]["kwargs"]["session_id"])
        if session is None:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.group = session_group(session.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "hello", "session": str(session.pk), "status": session.status,
                              "notice": AI_DISCLAIMER})

    async def disconnect(self, code):
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        await self.send_json({"type": "error", "code": "read_only", "message": "This feed is read-only."})

    async def session_event(self, message):
        await self.send_json(message["event"])


@database_sync_to_async
def _live_access(user, session_id):
    """(session, may_send) for a user who may see the session, else (None, False)."""
    from procedures import access
    from procedures.selectors import session_get

    try:
        session = session_get(user=user, session_id=session_id, audit_as="ws:live")
    except access.SessionNotFound:
        return None, False
    return session, access.edit_refusal(user, session) is None


@database_sync_to_async
def _snapshot(session):
    from django.conf import settings

    from .selectors import finding_list
    from .serializers import finding_event

    findings = finding_list(session=session)[: settings.LIVE_SNAPSHOT_MAX]
    return [finding_event(f) for f in findings]


@database_sync_to_async
def _submit(user, session_id, payload: bytes):
    from procedures import access
    from procedures.models import ProcedureSession
    from procedures.services import session_start_live

    from .live import live_frame_submit, parse_live_frame

    parsed = parse_live_frame(payload)  # FrameRejected on bad input, before any write
    session = ProcedureSession.objects.get(pk=session_id)
    access.ensure_editable(user, session)  # signed since the socket opened? refuse now
    if session.status != "live":
        session = session_start_live(actor=user, session=session)
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
        register_server_loop()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        session, may_send = await _live_access(user, self.scope["url_route"]["kwargs"]["session_id"])
        if session is None:
            await self.close(code=CLOSE_NOT_FOUND)
            return
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
        await self.send_json({"type": "snapshot", "findings": await _snapshot(session)})

    async def disconnect(self, code):
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        if bytes_data is not None:
            await self._frame(bytes_data)
            return
        try:
            content = json.loads(text_data or "")
        except json.JSONDecodeError:
            await self._error("bad_json", "Control messages are JSON objects like {\"type\": \"ping\"}.")
            return
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "ping":
            await self.send_json({"type": "pong"})
        elif kind == "sync":
            from procedures.models import ProcedureSession

            session = await database_sync_to_async(ProcedureSession.objects.get)(pk=self.session_id)
            await self.send_json({"type": "snapshot", "findings": await _snapshot(session)})
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
        await self.send_json(message["event"])
