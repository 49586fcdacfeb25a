"""Requests Django's ASGI handler cannot even build, answered in the API's JSON envelope.

Django answers a query string that is not UTF-8 (raw bytes, not percent-encoded) with a
bare ``400`` and no body before any view or error handler runs. Under ``/api/`` a client
must always get ``{"error": {...}}`` it can read, so this middleware answers that case
itself; other paths keep Django's behaviour.
"""

from __future__ import annotations

from .body_limits import _refuse


class UnreadableRequestMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope.get("path", "").startswith("/api/"):
            try:
                scope.get("query_string", b"").decode()
            except UnicodeDecodeError:
                return await _refuse(send, 400, "bad_request",
                                     "The query string is not valid UTF-8: percent-encode its values.")
        return await self.app(scope, receive, send)
