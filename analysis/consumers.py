"""WebSocket consumers of the analysis app."""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from .broadcast import register_server_loop, session_group

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
        await self.send_json({"type": "hello", "session": str(session.pk), "status": session.status})

    async def disconnect(self, code):
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        await self.send_json({"type": "error", "code": "read_only", "message": "This feed is read-only."})

    async def session_event(self, message):
        await self.send_json(message["event"])
